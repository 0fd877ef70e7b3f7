package delivery

import (
	"strings"
	"testing"
)

func TestDisplayURLHidesChatToken(t *testing.T) {
	tests := []struct {
		format, url, want string
	}{
		{"slack", "https://hooks.slack.com/services/T0001/B0002/SECRETTOKEN", "https://hooks.slack.com/…"},
		{"discord", "https://discord.com/api/webhooks/123/SECRETTOKEN?wait=true", "https://discord.com/…"},
		{"ntfy", "https://ntfy.sh/secret-topic", "https://ntfy.sh/…"},
		{"", "https://user:pass@hooks.example.com/orders?token=SECRET", "https://hooks.example.com/orders"},
	}
	for _, tt := range tests {
		e := &Endpoint{Name: "chat", URL: tt.url, Format: tt.format}
		got := e.DisplayURL()
		if got != tt.want {
			t.Errorf("DisplayURL of %s %s = %q, want %q", tt.format, tt.url, got, tt.want)
		}
		if strings.Contains(got, "SECRET") || strings.Contains(got, "secret") {
			t.Errorf("DisplayURL %q shows the token", got)
		}
	}
}

func TestDisplayURLEmail(t *testing.T) {
	e := &Endpoint{Name: "sales", Email: &Email{To: []string{"a@example.com"}, Cc: []string{"b@example.com"}}}
	if got := e.DisplayURL(); got != "mailto:a@example.com,b@example.com" {
		t.Errorf("DisplayURL = %q, want mailto:a@example.com,b@example.com", got)
	}
}
