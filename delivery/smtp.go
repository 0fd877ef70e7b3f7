package delivery

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-webhooks/caddy-webhooks/delivery/email"
)

// SMTP is the server that e-mail destinations and e-mail alerts send
// through: the JSON config apps.webhooks.smtp.
type SMTP struct {
	// Address is the server as host:port, such as `smtp.example.com:587`.
	// Required.
	Address string `json:"address"`

	// Username and Password log in with SMTP AUTH. Set both or neither.
	// Both may use `{env.*}` and `{file.*}` placeholders, which are
	// resolved at provisioning. AUTH is never sent over a connection
	// without TLS unless TLS is `none`. The password never appears in logs
	// or errors.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// From is the sender, such as `API <noreply@example.com>`. Required.
	From string `json:"from"`

	// TLS is `starttls`, `implicit` or `none`. `none` sends the messages
	// and the password in plain text and logs a warning at every start.
	// Default: `implicit` for port 465, `starttls` otherwise; STARTTLS is
	// then required, with no fallback to plain text.
	TLS string `json:"tls,omitempty"`

	// Timeout bounds the connect and each SMTP command. Default: `30s`.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// CA lists PEM files of the authorities that verify the server's
	// certificate, for a server with a private certificate. Default: the
	// system's roots.
	CA []string `json:"ca,omitempty"`
}

// Build resolves the placeholders of the credentials, loads the CA files
// and checks the result. A nil repl uses caddy.NewReplacer.
func (s *SMTP) Build(repl *caddy.Replacer) (*email.Config, error) {
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	cfg := &email.Config{
		Addr:    s.Address,
		From:    s.From,
		TLS:     email.TLSMode(s.TLS),
		Timeout: time.Duration(s.Timeout),
	}
	var err error
	if cfg.Username, err = repl.ReplaceOrErr(s.Username, true, true); err != nil {
		return nil, fmt.Errorf("smtp: resolving username: %w; set the environment variable or create the file that the placeholder names", err)
	}
	if cfg.Password, err = repl.ReplaceOrErr(s.Password, true, true); err != nil {
		return nil, fmt.Errorf("smtp: resolving password: %w; set the environment variable or create the file that the placeholder names", err)
	}
	if len(s.CA) > 0 {
		pool := x509.NewCertPool()
		for _, file := range s.CA {
			pem, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("smtp: reading CA file: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("smtp: CA file %q contains no PEM certificate: give a file with -----BEGIN CERTIFICATE----- blocks", file)
			}
		}
		cfg.RootCAs = pool
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return cfg, nil
}

// PlainText reports whether the server is reached without TLS.
func (s *SMTP) PlainText() bool {
	return strings.EqualFold(s.TLS, string(email.TLSNone))
}
