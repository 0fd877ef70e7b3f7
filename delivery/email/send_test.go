package email

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtpd "github.com/emersion/go-smtp"
)

// testMessage has several recipients, non-ASCII text in the subject and a
// display name, both bodies and the headers that delivery passes.
func testMessage() *Message {
	return &Message{
		To:      []string{"Zoë Müller <zoe@example.com>", "ops@example.com"},
		Cc:      []string{"\"Sales, EU\" <sales@example.org>"},
		Subject: "Bestellung 42 erstellt – Größe XL ✓",
		Text:    "Order 42 was created.\nTotal: 12,50 €\n",
		HTML:    "<p>Order <b>42</b> was created.</p><p>Total: 12,50 €</p>",
		Headers: map[string]string{
			"Message-ID":         "<evt_01HZ42@webhooks.example.com>",
			"X-Webhook-Event-Id": "evt_01HZ42",
		},
	}
}

func TestSendStartTLSDelivers(t *testing.T) {
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
	msg := testMessage()

	if err := Send(context.Background(), srv.config(TLSStartTLS, cert.pool), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}

	messages, auths := srv.backend.snapshot()
	if len(auths) != 1 || auths[0].username != "api" || !auths[0].tls {
		t.Errorf("auth attempts = %+v, want one as api over TLS", auths)
	}
	if len(messages) != 1 {
		t.Fatalf("server got %d messages, want 1", len(messages))
	}
	got := messages[0]
	if !got.tls {
		t.Error("message was sent without TLS")
	}
	if got.from != "noreply@example.com" {
		t.Errorf("MAIL FROM = %q, want noreply@example.com", got.from)
	}
	wantRecipients := []string{"zoe@example.com", "ops@example.com", "sales@example.org"}
	if !slices.Equal(got.recipients, wantRecipients) {
		t.Errorf("RCPT TO = %v, want %v", got.recipients, wantRecipients)
	}
	checkReceived(t, got.data, msg)
}

// checkReceived parses data as an e-mail and compares it with msg.
func checkReceived(t *testing.T, data []byte, msg *Message) {
	t.Helper()
	parsed, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parsing the received message: %v\n%s", err, data)
	}
	header := parsed.Header

	if got := header.Get("Message-Id"); got != "<evt_01HZ42@webhooks.example.com>" {
		t.Errorf("Message-ID = %q", got)
	}
	if got := header.Get("X-Webhook-Event-Id"); got != "evt_01HZ42" {
		t.Errorf("X-Webhook-Event-Id = %q", got)
	}
	if header.Get("Date") == "" {
		t.Error("Date header is missing")
	}

	rawSubject := header.Get("Subject")
	if !strings.Contains(rawSubject, "=?") {
		t.Errorf("Subject %q is not RFC 2047 encoded", rawSubject)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(rawSubject)
	if err != nil {
		t.Fatalf("decoding Subject %q: %v", rawSubject, err)
	}
	if subject != msg.Subject {
		t.Errorf("Subject = %q, want %q", subject, msg.Subject)
	}

	checkAddresses(t, header, "From", []string{"API <noreply@example.com>"})
	checkAddresses(t, header, "To", msg.To)
	checkAddresses(t, header, "Cc", msg.Cc)
	if raw := header.Get("To"); !strings.Contains(raw, "=?") || strings.Contains(raw, "ë") {
		t.Errorf("To %q does not encode the non-ASCII display name as RFC 2047", raw)
	}

	checkAlternativeBodies(t, header, parsed.Body, msg)
}

