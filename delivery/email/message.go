package email

import (
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
)

// Message is one e-mail to all its recipients.
type Message struct {
	// To and Cc are the recipients: addresses with optional display names,
	// such as "Zoë <zoe@example.com>". At least one is required. Every
	// recipient gets the same message, in one SMTP transaction.
	To, Cc []string

	// Subject is the subject line. Line breaks in it become spaces, because
	// a header value is one line. Non-ASCII text is encoded as RFC 2047
	// words.
	Subject string

	// Text is the plain text body and HTML the HTML body. With both, the
	// message is multipart/alternative. Bodies are sent as UTF-8 in
	// quoted-printable, and invalid UTF-8 in them becomes U+FFFD.
	Text, HTML string

	// Headers are further header fields, such as an event id. Values must
	// be one line.
	//
	// A "Message-ID" header sets the Message-ID, given as id@domain with or
	// without angle brackets. Pass the same one on every retry of an event,
	// so that receivers can recognise the copies of one message. Without
	// it, each call gets a new random Message-ID.
	//
	// A "Reply-To" header takes an address list. The fields that Config and
	// the other Message fields set (From, Sender, To, Cc, Bcc, Subject,
	// Date, MIME-Version, Content-Type, Content-Transfer-Encoding) are
	// rejected.
	Headers map[string]string
}

// envelope is the SMTP envelope of a message.
type envelope struct {
	from       string
	recipients []string

	// needsSMTPUTF8 reports whether an address has non-ASCII characters,
	// which only a server with the SMTPUTF8 extension (RFC 6531) accepts.
	needsSMTPUTF8 bool
}

// reservedHeaders are the header fields that compose sets itself, in
// canonical form.
var reservedHeaders = []string{
	"From", "Sender", "To", "Cc", "Bcc", "Subject", "Date",
	"Mime-Version", "Content-Type", "Content-Transfer-Encoding",
}

// compose builds the message and its envelope. cfg must be valid.
func compose(cfg *Config, msg *Message) (*gomail.Msg, envelope, error) {
	from, err := cfg.sender()
	if err != nil {
		return nil, envelope{}, err
	}
	to, err := parseAddresses("To", msg.To)
	if err != nil {
		return nil, envelope{}, err
	}
	cc, err := parseAddresses("Cc", msg.Cc)
	if err != nil {
		return nil, envelope{}, err
	}
	if len(to)+len(cc) == 0 {
		return nil, envelope{}, errors.New("the message has no recipients: set at least one To or Cc address")
	}

	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(from)
	if len(to) > 0 {
		m.ToMailAddress(to...)
	}
	if len(cc) > 0 {
		m.CcMailAddress(cc...)
	}
	m.Subject(singleLine(strings.ToValidUTF8(msg.Subject, string(utf8.RuneError))))
	m.SetDate()
	if err := setHeaders(m, msg.Headers); err != nil {
		return nil, envelope{}, err
	}
	setBody(m, msg.Text, msg.HTML)

	return m, newEnvelope(from, append(to, cc...)), nil
}

