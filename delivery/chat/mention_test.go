package chat

import (
	"strings"
	"testing"
)

const zwsp = "\u200b"

// chatFormats are the formats that have mentions, which ntfy does not.
var chatFormats = []Format{Slack, Discord, Teams, Mattermost, GoogleChat}

func TestRenderBreaksAtMentions(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"@channel", "@" + zwsp + "channel"},
		{"@here", "@" + zwsp + "here"},
		{"@everyone", "@" + zwsp + "everyone"},
		{"@all", "@" + zwsp + "all"},
		{"@Channel and @HERE", "@" + zwsp + "Channel and @" + zwsp + "HERE"},
		{"ping (@all)!", "ping (@" + zwsp + "all)!"},
		{"end of sentence @here.", "end of sentence @" + zwsp + "here."},
		{"@everyone\nnext line", "@" + zwsp + "everyone\nnext line"},
		{"double @@here", "double @@" + zwsp + "here"},
		{"@channel's", "@" + zwsp + "channel's"},
	}
	for _, f := range chatFormats {
		for _, tt := range tests {
			t.Run(string(f)+"/"+tt.text, func(t *testing.T) {
				body, _, err := Render(f, tt.text)
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				if got := shownText(t, f, body); got != tt.want {
					t.Errorf("text = %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestRenderKeepsOtherAtSigns(t *testing.T) {
	texts := []string{
		"mail ops@here.example",
		"user@channel",
		"@allison",
		"@here.example.com",
		"@channel_bot",
		"@here-team",
		"@alerts",
	}
	for _, f := range chatFormats {
		for _, text := range texts {
			t.Run(string(f)+"/"+text, func(t *testing.T) {
				body, _, err := Render(f, text)
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				if got := shownText(t, f, body); got != text {
					t.Errorf("text = %q, want it unchanged", got)
				}
			})
		}
	}
}

func TestRenderBreaksServiceMentions(t *testing.T) {
	tests := []struct {
		format Format
		text   string
		want   string // as the service shows it
	}{
		{Mattermost, "<!channel> <!here> <!all>", "<" + zwsp + "!channel> <" + zwsp + "!here> <" + zwsp + "!all>"},
		{Mattermost, "<!CHANNEL>", "<" + zwsp + "!CHANNEL>"},
		{GoogleChat, "Attention <users/all>", "Attention <" + zwsp + "users/all>"},
		{GoogleChat, "<USERS/ALL>", "<" + zwsp + "USERS/ALL>"},
		{GoogleChat, "<users/123456789>", "<users/123456789>"},
		{Teams, "<at>Ops</at> <AT>Bob</AT>", "<" + zwsp + "at>Ops</at> <" + zwsp + "AT>Bob</AT>"},
		{Slack, "<!channel> <!here> <!everyone> <@U024BE7LH>", "<!channel> <!here> <!everyone> <@U024BE7LH>"},
		{Ntfy, "@channel <!here> <users/all> <at>x</at>", "@channel <!here> <users/all> <at>x</at>"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format)+"/"+tt.text, func(t *testing.T) {
			body, _, err := Render(tt.format, tt.text)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got := shownText(t, tt.format, body); got != tt.want {
				t.Errorf("text = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderSlackEscapesControlSequences(t *testing.T) {
	body, _, err := Render(Slack, "<!channel> <!here> <!everyone> <@U024BE7LH> <https://x.example|x> & more")
	if err != nil {
		t.Fatalf("Render: %v", err)
	}

	sent := sentText(t, Slack, body)
	want := "&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; &lt;@U024BE7LH&gt; &lt;https://x.example|x&gt; &amp; more"
	if sent != want {
		t.Errorf("sent text = %q, want %q", sent, want)
	}
	if strings.ContainsAny(sent, "<>") {
		t.Errorf("sent text %q still contains < or >", sent)
	}
}