// checkAddresses compares the addresses of a header field with want.
func checkAddresses(t *testing.T, header mail.Header, field string, want []string) {
	t.Helper()
	got, err := header.AddressList(field)
	if err != nil {
		t.Fatalf("parsing %s %q: %v", field, header.Get(field), err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s has %d addresses, want %d", field, len(got), len(want))
	}
	for i, w := range want {
		wantAddr, err := mail.ParseAddress(w)
		if err != nil {
			t.Fatalf("parsing %q: %v", w, err)
		}
		if *got[i] != *wantAddr {
			t.Errorf("%s[%d] = %q <%s>, want %q <%s>", field, i, got[i].Name, got[i].Address, wantAddr.Name, wantAddr.Address)
		}
	}
}

// checkAlternativeBodies checks that the body is multipart/alternative with
// the text and the HTML of msg, in UTF-8.
func checkAlternativeBodies(t *testing.T, header mail.Header, body io.Reader, msg *Message) {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("parsing Content-Type %q: %v", header.Get("Content-Type"), err)
	}
	if mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", mediaType)
	}

	parts := multipart.NewReader(body, params["boundary"])
	want := []struct{ mediaType, content string }{
		{"text/plain", msg.Text},
		{"text/html", msg.HTML},
	}
	for _, w := range want {
		part, err := parts.NextPart()
		if err != nil {
			t.Fatalf("reading the %s part: %v", w.mediaType, err)
		}
		partType, partParams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("parsing part Content-Type: %v", err)
		}
		if partType != w.mediaType || !strings.EqualFold(partParams["charset"], "utf-8") {
			t.Errorf("part Content-Type = %q, want %s in UTF-8", part.Header.Get("Content-Type"), w.mediaType)
		}
		content, err := io.ReadAll(part) // multipart decodes quoted-printable
		if err != nil {
			t.Fatalf("reading the %s part: %v", w.mediaType, err)
		}
		got := strings.ReplaceAll(string(content), "\r\n", "\n")
		if strings.TrimRight(got, "\n") != strings.TrimRight(w.content, "\n") {
			t.Errorf("%s part = %q, want %q", w.mediaType, got, w.content)
		}
	}
	if _, err := parts.NextPart(); err != io.EOF {
		t.Errorf("message has more than two parts: %v", err)
	}
}

func TestSendImplicitTLS(t *testing.T) {
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{implicitTLS: cert.serverConfig()})
	cfg := srv.config(TLSImplicit, cert.pool)
	var dials atomic.Int32
	cfg.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}

	if err := Send(context.Background(), cfg, testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}

	if got := dials.Load(); got != 1 {
		t.Errorf("DialContext was called %d times, want 1", got)
	}
	messages, auths := srv.backend.snapshot()
	if len(messages) != 1 || !messages[0].tls {
		t.Errorf("server got %d messages, want 1 over TLS", len(messages))
	}
	if len(auths) != 1 || !auths[0].tls {
		t.Errorf("auth attempts = %+v, want one over TLS", auths)
	}
}

func TestSendLoginMechanism(t *testing.T) {
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig(), mechanisms: []string{sasl.Login}})

	if err := Send(context.Background(), srv.config(TLSStartTLS, cert.pool), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}

	_, auths := srv.backend.snapshot()
	if len(auths) != 1 || auths[0].mechanism != sasl.Login || auths[0].username != "api" {
		t.Errorf("auth attempts = %+v, want one LOGIN as api", auths)
	}
}

func TestSendTemporaryReply(t *testing.T) {
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
	srv.backend.configure(func(b *testBackend) {
		b.mailErr = &smtpd.SMTPError{Code: 451, EnhancedCode: smtpd.EnhancedCode{4, 3, 0}, Message: "try again later"}
	})

	err := Send(context.Background(), srv.config(TLSStartTLS, cert.pool), testMessage())

	e := asError(t, err)
	if e.Op != OpMail {
		t.Errorf("Op = %q, want %q", e.Op, OpMail)
	}
	if !e.Temporary {
		t.Error("a 451 reply is not temporary")
	}
	if e.Code != 451 || e.EnhancedCode != "4.3.0" {
		t.Errorf("code = %d %q, want 451 4.3.0", e.Code, e.EnhancedCode)
	}
	if messages, _ := srv.backend.snapshot(); len(messages) != 0 {
		t.Errorf("server got %d messages, want none", len(messages))
	}
}

