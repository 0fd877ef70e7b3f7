package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-webhooks/caddy-webhooks/delivery/email"
	"github.com/caddy-webhooks/caddy-webhooks/payload"
	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

// Error classes of e-mail attempts.
const (
	// ClassSMTPTemporary is a 4xx reply, which is retried.
	ClassSMTPTemporary = "smtp_temporary"

	// ClassSMTPRejected is a 5xx reply or a message the server cannot
	// take, which no retry can fix, so the event is dead-lettered at once.
	ClassSMTPRejected = "smtp_rejected"
)

// Defaults of e-mail destinations.
const (
	defaultEmailSubject = "[{webhook.event.type}] event {webhook.event.id}"
	defaultEmailBody    = "Event {webhook.event.type} ({webhook.event.id}) at {webhook.event.timestamp}.\n\n{webhook.data}\n"
)

// Email makes a destination send each event as one e-mail to all its
// recipients, through the app's SMTP server.
type Email struct {
	// To lists the recipients, as addresses with optional display names
	// such as "Sales <sales@example.com>". At least one is required.
	To []string `json:"to"`

	// Cc lists further recipients who receive the same message.
	Cc []string `json:"cc,omitempty"`

	// Subject is the subject line, with the placeholders of the event
	// (webhook.event.id, webhook.event.type, webhook.event.timestamp,
	// webhook.data.<path>, and for default payloads webhook.request.* and
	// webhook.response.*) and Caddy's global ones such as {env.*}.
	// Non-ASCII text is encoded as RFC 2047 requires. Default:
	// "[{webhook.event.type}] event {webhook.event.id}".
	Subject string `json:"subject,omitempty"`

	// Body is the plain-text body in UTF-8, with the same placeholders as
	// Subject. Default: the event type, id and timestamp, followed by the
	// event's data as JSON.
	Body string `json:"body,omitempty"`

	// HTML is an HTML body, sent next to Body as multipart/alternative.
	// Placeholder values are inserted as they are, not HTML-escaped.
	// Default: none.
	HTML string `json:"html,omitempty"`
}

// compiledEmail is an Email with its templates parsed.
type compiledEmail struct {
	to, cc              []string
	subject, body, html *placeholder.Text
}

func (e *Email) compile() (*compiledEmail, error) {
	if len(e.To) == 0 {
		return nil, errors.New("email has no recipients: add at least one address to 'to'")
	}
	for _, list := range [][]string{e.To, e.Cc} {
		for _, addr := range list {
			if _, err := mail.ParseAddress(addr); err != nil {
				return nil, fmt.Errorf("invalid email recipient %q: %v; use an address such as ops@example.com or \"Ops <ops@example.com>\"", addr, err)
			}
		}
	}

	c := &compiledEmail{to: e.To, cc: e.Cc}
	fields := []struct {
		name, text, fallback string
		dst                  **placeholder.Text
	}{
		{"subject", e.Subject, defaultEmailSubject, &c.subject},
		{"body", e.Body, defaultEmailBody, &c.body},
		{"html", e.HTML, "", &c.html},
	}
	for _, f := range fields {
		text := f.text
		if text == "" {
			text = f.fallback
		}
		if text == "" {
			continue
		}
		parsed, err := parseStoredTemplate(text)
		if err != nil {
			return nil, fmt.Errorf("email %s: %w", f.name, err)
		}
		*f.dst = parsed
	}
	return c, nil
}

// parseStoredTemplate parses a text rendered from a stored event and
// checks its webhook.* names.
func parseStoredTemplate(text string) (*placeholder.Text, error) {
	parsed, err := placeholder.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parsing template %q: %w", text, err)
	}
	for _, name := range parsed.Names() {
		if err := payload.CheckStoredName(name); err != nil {
			return nil, err
		}
	}
	return parsed, nil
}

// mailSender sends the e-mails of one destination.
type mailSender struct {
	smtp    *email.Config
	message *compiledEmail
	timeout time.Duration

	// messageIDDomain is the right side of the Message-ID, taken from the
	// sender address, so that every attempt of an event has the same
	// Message-ID and mail clients can drop repeats.
	messageIDDomain string
}

func newMailSender(smtp *email.Config, message *compiledEmail, timeout time.Duration) (*mailSender, error) {
	if smtp == nil {
		return nil, errors.New("email destination without an SMTP server: configure one with the smtp global option")
	}
	from, err := mail.ParseAddress(smtp.From)
	if err != nil {
		return nil, fmt.Errorf("invalid SMTP from address %q: %v", smtp.From, err)
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	return &mailSender{smtp: smtp, message: message, timeout: timeout, messageIDDomain: domain}, nil
}

// send renders and sends the e-mail of one event. The status code of the
// result is the SMTP reply code of a failure, and 250 on success.
func (m *mailSender) send(ctx context.Context, ev *event) (res attemptResult) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()

	res.start = time.Now()
	defer func() { res.duration = time.Since(res.start) }()

	values := payload.StoredResolver(ev.id, ev.payload, placeholder.ResolverFunc(caddy.NewReplacer().Get))
	msg := &email.Message{
		To:      m.message.to,
		Cc:      m.message.cc,
		Subject: m.message.subject.Render(values),
		Text:    m.message.body.Render(values),
		Headers: map[string]string{"Message-ID": "<" + ev.id + "@" + m.messageIDDomain + ">"},
	}
	if m.message.html != nil {
		msg.HTML = m.message.html.Render(values)
	}

	err := email.Send(ctx, m.smtp, msg)
	if err == nil {
		res.statusCode = 250
		return res
	}
	res.err = err
	var sendErr *email.Error
	if !errors.As(err, &sendErr) {
		res.errorClass = ClassConnection
		return res
	}
	res.statusCode = sendErr.Code
	switch {
	case sendErr.Code >= 400 && sendErr.Code < 500:
		res.errorClass = ClassSMTPTemporary
	case !sendErr.Temporary:
		res.errorClass = ClassSMTPRejected
		res.permanent = true
	default:
		res.errorClass = classifyError(sendErr.Err)
	}
	return res
}
