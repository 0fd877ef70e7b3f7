package chat

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenText exercises quoting, markup characters, line breaks, non-ASCII
// text and every mention form that Render neutralises.
const goldenText = "Payment failed for order 42 (\"card declined\") & retried.\n" +
	"@channel <!here> <users/all> <at>Ops</at> @everyone, mail ops@here.example\n" +
	"Customer: Zoë Müller 🚀 <https://example.com/orders/42|details>\t\\o/"

// goldenPath returns the golden file of format f: <format>.json, or
// ntfy.txt for ntfy, whose body is plain text.
func goldenPath(f Format) string {
	if f == Ntfy {
		return filepath.Join("testdata", "ntfy.txt")
	}
	return filepath.Join("testdata", string(f)+".json")
}

func TestRenderGolden(t *testing.T) {
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			body, _, err := Render(f, goldenText)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}

			path := goldenPath(f)
			if *update {
				if err := os.WriteFile(path, body, 0o644); err != nil {
					t.Fatalf("writing golden file: %v", err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run go test -update to create it): %v", err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body differs from %s (run go test -update after checking the change)\ngot:  %s\nwant: %s", path, body, want)
			}
		})
	}
}

func TestRenderContentType(t *testing.T) {
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			body, contentType, err := Render(f, "hello")
			if err != nil {
				t.Fatalf("Render: %v", err)
			}

			want := "application/json; charset=utf-8"
			if f == Ntfy {
				want = "text/plain; charset=utf-8"
			}
			if contentType != want {
				t.Errorf("content type = %q, want %q", contentType, want)
			}
			if f != Ntfy && !json.Valid(body) {
				t.Errorf("body is not valid JSON: %s", body)
			}
		})
	}
}

func TestRenderDiscordAllowsNoMentions(t *testing.T) {
	body, _, err := Render(Discord, "<@123> <@&456> @everyone")
	if err != nil {
		t.Fatalf("Render: %v", err)
	}

	var msg struct {
		AllowedMentions *struct {
			Parse *[]string `json:"parse"`
		} `json:"allowed_mentions"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatalf("decoding body %s: %v", body, err)
	}
	if msg.AllowedMentions == nil || msg.AllowedMentions.Parse == nil {
		t.Fatalf("body %s has no allowed_mentions.parse", body)
	}
	if len(*msg.AllowedMentions.Parse) != 0 {
		t.Errorf("allowed_mentions.parse = %v, want []", *msg.AllowedMentions.Parse)
	}
}

func TestRenderTeamsAdaptiveCard(t *testing.T) {
	body, _, err := Render(Teams, "deploy done")
	if err != nil {
		t.Fatalf("Render: %v", err)
	}

	var msg struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			ContentURL  json.RawMessage `json:"contentUrl"`
			Content     struct {
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type string `json:"type"`
					Text string `json:"text"`
					Wrap bool   `json:"wrap"`
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatalf("decoding body %s: %v", body, err)
	}
	if msg.Type != "message" {
		t.Errorf("type = %q, want message", msg.Type)
	}
	if len(msg.Attachments) != 1 {
		t.Fatalf("attachments = %d, want 1", len(msg.Attachments))
	}
	attachment := msg.Attachments[0]
	if attachment.ContentType != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("contentType = %q", attachment.ContentType)
	}
	if string(attachment.ContentURL) != "null" {
		t.Errorf("contentUrl = %s, want null", attachment.ContentURL)
	}
	if attachment.Content.Type != "AdaptiveCard" {
		t.Errorf("content type = %q, want AdaptiveCard", attachment.Content.Type)
	}
	if len(attachment.Content.Body) != 1 {
		t.Fatalf("card body has %d elements, want 1", len(attachment.Content.Body))
	}
	block := attachment.Content.Body[0]
	if block.Type != "TextBlock" || block.Text != "deploy done" || !block.Wrap {
		t.Errorf("card body = %+v, want a wrapping TextBlock with the text", block)
	}
}

func TestRenderInvalidUTF8(t *testing.T) {
	const text = "order \xff\xfe failed \xc3"
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			body, _, err := Render(f, text)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if !utf8.Valid(body) {
				t.Errorf("body is not valid UTF-8: %q", body)
			}
			if f != Ntfy && !json.Valid(body) {
				t.Errorf("body is not valid JSON: %q", body)
			}
			if got := sentText(t, f, body); got != "order \ufffd failed \ufffd" {
				t.Errorf("text = %q, want each invalid sequence as U+FFFD", got)
			}
		})
	}
}

func TestRenderEmptyText(t *testing.T) {
	for _, text := range []string{"", " \n\t "} {
		_, _, err := Render(Slack, text)
		if err == nil {
			t.Errorf("Render(%q) returned no error", text)
			continue
		}
		if !strings.Contains(err.Error(), "empty") {
			t.Errorf("Render(%q) error = %q, want it to say the text is empty", text, err)
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	_, _, err := Render(Format("irc"), "hello")
	if err == nil {
		t.Fatal("Render returned no error")
	}
	if !strings.Contains(err.Error(), `"irc"`) {
		t.Errorf("error %q does not name the format", err)
	}
}

// sentText returns the message text of a rendered body as the service reads
// it, with Slack's escaping still in place.
func sentText(t *testing.T, f Format, body []byte) string {
	t.Helper()
	if f == Ntfy {
		return string(body)
	}

	var msg struct {
		Text        string `json:"text"`
		Content     string `json:"content"`
		Attachments []struct {
			Content struct {
				Body []struct {
					Text string `json:"text"`
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatalf("decoding %s body %s: %v", f, body, err)
	}
	switch f {
	case Discord:
		return msg.Content
	case Teams:
		if len(msg.Attachments) != 1 || len(msg.Attachments[0].Content.Body) != 1 {
			t.Fatalf("teams body %s has no single text block", body)
		}
		return msg.Attachments[0].Content.Body[0].Text
	default:
		return msg.Text
	}
}

// shownText returns the text that the service displays, with Slack's
// entities decoded.
func shownText(t *testing.T, f Format, body []byte) string {
	t.Helper()
	text := sentText(t, f, body)
	if f == Slack {
		text = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
	}
	return text
}
