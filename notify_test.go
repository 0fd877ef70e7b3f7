package webhooks_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtpd "github.com/emersion/go-smtp"

	"github.com/caddy-webhooks/caddy-webhooks/internal/testpki"
)

// mailServer is an SMTP server from github.com/emersion/go-smtp on
// 127.0.0.1 that offers STARTTLS with a self-signed certificate and
// requires AUTH PLAIN.
type mailServer struct {
	addr   string
	caFile string

	mu       sync.Mutex
	messages []*mail.Message

	// reply decides the reply to DATA for a message with this subject; nil
	// accepts it.
	reply func(subject string) error
}

func newMailServer(t *testing.T) *mailServer {
	t.Helper()
	ca := testpki.NewCA(t)
	cert, _, _ := ca.Issue(t, testpki.Options{CommonName: "test SMTP server", IPs: testpki.Loopback})
	caFile := ca.PEMFile

	s := &mailServer{caFile: caFile}
	server := smtpd.NewServer(s)
	server.Domain = "localhost"
	server.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	server.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { server.Close() })
	return s
}

func (s *mailServer) NewSession(*smtpd.Conn) (smtpd.Session, error) {
	return &mailSession{server: s}, nil
}

func (s *mailServer) setReply(reply func(subject string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = reply
}

func (s *mailServer) all() []*mail.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*mail.Message(nil), s.messages...)
}

// waitSubject waits for n messages whose decoded subject contains text.
func (s *mailServer) waitSubject(t *testing.T, text string, n int) []*mail.Message {
	t.Helper()
	var found []*mail.Message
	waitFor(t, 30*time.Second, fmt.Sprintf("%d e-mails with subject %q", n, text), func() error {
		found = nil
		for _, m := range s.all() {
			if strings.Contains(decodedSubject(m), text) {
				found = append(found, m)
			}
		}
		if len(found) < n {
			return fmt.Errorf("%d so far", len(found))
		}
		return nil
	})
	return found
}

func decodedSubject(m *mail.Message) string {
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return m.Header.Get("Subject")
	}
	return subject
}

type mailSession struct {
	server     *mailServer
	recipients []string
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != "api" || password != "smtp-pa55" {
			return errors.New("invalid credentials")
		}
		return nil
	}), nil
}

func (s *mailSession) Mail(string, *smtpd.MailOptions) error { return nil }

