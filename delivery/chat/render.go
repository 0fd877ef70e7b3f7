package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Render builds the incoming-webhook request body of format f from text and
// returns it with its Content-Type.
//
// Invalid UTF-8 in text becomes U+FFFD. Mass mentions are neutralised as
// the neutralize functions of mention.go describe. Text longer than
// f.Limit() is cut at a character boundary, never inside a combining
// sequence it can recognise, and ends with "…" within the limit.
//
// Render returns an error for an unknown format and for text that is empty
// or only white space, which the services reject.
func Render(f Format, text string) (body []byte, contentType string, err error) {
	s, ok := specs[f]
	if !ok {
		return nil, "", unknownFormatError(string(f))
	}

	text = strings.ToValidUTF8(text, string(utf8.RuneError))
	if strings.TrimSpace(text) == "" {
		return nil, "", fmt.Errorf("rendering %s notification: the text is empty: set a text template that renders visible text", f)
	}

	text = s.neutralize(text)
	text = truncate(text, s.limit, s.measure)

	body, err = s.encode(text)
	if err != nil {
		return nil, "", fmt.Errorf("rendering %s notification: %w", f, err)
	}
	return body, s.contentType, nil
}

// marshal encodes v as JSON without a trailing newline and without
// escaping <, > and &, which the services read as they are. It writes the
// zero-width spaces that break mentions as \u200b, so that they show in
// logs and golden files. They only occur inside JSON strings, where the
// escape means the same.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return bytes.ReplaceAll(body, []byte(zeroWidthSpace), []byte(`\u200b`)), nil
}

// textMessage is the body of the Slack, Mattermost and Google Chat incoming
// webhooks, which all take the message in a "text" field:
// https://api.slack.com/messaging/webhooks,
// https://developers.mattermost.com/integrate/webhooks/incoming/ and
// https://developers.google.com/workspace/chat/quickstart/webhooks.
type textMessage struct {
	Text string `json:"text"`
}

func encodeText(text string) ([]byte, error) {
	return marshal(textMessage{Text: text})
}

// slackEscaper encodes the three characters that Slack reads as control
// characters, as https://api.slack.com/docs/message-formatting requires.
// Without them no <!channel>, <@user> or <url|link> sequence remains.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func encodeSlack(text string) ([]byte, error) {
	return encodeText(slackEscaper.Replace(text))
}

func measureSlack(text string) int {
	return utf8.RuneCountInString(slackEscaper.Replace(text))
}

// discordMessage is the JSON body of Discord's Execute Webhook:
// https://discord.com/developers/docs/resources/webhook#execute-webhook
type discordMessage struct {
	Content         string                 `json:"content"`
	AllowedMentions discordAllowedMentions `json:"allowed_mentions"`
}

// discordAllowedMentions with an empty Parse list lets no mention in the
// content notify anyone: no @everyone, @here, role or user mention.
type discordAllowedMentions struct {
	Parse []string `json:"parse"`
}

func encodeDiscord(text string) ([]byte, error) {
	return marshal(discordMessage{
		Content:         text,
		AllowedMentions: discordAllowedMentions{Parse: []string{}},
	})
}

// teamsMessage is a message with one Adaptive Card, the body that Teams
// incoming webhooks document at
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
// and that Workflows' "When a Teams webhook request is received" trigger
// accepts in place of the retired Office 365 connectors. Workflows support
// Adaptive Cards only, not the older MessageCard format.
type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string      `json:"$schema"`
	Type    string      `json:"type"`
	Version string      `json:"version"`
	Body    []textBlock `json:"body"`
}

type textBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
	Wrap bool   `json:"wrap"`
}

func encodeTeams(text string) ([]byte, error) {
	return marshal(teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content: adaptiveCard{
				Schema: "http://adaptivecards.io/schemas/adaptive-card.json",
				Type:   "AdaptiveCard",
				// Version 1.2 is the one of the documented example. A
				// TextBlock with wrap needs no later version.
				Version: "1.2",
				Body:    []textBlock{{Type: "TextBlock", Text: text, Wrap: true}},
			},
		}},
	})
}

// bodyLength returns a measure that counts the bytes of the body that
// encode builds.
func bodyLength(encode func(string) ([]byte, error)) func(string) int {
	return func(text string) int {
		body, err := encode(text)
		if err != nil {
			// encoding/json does not fail on structs of strings and
			// bools. Should it, the maximum length makes truncate cut,
			// and Render returns the same error from encode.
			return int(^uint(0) >> 1)
		}
		return len(body)
	}
}

func countRunes(text string) int {
	return utf8.RuneCountInString(text)
}
