package delivery

import (
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-webhooks/caddy-webhooks/delivery/chat"
	"github.com/caddy-webhooks/caddy-webhooks/payload"
	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

// defaultChatText is the text of a chat notification whose destination
// sets none, or whose text renders empty.
const defaultChatText = "Event {webhook.event.type} ({webhook.event.id}) at {webhook.event.timestamp}"

var (
	defaultChatTemplate = mustParse(defaultChatText)
	alertChatTemplate   = mustParse("{webhook.data.text}")
)

func mustParse(text string) *placeholder.Text {
	t, err := placeholder.Parse(text)
	if err != nil {
		panic(err)
	}
	return t
}

// isChatFormat reports whether format is one of the chat services'. It
// runs for every delivery, so it looks the name up without building the
// error that chat.ParseFormat returns for other formats.
func isChatFormat(format string) bool {
	return slices.Contains(chatFormats, chat.Format(format))
}

var chatFormats = chat.Formats()

func chatFormatList() string {
	names := make([]string, 0, len(chat.Formats()))
	for _, f := range chat.Formats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// renderChat renders the destination's text for ev and wraps it in the
// chat service's incoming-webhook body.
func renderChat(e *Endpoint, ev *event) ([]byte, string, error) {
	format, err := chat.ParseFormat(e.Format)
	if err != nil {
		return nil, "", err
	}
	values := payload.StoredResolver(ev.id, ev.payload, placeholder.ResolverFunc(caddy.NewReplacer().Get))

	template := e.text
	if template == nil {
		template = defaultChatTemplate
	}
	// Alerts of the webhooks app carry their own text for people.
	if strings.HasPrefix(ev.eventType, "webhooks.alert.") {
		template = alertChatTemplate
	}
	text := template.Render(values)
	if strings.TrimSpace(text) == "" {
		text = defaultChatTemplate.Render(values)
	}
	return chat.Render(format, text)
}