func (s *mailSession) Rcpt(to string, _ *smtpd.RcptOptions) error {
	s.recipients = append(s.recipients, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	s.server.mu.Lock()
	reply := s.server.reply
	s.server.mu.Unlock()
	if reply != nil {
		if err := reply(decodedSubject(msg)); err != nil {
			return err
		}
	}
	msg.Header["X-Test-Recipients"] = []string{strings.Join(s.recipients, ",")}
	s.server.mu.Lock()
	s.server.messages = append(s.server.messages, msg)
	s.server.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.recipients = nil }
func (s *mailSession) Logout() error { return nil }

// notifyConfig is a Caddyfile with an e-mail destination, a Slack
// notification, a webhook endpoint that a test can make fail, and alerts.
const notifyConfig = `{
	admin {{.Admin}}
	persist_config off
	auto_https off
	grace_period 2s
	webhooks {
		allow_private
		smtp {{.SMTP}} {
			username api
			password smtp-pa55
			from "Orders API <noreply@example.com>"
			ca {{.CA}}
			timeout 5s
		}
		email sales {
			events order.*
			to sales@example.com "Zoë Ops <ops@example.com>"
			cc boss@example.com
			subject "Commande {webhook.response.body.id} reçue ({webhook.event.type})"
			body "Order {webhook.response.body.id} for {webhook.request.body.customer}."
			retry 500ms 500ms
		}
		notify team slack {{.Chat}} {
			events order.*
			text "@channel order {webhook.response.body.id} from {webhook.request.body.customer}"
			retry 100ms
		}
		endpoint partner {{.Partner}} {
			events order.*
			retry 100ms
		}
		alerts ops@example.com {
			interval 2s
		}
	}
}

http://127.0.0.1:{{.Port}} {
	bind 127.0.0.1
	webhooks {
		event order.created POST /orders 201 {
			capture request_body
		}
	}
	reverse_proxy {{.Upstream}}
}
`

type notifySite struct {
	caddy   *caddyProcess
	smtp    *mailServer
	chat    *receiver
	partner *receiver
	port    int
}

func startNotifySite(t *testing.T, chat, partner func(n int, d delivery) int) *notifySite {
	t.Helper()
	s := &notifySite{smtp: newMailServer(t), chat: newReceiver(t, chat), partner: newReceiver(t, partner), port: freePort(t)}
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	config := renderConfig(t, notifyConfig, map[string]any{
		"Admin": admin, "SMTP": s.smtp.addr, "CA": s.smtp.caFile,
		"Chat": s.chat.URL, "Partner": s.partner.URL, "Port": s.port, "Upstream": echoAPI(t),
	})
	s.caddy = startCaddy(t, config, "", admin)
	return s
}

func (s *notifySite) order(t *testing.T, customer string) {
	t.Helper()
	if status := send(t, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/orders", s.port), fmt.Sprintf(`{"id":%q,"customer":%q}`, customer+"-1", customer)); status != http.StatusCreated {
		t.Fatalf("POST /orders: status %d, want 201", status)
	}
}

func TestEmailDestinationRetries451(t *testing.T) {
	var failures atomic.Int32
	s := startNotifySite(t, nil, nil)
	s.smtp.setReply(func(subject string) error {
		if strings.Contains(subject, "alice") && failures.Add(1) == 1 {
			return &smtpd.SMTPError{Code: 451, EnhancedCode: smtpd.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	})

	s.order(t, "alice")
	msgs := s.smtp.waitSubject(t, "Commande alice-1 reçue (order.created)", 1)
	if len(msgs) != 1 {
		t.Fatalf("got %d e-mails for one order, want 1 after the retried 451", len(msgs))
	}
	m := msgs[0]
	if got := m.Header.Get("X-Test-Recipients"); got != "sales@example.com,ops@example.com,boss@example.com" {
		t.Errorf("envelope recipients %q, want sales, ops and boss", got)
	}
	if !strings.Contains(m.Header.Get("To"), "=?") {
		t.Errorf("To %q: the display name Zoë Ops should be RFC 2047 encoded", m.Header.Get("To"))
	}
	body, _ := io.ReadAll(m.Body)
	if !strings.Contains(string(body), "Order alice-1 for alice.") {
		t.Errorf("body %q does not contain the rendered text", body)
	}
	if !strings.HasPrefix(m.Header.Get("Message-Id"), "<") || !strings.HasSuffix(m.Header.Get("Message-Id"), "@example.com>") {
		t.Errorf("Message-ID %q, want <event id@example.com>", m.Header.Get("Message-Id"))
	}
	if n := failures.Load(); n != 2 {
		t.Errorf("server saw %d attempts of the message, want 2: one answered 451, one accepted", n)
	}
}

func TestEmailDestinationDeadLetters550(t *testing.T) {
	var attempts atomic.Int32
	s := startNotifySite(t, nil, nil)
	s.smtp.setReply(func(subject string) error {
		if strings.Contains(subject, "bob") {
			attempts.Add(1)
			return &smtpd.SMTPError{Code: 550, EnhancedCode: smtpd.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
		}
		return nil
	})

	s.order(t, "bob")
	entry := s.caddy.waitLog(30*time.Second, "e-mail attempt failed; no retries left, dead-lettering")
	if entry["destination"] != "sales" || entry["attempt"] != float64(1) || entry["error_class"] != "smtp_rejected" {
		t.Errorf("dead-letter log %v, want destination sales, attempt 1, error_class smtp_rejected", entry)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("server got %d attempts of a message it rejected with 550, want 1", n)
	}
}

func TestChatNotificationBody(t *testing.T) {
	s := startNotifySite(t, nil, nil)
	s.order(t, "carol")

	ds := s.chat.waitCount(t, 30*time.Second, 1)
	var body struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(ds[0].Body, &body); err != nil {
		t.Fatalf("Slack body %q: %v", ds[0].Body, err)
	}
	if body.Text != "@\u200bchannel order carol-1 from carol" {
		t.Errorf("Slack text %q, want the rendered text with @channel neutralised", body.Text)
	}
	if ct := ds[0].Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

func TestChatRetryAfterFraction(t *testing.T) {
	chat := newReceiver(t, func(n int, d delivery) int {
		if n == 1 {
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	retryAfter := &retryAfterHandler{next: chat, value: "1.5"}
	server := &http.Server{Handler: retryAfter, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Close() })

	s := &notifySite{smtp: newMailServer(t), chat: chat, partner: newReceiver(t, nil), port: freePort(t)}
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	config := renderConfig(t, notifyConfig, map[string]any{
		"Admin": admin, "SMTP": s.smtp.addr, "CA": s.smtp.caFile,
		"Chat": "http://" + ln.Addr().String() + "/hooks", "Partner": s.partner.URL, "Port": s.port, "Upstream": echoAPI(t),
	})
	s.caddy = startCaddy(t, config, "", admin)
	s.order(t, "dave")

	ds := chat.waitCount(t, 30*time.Second, 2)
	// Without Retry-After the schedule would retry after about 100ms.
	if gap := ds[1].At.Sub(ds[0].At); gap < 1400*time.Millisecond {
		t.Errorf("retry came %s after a 429 with Retry-After: 1.5, want at least 1.4s", gap)
	}
}

// retryAfterHandler adds a Retry-After header to the 429 responses of a
// receiver.
type retryAfterHandler struct {
	next  *receiver
	value string
}

func (h *retryAfterHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.next.serveHTTP(&retryAfterWriter{ResponseWriter: w, value: h.value}, r)
}

type retryAfterWriter struct {
	http.ResponseWriter
	value string
}

func (w *retryAfterWriter) WriteHeader(status int) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", w.value)
	}
	w.ResponseWriter.WriteHeader(status)
}

func TestAlertsDigestAndDisabled(t *testing.T) {
	s := startNotifySite(t, nil, func(n int, d delivery) int {
		var order struct {
			Data struct {
				Request struct {
					Body struct {
						Customer string `json:"customer"`
					} `json:"body"`
				} `json:"request"`
			} `json:"data"`
		}
		_ = json.Unmarshal(d.Body, &order)
		if order.Data.Request.Body.Customer == "gone" {
			return http.StatusGone
		}
		return http.StatusInternalServerError
	})

	// Three orders that the partner fails twice each are dead-lettered
	// within one alerts interval.
	for _, customer := range []string{"erin", "frank", "grace"} {
		s.order(t, customer)
	}
	digests := s.smtp.waitSubject(t, "Webhook destination partner dead-lettered", 1)
	if subject := decodedSubject(digests[0]); !strings.Contains(subject, "3 event(s)") {
		t.Errorf("digest subject %q, want 3 events", subject)
	}
	body, _ := io.ReadAll(digests[0].Body)
	if !strings.Contains(string(body), "replay") {
		t.Errorf("digest body %q does not say how to replay", body)
	}
	if got := digests[0].Header.Get("X-Test-Recipients"); got != "ops@example.com" {
		t.Errorf("digest went to %q, want ops@example.com", got)
	}

	// After the interval, no second digest came for the same three.
	time.Sleep(3 * time.Second)
	if n := len(s.smtp.waitSubject(t, "Webhook destination partner dead-lettered", 1)); n != 1 {
		t.Errorf("got %d digests for 3 dead letters in one interval, want 1", n)
	}

	// A 410 disables the partner and sends an alert.
	s.order(t, "gone")
	s.smtp.waitSubject(t, "Webhook destination partner disabled", 1)
}