// parseAddresses parses the addresses of header field.
func parseAddresses(field string, values []string) ([]*mail.Address, error) {
	addrs := make([]*mail.Address, 0, len(values))
	for _, value := range values {
		addr, err := mail.ParseAddress(value)
		if err != nil {
			return nil, fmt.Errorf("invalid %s address %q: %w: use an address such as ops@example.com or \"Ops <ops@example.com>\"", field, value, err)
		}
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// newEnvelope returns the envelope from from to recipients, each address
// once, compared without regard to case.
func newEnvelope(from *mail.Address, recipients []*mail.Address) envelope {
	env := envelope{from: from.Address, needsSMTPUTF8: !isASCII(from.Address)}
	seen := make(map[string]bool, len(recipients))
	for _, r := range recipients {
		key := strings.ToLower(r.Address)
		if seen[key] {
			continue
		}
		seen[key] = true
		env.recipients = append(env.recipients, r.Address)
		env.needsSMTPUTF8 = env.needsSMTPUTF8 || !isASCII(r.Address)
	}
	return env
}

// setHeaders checks the extra header fields and sets them on m, in the
// order of their names so that the same fields always make the same
// message.
func setHeaders(m *gomail.Msg, headers map[string]string) error {
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	slices.Sort(names)

	seen := make(map[string]string, len(names))
	for _, name := range names {
		value := headers[name]
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		if err := checkHeader(name, value); err != nil {
			return err
		}
		if earlier, ok := seen[canonical]; ok {
			return fmt.Errorf("header %q is given twice, as %q and %q: keep one of them", canonical, earlier, name)
		}
		seen[canonical] = name

		switch canonical {
		case "Message-Id":
			id, err := parseMessageID(value)
			if err != nil {
				return err
			}
			m.SetMessageIDWithValue(id)
		case "Reply-To":
			addrs, err := mail.ParseAddressList(value)
			if err != nil {
				return fmt.Errorf("invalid Reply-To header %q: %w: use addresses such as ops@example.com, separated by commas", value, err)
			}
			m.ReplyToMailAddress(addrs...)
		default:
			m.SetGenHeader(gomail.Header(name), value)
		}
	}
	return nil
}

// checkHeader checks the name and value of an extra header field.
func checkHeader(name, value string) error {
	if !isFieldName(name) {
		return fmt.Errorf("invalid header name %q: use printable ASCII letters, digits and dashes without a colon, such as X-Event-Id", name)
	}
	canonical := textproto.CanonicalMIMEHeaderKey(name)
	if slices.Contains(reservedHeaders, canonical) {
		return fmt.Errorf("header %q cannot be set in Headers: From comes from the config, To, Cc and Subject from the message fields, and the sender sets the others", name)
	}
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("invalid value of header %q: it contains a line break: make it one line", name)
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("invalid value of header %q: it is not valid UTF-8", name)
	}
	return nil
}

// isFieldName reports whether name is a header field name: printable ASCII
// without a colon (RFC 5322 section 3.6.8).
func isFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 33 || name[i] > 126 || name[i] == ':' {
			return false
		}
	}
	return true
}

// parseMessageID returns the id of a Message-ID value, without the angle
// brackets. It accepts id-left@id-right of printable ASCII, with or without
// the brackets, which is what RFC 5322 section 3.6.4 allows apart from
// quoted and bracketed forms.
func parseMessageID(value string) (string, error) {
	id := strings.TrimSpace(value)
	if strings.HasPrefix(id, "<") && strings.HasSuffix(id, ">") {
		id = id[1 : len(id)-1]
	}
	left, right, found := strings.Cut(id, "@")
	valid := found && left != "" && right != "" && !strings.Contains(right, "@")
	for i := 0; valid && i < len(id); i++ {
		c := id[i]
		valid = c > 32 && c < 127 && !strings.ContainsRune(`<>"()[]\,;:`, rune(c))
	}
	if !valid {
		return "", fmt.Errorf("invalid Message-ID %q: use the form id@domain of printable ASCII, such as <evt_123@webhooks.example.com>", value)
	}
	return id, nil
}

// setBody sets the text and HTML bodies, which are multipart/alternative
// when both are given.
func setBody(m *gomail.Msg, text, html string) {
	text = strings.ToValidUTF8(text, string(utf8.RuneError))
	html = strings.ToValidUTF8(html, string(utf8.RuneError))
	switch {
	case html == "":
		m.SetBodyString(gomail.TypeTextPlain, text)
	case text == "":
		m.SetBodyString(gomail.TypeTextHTML, html)
	default:
		m.SetBodyString(gomail.TypeTextPlain, text)
		m.AddAlternativeString(gomail.TypeTextHTML, html)
	}
}

// singleLine replaces every line break in s with a space.
func singleLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", " ")
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
