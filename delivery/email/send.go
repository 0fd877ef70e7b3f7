package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Send delivers msg through the SMTP server of cfg in one transaction to
// all its recipients. It returns nil once the server has accepted the
// message, and an *Error otherwise.
//
// When any recipient is rejected, Send aborts the transaction before DATA,
// so no recipient gets the message, and the error lists the rejected
// addresses. The error is temporary only when every rejection is.
//
// Cancelling ctx closes the connection and ends Send.
func Send(ctx context.Context, cfg *Config, msg *Message) error {
	if err := cfg.Validate(); err != nil {
		return permanentError(OpValidate, err)
	}
	m, env, err := compose(cfg, msg)
	if err != nil {
		return permanentError(OpCompose, fmt.Errorf("composing the e-mail: %w", err))
	}

	s, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.close()

	if err := s.login(); err != nil {
		return err
	}
	return s.deliver(m, env)
}

// session is an open SMTP connection, greeted and encrypted as the
// configuration requires.
type session struct {
	ctx     context.Context
	cfg     *Config
	host    string
	mode    TLSMode
	timeout time.Duration

	// conn is the connection that the client started on: the TLS
	// connection in implicit TLS mode, the TCP connection otherwise.
	conn   net.Conn
	client *smtp.Client

	// stopWatch stops closing conn when ctx is done.
	stopWatch func() bool

	// broken is set when a step failed without a reply, such as on a
	// timeout, after which the connection cannot carry a QUIT.
	broken bool
}