func TestSendRejectedRecipients(t *testing.T) {
	userUnknown := &smtpd.SMTPError{Code: 550, EnhancedCode: smtpd.EnhancedCode{5, 1, 1}, Message: "no such user"}
	mailboxBusy := &smtpd.SMTPError{Code: 451, EnhancedCode: smtpd.EnhancedCode{4, 2, 0}, Message: "mailbox busy"}
	tests := []struct {
		name          string
		errs          map[string]error
		wantTemporary bool
		wantCode      int
		wantEnhanced  string
		wantRejected  []string
	}{
		{"permanent", map[string]error{"ops@example.com": userUnknown}, false, 550, "5.1.1", []string{"ops@example.com"}},
		{"temporary", map[string]error{"ops@example.com": mailboxBusy}, true, 451, "4.2.0", []string{"ops@example.com"}},
		{"mixed is permanent", map[string]error{"zoe@example.com": mailboxBusy, "sales@example.org": userUnknown}, false, 550, "5.1.1", []string{"zoe@example.com", "sales@example.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := newTestCert(t)
			srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
			srv.backend.configure(func(b *testBackend) { b.rcptErrs = tt.errs })

			err := Send(context.Background(), srv.config(TLSStartTLS, cert.pool), testMessage())

			e := asError(t, err)
			if e.Op != OpRcpt {
				t.Errorf("Op = %q, want %q", e.Op, OpRcpt)
			}
			if e.Temporary != tt.wantTemporary {
				t.Errorf("Temporary = %v, want %v", e.Temporary, tt.wantTemporary)
			}
			if e.Code != tt.wantCode || e.EnhancedCode != tt.wantEnhanced {
				t.Errorf("code = %d %q, want %d %q", e.Code, e.EnhancedCode, tt.wantCode, tt.wantEnhanced)
			}
			if !slices.Equal(e.Recipients, tt.wantRejected) {
				t.Errorf("Recipients = %v, want %v", e.Recipients, tt.wantRejected)
			}
			for _, addr := range tt.wantRejected {
				if !strings.Contains(err.Error(), addr) {
					t.Errorf("error %q does not name %s", err, addr)
				}
			}
			if messages, _ := srv.backend.snapshot(); len(messages) != 0 {
				t.Errorf("server got %d messages, want none", len(messages))
			}
		})
	}
}

func TestSendWithoutStartTLSNeverFallsBack(t *testing.T) {
	for _, withAuth := range []bool{true, false} {
		name := "without credentials"
		if withAuth {
			name = "with credentials"
		}
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, serverOptions{allowInsecureAuth: true})
			cfg := srv.config(TLSStartTLS, nil)
			if !withAuth {
				cfg.Username, cfg.Password = "", ""
			}

			err := Send(context.Background(), cfg, testMessage())

			e := asError(t, err)
			if e.Op != OpStartTLS {
				t.Errorf("Op = %q, want %q", e.Op, OpStartTLS)
			}
			if !strings.Contains(err.Error(), "STARTTLS") {
				t.Errorf("error %q does not say that STARTTLS is missing", err)
			}
			messages, auths := srv.backend.snapshot()
			if len(auths) != 0 {
				t.Errorf("AUTH was sent without TLS: %+v", auths)
			}
			if len(messages) != 0 {
				t.Errorf("server got %d messages in plain text, want none", len(messages))
			}
		})
	}
}

func TestSendPlainTextWhenTLSNone(t *testing.T) {
	srv := newTestServer(t, serverOptions{allowInsecureAuth: true})

	if err := Send(context.Background(), srv.config(TLSNone, nil), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}

	messages, auths := srv.backend.snapshot()
	if len(auths) != 1 || auths[0].tls {
		t.Errorf("auth attempts = %+v, want one in plain text", auths)
	}
	if len(messages) != 1 || messages[0].tls {
		t.Errorf("server got %d messages, want 1 in plain text", len(messages))
	}
}

