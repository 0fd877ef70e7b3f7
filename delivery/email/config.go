// Package email sends e-mail notifications over SMTP: one message per call,
// to all its recipients, with TLS verified and required unless a
// configuration turns it off on purpose. It composes messages with
// github.com/wneessen/go-mail and drives the SMTP session with its smtp
// package, step by step, so that every command gets its own timeout.
package email

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"time"
)

// TLSMode selects how the connection to the SMTP server is encrypted.
type TLSMode string

// TLS modes.
const (
	// TLSStartTLS connects in plain text and upgrades the connection with
	// STARTTLS (RFC 3207) before anything else is sent. A server that does
	// not offer STARTTLS fails the delivery: there is no fallback to plain
	// text.
	TLSStartTLS TLSMode = "starttls"

	// TLSImplicit starts TLS as soon as the connection is open (RFC 8314),
	// as servers on port 465 expect.
	TLSImplicit TLSMode = "implicit"

	// TLSNone sends everything in plain text, the AUTH exchange with the
	// password included.
	TLSNone TLSMode = "none"
)

// DefaultTimeout is the timeout of the connect and of each command when
// Config.Timeout is 0. RFC 5321 section 4.5.3.2 suggests minutes per
// command for a mail relay. A notification sender retries later instead of
// waiting that long.
const DefaultTimeout = 30 * time.Second

// implicitTLSPort is the port of message submission over implicit TLS
// (RFC 8314 section 7.3).
const implicitTLSPort = 465

// Config is the SMTP server that messages go through and how to reach it.
type Config struct {
	// Addr is the SMTP server as host:port, such as smtp.example.com:587.
	// Required. The host also names the certificate that the server must
	// present.
	Addr string

	// Username and Password log in with SMTP AUTH, using PLAIN or, when the
	// server offers only that, LOGIN. Set both or neither. No AUTH is sent
	// when they are empty. The password never appears in errors.
	Username string
	Password string

	// From is the sender: an address with an optional display name, such
	// as "API <noreply@example.com>". Required. Its address is also the
	// envelope sender (MAIL FROM).
	From string

	// TLS selects the encryption: "starttls", "implicit" or "none".
	// Default: "implicit" when the port of Addr is 465, "starttls"
	// otherwise.
	//
	// WARNING: "none" sends the messages and the AUTH exchange, password
	// included, in plain text, readable and changeable by anyone on the
	// path. Use it only for a server on the same host or a network that
	// you trust, and log a warning when it is configured.
	TLS TLSMode

	// Timeout bounds the connect, the TLS handshake, and then each SMTP
	// command up to its reply on its own, so a slow server may take longer
	// than Timeout in total. Default: 30s (DefaultTimeout). The context of
	// Send bounds the whole delivery.
	Timeout time.Duration

	// RootCAs verifies the certificate of the server. Default: nil, the
	// system's certificate pool.
	RootCAs *x509.CertPool

	// DialContext opens the TCP connection, and TLS runs on top of it in
	// every mode. Default: nil, a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Validate checks the configuration without connecting. Its errors name the
// invalid field and value, never the password.
func (c *Config) Validate() error {
	if _, _, err := c.hostPort(); err != nil {
		return err
	}
	if _, err := c.sender(); err != nil {
		return err
	}

	switch c.TLS {
	case "", TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return fmt.Errorf("invalid tls mode %q: use %s, %s or %s", c.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("invalid timeout %s: use a positive duration, or 0 for the default %s", c.Timeout, DefaultTimeout)
	}
	if (c.Username == "") != (c.Password == "") {
		return errors.New("incomplete SMTP credentials: set both username and password, or neither")
	}
	return nil
}

// hostPort splits and checks Addr.
func (c *Config) hostPort() (host string, port int, err error) {
	const fix = "use host:port, such as smtp.example.com:587"
	if c.Addr == "" {
		return "", 0, errors.New("missing SMTP server address: " + fix)
	}
	host, portText, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return "", 0, fmt.Errorf("invalid SMTP server address %q: %w: %s", c.Addr, err, fix)
	}
	if host == "" {
		return "", 0, fmt.Errorf("invalid SMTP server address %q: missing host: %s", c.Addr, fix)
	}
	port, err = strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q in SMTP server address %q: use a number from 1 to 65535, such as 587", portText, c.Addr)
	}
	return host, port, nil
}

// sender parses From.
func (c *Config) sender() (*mail.Address, error) {
	if c.From == "" {
		return nil, errors.New(`missing sender address: set from to an address such as "API <noreply@example.com>"`)
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, fmt.Errorf(`invalid sender address %q: %w: use an address such as "API <noreply@example.com>"`, c.From, err)
	}
	return from, nil
}

// tlsMode returns TLS, or its default for the port of Addr. Addr must be
// valid.
func (c *Config) tlsMode() TLSMode {
	if c.TLS != "" {
		return c.TLS
	}
	if _, port, err := c.hostPort(); err == nil && port == implicitTLSPort {
		return TLSImplicit
	}
	return TLSStartTLS
}

// timeout returns Timeout, or its default.
func (c *Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}
