package email

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
)

// composeMessage composes msg with a valid configuration and parses the
// result as a receiver would.
func composeMessage(t *testing.T, msg *Message) (*mail.Message, []byte, envelope) {
	t.Helper()
	cfg := validConfig()
	m, env, err := compose(&cfg, msg)
	if err != nil {
		t.Fatalf("compose: %v", err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatalf("writing the message: %v", err)
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("parsing the message: %v\n%s", err, buf.Bytes())
	}
	return parsed, buf.Bytes(), env
}

func TestComposeRejectsHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"From", map[string]string{"From": "x@example.com"}, `header "From" cannot be set`},
		{"lowercase subject", map[string]string{"subject": "x"}, `header "subject" cannot be set`},
		{"Bcc", map[string]string{"Bcc": "x@example.com"}, `header "Bcc" cannot be set`},
		{"Content-Type", map[string]string{"content-type": "text/html"}, `header "content-type" cannot be set`},
		{"space in name", map[string]string{"X Event": "1"}, `invalid header name "X Event"`},
		{"colon in name", map[string]string{"X:Event": "1"}, `invalid header name "X:Event"`},
		{"empty name", map[string]string{"": "1"}, `invalid header name ""`},
		{"line break in value", map[string]string{"X-Event-Id": "1\r\nBcc: x@example.com"}, `header "X-Event-Id": it contains a line break`},
		{"invalid UTF-8 value", map[string]string{"X-Note": "\xff"}, `header "X-Note": it is not valid UTF-8`},
		{"same field twice", map[string]string{"X-Event-Id": "1", "x-event-id": "2"}, `header "X-Event-Id" is given twice`},
		{"Message-ID without @", map[string]string{"Message-ID": "evt_1"}, `invalid Message-ID "evt_1"`},
		{"Message-ID with two @", map[string]string{"Message-ID": "a@b@c"}, `invalid Message-ID "a@b@c"`},
		{"Message-ID with space", map[string]string{"Message-ID": "<a b@c>"}, `invalid Message-ID "<a b@c>"`},
		{"Message-ID half bracketed", map[string]string{"Message-ID": "<a@c"}, `invalid Message-ID "<a@c"`},
		{"Message-ID non-ASCII", map[string]string{"Message-ID": "ü@example.com"}, `invalid Message-ID`},
		{"Reply-To invalid", map[string]string{"Reply-To": "ops at example"}, `invalid Reply-To header "ops at example"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			msg := &Message{To: []string{"ops@example.com"}, Headers: tt.headers}

			_, _, err := compose(&cfg, msg)

			if err == nil {
				t.Fatalf("compose returned no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestComposeMessageID(t *testing.T) {
	for _, value := range []string{"<evt_1@webhooks.example.com>", "evt_1@webhooks.example.com", " <evt_1@webhooks.example.com> "} {
		parsed, _, _ := composeMessage(t, &Message{
			To:      []string{"ops@example.com"},
			Headers: map[string]string{"message-id": value},
		})
		if got := parsed.Header.Get("Message-Id"); got != "<evt_1@webhooks.example.com>" {
			t.Errorf("Message-ID from %q = %q, want <evt_1@webhooks.example.com>", value, got)
		}
	}
}

func TestComposeRandomMessageIDWithoutHeader(t *testing.T) {
	first, _, _ := composeMessage(t, &Message{To: []string{"ops@example.com"}})
	second, _, _ := composeMessage(t, &Message{To: []string{"ops@example.com"}})

	a, b := first.Header.Get("Message-Id"), second.Header.Get("Message-Id")
	if a == "" || b == "" {
		t.Fatalf("Message-IDs = %q and %q, want both set", a, b)
	}
	if a == b {
		t.Errorf("two messages got the same Message-ID %q", a)
	}
}

func TestComposeSubjectIsOneLine(t *testing.T) {
	parsed, raw, _ := composeMessage(t, &Message{
		To:      []string{"ops@example.com"},
		Subject: "Order 42\r\nBcc: attacker@example.com\nX-Evil: 1",
	})

	if parsed.Header.Get("Bcc") != "" || parsed.Header.Get("X-Evil") != "" {
		t.Errorf("subject injected header fields:\n%s", raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decoding Subject: %v", err)
	}
	if want := "Order 42 Bcc: attacker@example.com X-Evil: 1"; subject != want {
		t.Errorf("Subject = %q, want %q", subject, want)
	}
}

func TestComposeHeaders(t *testing.T) {
	parsed, _, _ := composeMessage(t, &Message{
		To: []string{"ops@example.com"},
		Headers: map[string]string{
			"X-Note":   "Grüße aus Köln",
			"Reply-To": "Support <support@example.com>, billing@example.com",
		},
	})

	raw := parsed.Header.Get("X-Note")
	note, err := new(mime.WordDecoder).DecodeHeader(raw)
	if err != nil {
		t.Fatalf("decoding X-Note %q: %v", raw, err)
	}
	if note != "Grüße aus Köln" || !strings.Contains(raw, "=?") {
		t.Errorf("X-Note = %q (decoded %q), want the RFC 2047 encoding of Grüße aus Köln", raw, note)
	}
	checkAddresses(t, parsed.Header, "Reply-To", []string{"Support <support@example.com>", "billing@example.com"})
}

func TestComposeBodies(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		html     string
		wantType string
		wantBody string
	}{
		{"text only", "Order 42 was created.", "", "text/plain", "Order 42 was created."},
		{"HTML only", "", "<p>Order 42</p>", "text/html", "<p>Order 42</p>"},
		{"neither", "", "", "text/plain", ""},
		{"invalid UTF-8", "total \xff€", "", "text/plain", "total \ufffd€"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parsed, _, _ := composeMessage(t, &Message{To: []string{"ops@example.com"}, Text: tt.text, HTML: tt.html})

			mediaType, params, err := mime.ParseMediaType(parsed.Header.Get("Content-Type"))
			if err != nil {
				t.Fatalf("parsing Content-Type: %v", err)
			}
			if mediaType != tt.wantType || !strings.EqualFold(params["charset"], "utf-8") {
				t.Errorf("Content-Type = %q, want %s in UTF-8", parsed.Header.Get("Content-Type"), tt.wantType)
			}
			if got := parsed.Header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
				t.Errorf("Content-Transfer-Encoding = %q, want quoted-printable", got)
			}
			body, err := io.ReadAll(quotedprintable.NewReader(parsed.Body))
			if err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			if got := strings.TrimRight(string(body), "\r\n"); got != tt.wantBody {
				t.Errorf("body = %q, want %q", got, tt.wantBody)
			}
		})
	}
}

func TestComposeEnvelope(t *testing.T) {
	_, _, env := composeMessage(t, &Message{
		To: []string{"Ops <OPS@example.com>", "zoe@example.com"},
		Cc: []string{"ops@example.com", "Zoe <zoe@example.com>", "sales@example.org"},
	})

	if env.from != "noreply@example.com" {
		t.Errorf("envelope sender = %q, want noreply@example.com", env.from)
	}
	want := []string{"OPS@example.com", "zoe@example.com", "sales@example.org"}
	if !slices.Equal(env.recipients, want) {
		t.Errorf("envelope recipients = %v, want %v, each once", env.recipients, want)
	}
	if env.needsSMTPUTF8 {
		t.Error("ASCII addresses need SMTPUTF8")
	}

	_, _, env = composeMessage(t, &Message{To: []string{"zoë@example.com"}})
	if !env.needsSMTPUTF8 {
		t.Error("a non-ASCII address does not need SMTPUTF8")
	}
}

func TestComposeWithCcOnly(t *testing.T) {
	parsed, _, env := composeMessage(t, &Message{Cc: []string{"ops@example.com"}})

	if parsed.Header.Get("To") != "" {
		t.Errorf("To = %q, want no To header", parsed.Header.Get("To"))
	}
	if !slices.Equal(env.recipients, []string{"ops@example.com"}) {
		t.Errorf("envelope recipients = %v, want [ops@example.com]", env.recipients)
	}
}