func TestSendAuthFailure(t *testing.T) {
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
	cfg := srv.config(TLSStartTLS, cert.pool)
	cfg.Password = "wrong-Pa55word-value"

	err := Send(context.Background(), cfg, testMessage())

	e := asError(t, err)
	if e.Op != OpAuth || e.Code != 535 || e.Temporary {
		t.Errorf("error = %s %d temporary=%v, want a permanent auth error with 535", e.Op, e.Code, e.Temporary)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("error %q contains the password", err)
	}
	if !strings.Contains(err.Error(), `"api"`) {
		t.Errorf("error %q does not name the username", err)
	}
}

func TestSendWrongCertificate(t *testing.T) {
	cert := newTestCert(t)
	other := newTestCert(t)
	tests := []struct {
		name   string
		opts   serverOptions
		mode   TLSMode
		wantOp Op
	}{
		{"starttls", serverOptions{startTLS: cert.serverConfig()}, TLSStartTLS, OpStartTLS},
		{"implicit", serverOptions{implicitTLS: cert.serverConfig()}, TLSImplicit, OpTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.opts)

			err := Send(context.Background(), srv.config(tt.mode, other.pool), testMessage())

			e := asError(t, err)
			if e.Op != tt.wantOp {
				t.Errorf("Op = %q, want %q", e.Op, tt.wantOp)
			}
			if !e.Temporary {
				t.Error("a TLS error is not temporary")
			}
			var unknownAuthority x509.UnknownAuthorityError
			if !errors.As(err, &unknownAuthority) {
				t.Errorf("error %q does not wrap x509.UnknownAuthorityError", err)
			}
			messages, auths := srv.backend.snapshot()
			if len(messages) != 0 || len(auths) != 0 {
				t.Errorf("server got %d messages and %d auth attempts, want none", len(messages), len(auths))
			}
		})
	}
}

func TestSendTimesOutBeforeGreeting(t *testing.T) {
	cfg := &Config{Addr: silentServer(t), From: "noreply@example.com", TLS: TLSNone, Timeout: 300 * time.Millisecond}

	start := time.Now()
	err := Send(context.Background(), cfg, testMessage())
	elapsed := time.Since(start)

	e := asError(t, err)
	if e.Op != OpGreeting || !e.Temporary {
		t.Errorf("error = %s temporary=%v, want a temporary greeting error", e.Op, e.Temporary)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("error %q is not a timeout", err)
	}
	if !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Errorf("error %q does not say it timed out after 300ms", err)
	}
	// Generous bound: the point is that Send does not wait for the server.
	if elapsed > 10*time.Second {
		t.Errorf("Send took %s with a timeout of 300ms", elapsed)
	}
}

