package email

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtpd "github.com/emersion/go-smtp"

	"github.com/caddy-webhooks/caddy-webhooks/internal/testpki"
)

// testCert is a certificate for 127.0.0.1 and localhost, with a pool that
// trusts its CA.
type testCert struct {
	tls  tls.Certificate
	pool *x509.CertPool
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	ca := testpki.NewCA(t)
	cert, _, _ := ca.Issue(t, testpki.Options{
		CommonName: "test SMTP server",
		IPs:        testpki.Loopback,
		DNSNames:   []string{"localhost"},
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return testCert{tls: cert, pool: pool}
}

func (c testCert) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.tls}, MinVersion: tls.VersionTLS12}
}

// serverOptions configure a testServer.
type serverOptions struct {
	startTLS          *tls.Config // offers STARTTLS with this configuration
	implicitTLS       *tls.Config // speaks TLS from the start with this configuration
	allowInsecureAuth bool        // offers AUTH without TLS
	smtpUTF8          bool        // offers SMTPUTF8
	mechanisms        []string    // AUTH mechanisms offered; default PLAIN
}

// received is a message as the test server got it.
type received struct {
	from       string
	recipients []string
	data       []byte
	tls        bool
}

// authAttempt is an AUTH exchange as the test server saw it.
type authAttempt struct {
	mechanism string
	username  string
	tls       bool
}

// testBackend records what clients send and replies as its fields set.
type testBackend struct {
	username, password string
	mechanisms         []string

	mu       sync.Mutex
	messages []received
	auths    []authAttempt
	mailErr  error
	rcptErrs map[string]error
	delay    time.Duration // before replying to MAIL, RCPT and DATA
	block    chan struct{} // RCPT waits until it is closed
	rcptSeen chan struct{} // closed at the first RCPT
	seenOnce sync.Once
}

func (b *testBackend) NewSession(c *smtpd.Conn) (smtpd.Session, error) {
	return &testSession{backend: b, conn: c}, nil
}

// configure changes the replies of the backend, with its lock held.
func (b *testBackend) configure(change func(b *testBackend)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	change(b)
}

func (b *testBackend) snapshot() ([]received, []authAttempt) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.messages...), append([]authAttempt(nil), b.auths...)
}

func (b *testBackend) settings() (time.Duration, chan struct{}, error, map[string]error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.delay, b.block, b.mailErr, b.rcptErrs
}

// testServer is an SMTP server from github.com/emersion/go-smtp on
// 127.0.0.1, at a port picked at run time.
type testServer struct {
	addr    string
	backend *testBackend
	options serverOptions
}

func newTestServer(t *testing.T, opts serverOptions) *testServer {
	t.Helper()
	backend := &testBackend{
		username:   "api",
		password:   "s3cret-pa55word",
		mechanisms: opts.mechanisms,
		rcptSeen:   make(chan struct{}),
	}
	if backend.mechanisms == nil {
		backend.mechanisms = []string{sasl.Plain}
	}
	server := smtpd.NewServer(backend)
	server.Domain = "localhost"
	server.TLSConfig = opts.startTLS
	server.AllowInsecureAuth = opts.allowInsecureAuth
	server.EnableSMTPUTF8 = opts.smtpUTF8
	server.ErrorLog = log.New(io.Discard, "", 0)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	if opts.implicitTLS != nil {
		ln = tls.NewListener(ln, opts.implicitTLS)
	}
	go func() {
		if err := server.Serve(ln); err != nil && !errors.Is(err, smtpd.ErrServerClosed) {
			t.Errorf("serving SMTP: %v", err)
		}
	}()
	t.Cleanup(func() { server.Close() })

	return &testServer{addr: ln.Addr().String(), backend: backend, options: opts}
}

// config returns a configuration for the server with its credentials.
func (s *testServer) config(mode TLSMode, pool *x509.CertPool) *Config {
	return &Config{
		Addr:     s.addr,
		Username: s.backend.username,
		Password: s.backend.password,
		From:     "API <noreply@example.com>",
		TLS:      mode,
		Timeout:  5 * time.Second,
		RootCAs:  pool,
	}
}

// testSession is one SMTP session of the test server.
type testSession struct {
	backend    *testBackend
	conn       *smtpd.Conn
	from       string
	recipients []string
}

func (s *testSession) isTLS() bool {
	_, ok := s.conn.TLSConnectionState()
	return ok
}

func (s *testSession) AuthMechanisms() []string {
	return s.backend.mechanisms
}

func (s *testSession) Auth(mechanism string) (sasl.Server, error) {
	check := func(username, password string) error {
		s.backend.mu.Lock()
		s.backend.auths = append(s.backend.auths, authAttempt{mechanism: mechanism, username: username, tls: s.isTLS()})
		s.backend.mu.Unlock()
		if username != s.backend.username || password != s.backend.password {
			return smtpd.ErrAuthFailed
		}
		return nil
	}
	switch mechanism {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, username, password string) error {
			return check(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	default:
		return nil, smtpd.ErrAuthUnknownMechanism
	}
}

func (s *testSession) Mail(from string, _ *smtpd.MailOptions) error {
	delay, _, mailErr, _ := s.backend.settings()
	time.Sleep(delay)
	if mailErr != nil {
		return mailErr
	}
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtpd.RcptOptions) error {
	delay, block, _, rcptErrs := s.backend.settings()
	s.backend.seenOnce.Do(func() { close(s.backend.rcptSeen) })
	time.Sleep(delay)
	if block != nil {
		<-block
	}
	if err := rcptErrs[to]; err != nil {
		return err
	}
	s.recipients = append(s.recipients, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	delay, _, _, _ := s.backend.settings()
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	time.Sleep(delay)
	s.backend.mu.Lock()
	defer s.backend.mu.Unlock()
	s.backend.messages = append(s.backend.messages, received{
		from:       s.from,
		recipients: append([]string(nil), s.recipients...),
		data:       data,
		tls:        s.isTLS(),
	})
	return nil
}

func (s *testSession) Reset() {
	s.from = ""
	s.recipients = nil
}

func (s *testSession) Logout() error {
	return nil
}

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// implements only for clients.
type loginServer struct {
	check    func(username, password string) error
	username string
	step     int
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	l.step++
	switch l.step {
	case 1:
		return []byte("Username:"), false, nil
	case 2:
		l.username = string(response)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.username, string(response))
	}
}

// silentServer accepts connections on 127.0.0.1 and never replies, as a
// server that hangs before its greeting.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, conn := range conns {
			conn.Close()
		}
	})
	return ln.Addr().String()
}
