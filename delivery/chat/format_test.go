package chat

import (
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	for _, name := range []string{"slack", "discord", "teams", "mattermost", "googlechat", "ntfy"} {
		f, err := ParseFormat(name)
		if err != nil {
			t.Errorf("ParseFormat(%q): %v", name, err)
			continue
		}
		if string(f) != name {
			t.Errorf("ParseFormat(%q) = %q", name, f)
		}
	}
}

func TestParseFormatUnknown(t *testing.T) {
	for _, name := range []string{"", "Slack", "msteams", "google-chat"} {
		_, err := ParseFormat(name)
		if err == nil {
			t.Errorf("ParseFormat(%q) returned no error", name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, `"`+name+`"`) {
			t.Errorf("error %q does not name %q", msg, name)
		}
		for _, f := range Formats() {
			if !strings.Contains(msg, string(f)) {
				t.Errorf("error %q does not list %s", msg, f)
			}
		}
	}
}

func TestFormatLimit(t *testing.T) {
	tests := []struct {
		format Format
		limit  int
		unit   Unit
	}{
		{Slack, 40000, Characters},
		{Discord, 2000, Characters},
		{Teams, 28000, BodyBytes},
		{Mattermost, 16383, Characters},
		{GoogleChat, 32000, BodyBytes},
		{Ntfy, 4096, TextBytes},
		{Format("irc"), 0, ""},
	}
	for _, tt := range tests {
		if got := tt.format.Limit(); got != tt.limit {
			t.Errorf("%s limit = %d, want %d", tt.format, got, tt.limit)
		}
		if got := tt.format.LimitUnit(); got != tt.unit {
			t.Errorf("%s limit unit = %q, want %q", tt.format, got, tt.unit)
		}
	}
}

func TestFormatsReturnsCopy(t *testing.T) {
	list := Formats()
	list[0] = "changed"
	if Formats()[0] != Slack {
		t.Error("changing the returned list changed the formats")
	}
}