func TestSendTimesOutMidSession(t *testing.T) {
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
	block := make(chan struct{})
	srv.backend.configure(func(b *testBackend) { b.block = block })
	t.Cleanup(func() { close(block) })
	cfg := srv.config(TLSStartTLS, cert.pool)
	cfg.Timeout = 300 * time.Millisecond

	start := time.Now()
	err := Send(context.Background(), cfg, testMessage())
	elapsed := time.Since(start)

	e := asError(t, err)
	if e.Op != OpRcpt || !e.Temporary || e.Code != 0 {
		t.Errorf("error = %s code=%d temporary=%v, want a temporary rcpt error without a code", e.Op, e.Code, e.Temporary)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("error %q is not a timeout", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("Send took %s with a timeout of 300ms", elapsed)
	}
}

func TestSendTimeoutIsPerCommand(t *testing.T) {
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
	// MAIL, three RCPT and DATA each take 300ms, 1.5s in total, while
	// every one of them is well within the timeout of 1s.
	srv.backend.configure(func(b *testBackend) { b.delay = 300 * time.Millisecond })
	cfg := srv.config(TLSStartTLS, cert.pool)
	cfg.Timeout = time.Second

	start := time.Now()
	err := Send(context.Background(), cfg, testMessage())
	elapsed := time.Since(start)

	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if elapsed <= cfg.Timeout {
		t.Errorf("delivery took %s, not longer than the timeout %s, so this test proves nothing", elapsed, cfg.Timeout)
	}
}

func TestSendCancelled(t *testing.T) {
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
	block := make(chan struct{})
	srv.backend.configure(func(b *testBackend) { b.block = block })
	t.Cleanup(func() { close(block) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan error, 1)
	go func() { done <- Send(ctx, srv.config(TLSStartTLS, cert.pool), testMessage()) }()
	select {
	case <-srv.backend.rcptSeen:
	case <-time.After(10 * time.Second):
		t.Fatal("the server got no RCPT within 10s")
	}
	cancel()

	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return within 10s of the cancellation")
	}
	e := asError(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %q does not wrap context.Canceled", err)
	}
	if !e.Temporary || e.Code != 0 {
		t.Errorf("error code=%d temporary=%v, want temporary without a code", e.Code, e.Temporary)
	}
}

func TestSendSMTPUTF8(t *testing.T) {
	cert := newTestCert(t)
	msg := testMessage()
	msg.To = []string{"zoë@example.com"}
	msg.Cc = nil

	t.Run("offered", func(t *testing.T) {
		srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig(), smtpUTF8: true})
		if err := Send(context.Background(), srv.config(TLSStartTLS, cert.pool), msg); err != nil {
			t.Fatalf("Send: %v", err)
		}
		messages, _ := srv.backend.snapshot()
		if len(messages) != 1 || !slices.Equal(messages[0].recipients, []string{"zoë@example.com"}) {
			t.Errorf("server got %+v, want one message to zoë@example.com", messages)
		}
	})

	t.Run("not offered", func(t *testing.T) {
		srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
		err := Send(context.Background(), srv.config(TLSStartTLS, cert.pool), msg)
		e := asError(t, err)
		if e.Op != OpMail || e.Temporary {
			t.Errorf("error = %s temporary=%v, want a permanent mail error", e.Op, e.Temporary)
		}
		if !strings.Contains(err.Error(), "SMTPUTF8") {
			t.Errorf("error %q does not name SMTPUTF8", err)
		}
	})
}

func TestSendRejectsInvalidInputWithoutConnecting(t *testing.T) {
	dialed := false
	cfg := &Config{
		Addr: "smtp.example.com:587",
		From: "noreply@example.com",
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			dialed = true
			return nil, errors.New("the test dialer connects nowhere")
		},
	}
	tests := []struct {
		name   string
		cfg    func() *Config
		msg    *Message
		wantOp Op
		want   string
	}{
		{"invalid config", func() *Config { c := *cfg; c.From = "not an address"; return &c }, testMessage(), OpValidate, `"not an address"`},
		{"invalid recipient", func() *Config { return cfg }, &Message{To: []string{"ops@example.com", "ops at example"}}, OpCompose, `"ops at example"`},
		{"no recipients", func() *Config { return cfg }, &Message{Subject: "hi"}, OpCompose, "no recipients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Send(context.Background(), tt.cfg(), tt.msg)
			e := asError(t, err)
			if e.Op != tt.wantOp || e.Temporary {
				t.Errorf("error = %s temporary=%v, want a permanent %s error", e.Op, e.Temporary, tt.wantOp)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %s", err, tt.want)
			}
		})
	}
	if dialed {
		t.Error("Send connected although the input was invalid")
	}
}

func TestSendDialError(t *testing.T) {
	cfg := &Config{
		Addr: "smtp.example.com:587",
		From: "noreply@example.com",
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("blocked by the outbound guard")
		},
	}

	err := Send(context.Background(), cfg, testMessage())

	e := asError(t, err)
	if e.Op != OpDial || !e.Temporary {
		t.Errorf("error = %s temporary=%v, want a temporary dial error", e.Op, e.Temporary)
	}
	if !strings.Contains(err.Error(), "blocked by the outbound guard") {
		t.Errorf("error %q does not wrap the dialer's error", err)
	}
}

// asError returns err as an *Error and fails the test when it is not one.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("Send returned no error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q (%T) is not an *Error", err, err)
	}
	return e
}