// open connects to the server of cfg, reads its greeting, sends EHLO and
// makes sure the connection is encrypted unless TLS is "none". cfg must be
// valid.
func open(ctx context.Context, cfg *Config) (*session, error) {
	host, _, _ := cfg.hostPort()
	s := &session{
		ctx:     ctx,
		cfg:     cfg,
		host:    host,
		mode:    cfg.tlsMode(),
		timeout: cfg.timeout(),
	}

	if err := s.dial(); err != nil {
		return nil, err
	}
	if err := s.greet(); err != nil {
		s.close()
		return nil, err
	}
	if s.mode == TLSStartTLS {
		if err := s.startTLS(); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// dial opens the connection and, in implicit TLS mode, completes the TLS
// handshake, each within the timeout.
func (s *session) dial() error {
	dial := s.cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	dialCtx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	conn, err := dial(dialCtx, "tcp", s.cfg.Addr)
	if err != nil {
		return s.fail(OpDial, err, "connecting to", "check the address, and that the server is up and accepts connections from this host")
	}
	s.conn = conn
	s.stopWatch = context.AfterFunc(s.ctx, func() { conn.Close() })

	if s.mode != TLSImplicit {
		return nil
	}
	tlsConn := tls.Client(conn, s.tlsConfig())
	handshakeCtx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	if err := tlsConn.HandshakeContext(handshakeCtx); err != nil {
		s.close()
		return s.fail(OpTLS, err, "starting implicit TLS with", s.tlsFix())
	}
	s.conn = tlsConn
	return nil
}

// greet reads the greeting of the server and sends EHLO, or HELO when the
// server does not support EHLO.
func (s *session) greet() error {
	if err := s.conn.SetDeadline(time.Now().Add(s.timeout)); err != nil {
		return s.fail(OpGreeting, err, "reading the greeting of", "")
	}
	client, err := smtp.NewClient(s.conn, s.host)
	if err != nil {
		return s.fail(OpGreeting, err, "reading the greeting of", "check that the address is an SMTP server and that tls matches what it expects on this port")
	}
	s.client = client

	if err := s.client.UpdateDeadline(s.timeout); err != nil {
		return s.fail(OpHello, err, "sending EHLO to", "")
	}
	if err := s.client.Hello(localName()); err != nil {
		return s.fail(OpHello, err, "sending EHLO to", "")
	}
	return nil
}

// startTLS upgrades the connection with STARTTLS, which the server must
// offer.
func (s *session) startTLS() error {
	if ok, _ := s.client.Extension("STARTTLS"); !ok {
		err := errors.New("the server does not offer STARTTLS, and tls starttls never falls back to plain text")
		return s.fail(OpStartTLS, err, "starting TLS with",
			"set tls implicit if the server expects TLS from the start, as on port 465, or tls none to send in plain text on purpose")
	}
	if err := s.client.UpdateDeadline(s.timeout); err != nil {
		return s.fail(OpStartTLS, err, "starting TLS with", "")
	}
	// StartTLS sends EHLO again over TLS, which runs the handshake.
	if err := s.client.StartTLS(s.tlsConfig()); err != nil {
		return s.fail(OpStartTLS, err, "starting TLS with", s.tlsFix())
	}
	if state, ok := s.client.TLSConnectionState(); !ok || !state.HandshakeComplete {
		return s.fail(OpStartTLS, errors.New("the TLS handshake did not complete"), "starting TLS with", "")
	}
	return nil
}

// login authenticates with SMTP AUTH when the configuration has
// credentials, and only over TLS unless TLS is "none".
func (s *session) login() error {
	if s.cfg.Username == "" {
		return nil
	}
	if _, encrypted := s.client.TLSConnectionState(); !encrypted && s.mode != TLSNone {
		// open never returns an unencrypted session in these modes. This
		// check keeps the password off the wire should that ever change.
		return permanentError(OpAuth, fmt.Errorf("not sending AUTH to SMTP server %q over a connection without TLS: set tls starttls or implicit", s.cfg.Addr))
	}

	ok, offered := s.client.Extension("AUTH")
	if !ok {
		return permanentError(OpAuth, fmt.Errorf("SMTP server %q does not offer AUTH: remove username and password, or use the server's submission port", s.cfg.Addr))
	}
	auth, err := s.authMechanism(offered)
	if err != nil {
		return permanentError(OpAuth, err)
	}

	if err := s.client.UpdateDeadline(s.timeout); err != nil {
		return s.fail(OpAuth, err, "authenticating to", "")
	}
	if err := s.client.Auth(auth); err != nil {
		return s.fail(OpAuth, err, fmt.Sprintf("authenticating as %q to", s.cfg.Username), "check the username and password")
	}
	return nil
}

// authMechanism picks PLAIN, or LOGIN when the server offers only that,
// from the mechanisms that the server offers.
func (s *session) authMechanism(offered string) (smtp.Auth, error) {
	mechanisms := strings.Fields(strings.ToUpper(offered))
	// PlainAuth and LoginAuth of go-mail reject AUTH without TLS to hosts
	// other than localhost unless allowed. Only tls none gets here without
	// TLS.
	allowPlainText := s.mode == TLSNone
	switch {
	case slices.Contains(mechanisms, "PLAIN"):
		return smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host, allowPlainText), nil
	case slices.Contains(mechanisms, "LOGIN"):
		return smtp.LoginAuth(s.cfg.Username, s.cfg.Password, s.host, allowPlainText), nil
	default:
		return nil, fmt.Errorf("SMTP server %q offers the AUTH mechanisms %q, but none of PLAIN and LOGIN, which this sender supports: use an account or server that accepts one of them", s.cfg.Addr, offered)
	}
}

// deliver runs the mail transaction: MAIL FROM, RCPT TO for every
// recipient, and DATA with the message.
func (s *session) deliver(m *gomail.Msg, env envelope) error {
	if env.needsSMTPUTF8 {
		if ok, _ := s.client.Extension("SMTPUTF8"); !ok {
			return permanentError(OpMail, fmt.Errorf("SMTP server %q does not support SMTPUTF8, which the non-ASCII addresses of this message need: use ASCII addresses", s.cfg.Addr))
		}
	}

	if err := s.client.UpdateDeadline(s.timeout); err != nil {
		return s.fail(OpMail, err, "sending MAIL FROM to", "")
	}
	if err := s.client.Mail("<" + env.from + ">"); err != nil {
		return s.fail(OpMail, err, fmt.Sprintf("sending MAIL FROM:<%s> to", env.from), "check that the server lets this account send as the from address")
	}

	if err := s.addRecipients(env.recipients); err != nil {
		return err
	}
	return s.sendData(m)
}

// addRecipients sends RCPT TO for every recipient. When any is rejected it
// resets the transaction and returns an error that lists all rejections.
func (s *session) addRecipients(recipients []string) error {
	var rejected []string
	var causes errorList
	var first *Error
	for _, rcpt := range recipients {
		if err := s.client.UpdateDeadline(s.timeout); err != nil {
			return s.fail(OpRcpt, err, "sending RCPT TO to", "")
		}
		err := s.client.Rcpt("<" + rcpt + ">")
		if err == nil {
			continue
		}

		e := replyError(OpRcpt, err)
		if e.Code == 0 {
			// No reply, such as a timeout: the connection is unusable.
			return s.fail(OpRcpt, err, fmt.Sprintf("sending RCPT TO:<%s> to", rcpt), "")
		}
		rejected = append(rejected, rcpt)
		causes = append(causes, fmt.Errorf("%q: %w", rcpt, err))
		if first == nil || first.Temporary && !e.Temporary {
			first = e
		}
	}
	if len(rejected) == 0 {
		return nil
	}

	// The transaction is abandoned either way. A failed RSET changes
	// nothing for the caller.
	_ = s.client.UpdateDeadline(s.timeout)
	_ = s.client.Reset()

	temporary := true
	for _, err := range causes {
		temporary = temporary && replyError(OpRcpt, err).Temporary
	}
	return &Error{
		Op:           OpRcpt,
		Temporary:    temporary,
		Code:         first.Code,
		EnhancedCode: first.EnhancedCode,
		Recipients:   rejected,
		Err: fmt.Errorf("SMTP server %q rejected %d of %d recipients, so the message went to none: %w: check the addresses",
			s.cfg.Addr, len(rejected), len(recipients), causes),
	}
}

// sendData sends DATA, the message, and waits for the server to accept it.
func (s *session) sendData(m *gomail.Msg) error {
	if err := s.client.UpdateDeadline(s.timeout); err != nil {
		return s.fail(OpData, err, "sending DATA to", "")
	}
	w, err := s.client.Data()
	if err != nil {
		return s.fail(OpData, err, "sending DATA to", "")
	}

	if err := s.client.UpdateDeadline(s.timeout); err != nil {
		return s.fail(OpData, err, "sending the message to", "")
	}
	if _, err := m.WriteTo(w); err != nil {
		return s.fail(OpData, err, "sending the message to", "")
	}

	if err := s.client.UpdateDeadline(s.timeout); err != nil {
		return s.fail(OpData, err, "sending the message to", "")
	}
	if err := w.Close(); err != nil {
		return s.fail(OpData, err, "sending the message to", "")
	}
	return nil
}

// close ends the session with QUIT when the connection still works, and
// closes it.
func (s *session) close() {
	if s.stopWatch != nil {
		s.stopWatch()
	}
	if s.client != nil && s.client.HasConnection() && !s.broken && s.ctx.Err() == nil {
		// The message is accepted or abandoned by now, so a failed QUIT
		// changes nothing.
		_ = s.client.UpdateDeadline(s.timeout)
		_ = s.client.Quit()
	}
	if s.conn != nil {
		s.conn.Close()
	}
}

// fail returns the Error of op for err. step is the gerund phrase that
// the server address completes, such as "connecting to", and fix is the
// advice on what to do next, or empty.
func (s *session) fail(op Op, err error, step, fix string) *Error {
	classified := replyError(op, err)
	if classified.Code == 0 {
		s.broken = true
	}

	switch {
	case s.ctx.Err() != nil:
		err = fmt.Errorf("%w: %w", context.Cause(s.ctx), err)
		// A cancelled delivery is no reply of the server.
		classified.Temporary, classified.Code, classified.EnhancedCode = true, 0, ""
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("timed out after %s: %w", s.timeout, err)
		fix = "check that the server is up and not overloaded, or raise the timeout"
	case errors.Is(err, io.EOF):
		err = fmt.Errorf("the server closed the connection: %w", err)
	}

	if fix != "" {
		fix = ": " + fix
	}
	classified.Err = fmt.Errorf("%s SMTP server %q: %w%s", step, s.cfg.Addr, err, fix)
	return classified
}

// tlsConfig verifies the certificate of the server against RootCAs, or the
// system pool, for the host of Addr.
func (s *session) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName: s.host,
		RootCAs:    s.cfg.RootCAs,
		MinVersion: tls.VersionTLS12,
	}
}

func (s *session) tlsFix() string {
	return fmt.Sprintf("check that the server's certificate is valid for %q and signed by a trusted authority", s.host)
}

// localName returns the name that EHLO introduces this host with: its host
// name, or "localhost" when it has none that fits in the command.
func localName() string {
	name, err := os.Hostname()
	if err != nil || name == "" || strings.ContainsAny(name, " \t\r\n") {
		return "localhost"
	}
	return name
}
