// Package chat builds the request bodies of chat notifications: the
// incoming-webhook messages of Slack, Discord, Microsoft Teams, Mattermost,
// Google Chat and ntfy, made from text that a template has already rendered.
// Every body has its mass mentions neutralised and fits the size limit that
// the service documents.
package chat

import (
	"fmt"
	"strings"
)

// Format is the chat service whose incoming-webhook body Render builds.
type Format string

// Formats of the supported chat services.
const (
	Slack      Format = "slack"
	Discord    Format = "discord"
	Teams      Format = "teams"
	Mattermost Format = "mattermost"
	GoogleChat Format = "googlechat"
	Ntfy       Format = "ntfy"
)

// Unit is the quantity that the length limit of a format counts.
type Unit string

// Units of the length limits.
const (
	// Characters counts the Unicode code points of the text field as it is
	// sent, after any escaping that the format requires.
	Characters Unit = "characters"

	// TextBytes counts the UTF-8 bytes of the text.
	TextBytes Unit = "text bytes"

	// BodyBytes counts the bytes of the whole request body, JSON syntax
	// included.
	BodyBytes Unit = "body bytes"
)

// formats lists every format in the order that messages name them.
var formats = []Format{Slack, Discord, Teams, Mattermost, GoogleChat, Ntfy}

// Formats returns the supported formats.
func Formats() []Format {
	return append([]Format(nil), formats...)
}

// ParseFormat returns the format named s. Names are lowercase, as in the
// Format constants.
func ParseFormat(s string) (Format, error) {
	f := Format(s)
	if _, ok := specs[f]; ok {
		return f, nil
	}
	return "", unknownFormatError(s)
}

func unknownFormatError(name string) error {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return fmt.Errorf("unknown chat format %q: use one of %s", name, strings.Join(names, ", "))
}

// Limit returns the maximum length that the service documents for a
// message, counted in the unit that LimitUnit returns. Render cuts longer
// text to fit. Limit returns 0 for an unknown format.
func (f Format) Limit() int {
	return specs[f].limit
}

// LimitUnit returns what Limit counts, or "" for an unknown format.
func (f Format) LimitUnit() Unit {
	return specs[f].unit
}

// spec describes how one format renders and measures its text.
type spec struct {
	limit       int
	unit        Unit
	contentType string

	// neutralize breaks the mass mentions of the service in the text.
	neutralize func(text string) string

	// encode builds the request body from the neutralised, cut text.
	encode func(text string) ([]byte, error)

	// measure returns the length of the message made from text, in unit.
	// It grows with every rune added to text, so a binary search can find
	// the longest prefix that fits.
	measure func(text string) int
}

const (
	contentTypeJSON = "application/json; charset=utf-8"
	contentTypeText = "text/plain; charset=utf-8"
)

var specs = map[Format]spec{
	// Slack truncates the text field of a message, incoming webhooks
	// included, after 40,000 characters:
	// https://api.slack.com/changelog/2018-04-truncating-really-long-messages
	// NOTE: Slack does not document whether &amp;, &lt; and &gt; count as
	// one character each or as written. measureSlack counts them as
	// written, which is the longer reading.
	Slack: {
		limit:       40000,
		unit:        Characters,
		contentType: contentTypeJSON,
		neutralize:  neutralizeSlack,
		encode:      encodeSlack,
		measure:     measureSlack,
	},

	// Discord accepts content of up to 2000 characters when executing a
	// webhook: https://discord.com/developers/docs/resources/webhook#execute-webhook
	// NOTE: the page does not say whether a character is a code point or a
	// UTF-16 code unit. The limit counts code points, so text full of emoji
	// outside the Basic Multilingual Plane may still be rejected if Discord
	// counts UTF-16 code units.
	Discord: {
		limit:       2000,
		unit:        Characters,
		contentType: contentTypeJSON,
		neutralize:  neutralizeDiscord,
		encode:      encodeDiscord,
		measure:     countRunes,
	},

	// Microsoft Teams limits the whole message to 28 KB, both for incoming
	// webhooks (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook)
	// and for Workflows posting a message (https://learn.microsoft.com/en-us/connectors/teams/,
	// "about 28 KB"). The limit reads KB as 1,000 bytes, the smaller value.
	Teams: {
		limit:       28000,
		unit:        BodyBytes,
		contentType: contentTypeJSON,
		neutralize:  neutralizeTeams,
		encode:      encodeTeams,
		measure:     bodyLength(encodeTeams),
	},

	// Mattermost posts up to 16383 characters from server v5.0 on, and
	// splits a longer webhook text into several posts:
	// https://developers.mattermost.com/integrate/webhooks/incoming/
	// Cutting keeps one notification in one post.
	Mattermost: {
		limit:       16383,
		unit:        Characters,
		contentType: contentTypeJSON,
		neutralize:  neutralizeMattermost,
		encode:      encodeText,
		measure:     countRunes,
	},

	// Google Chat limits a message, including its contents, to 32,000
	// bytes: https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages/create
	// The limit counts the whole JSON body, which is never shorter than the
	// message it carries.
	GoogleChat: {
		limit:       32000,
		unit:        BodyBytes,
		contentType: contentTypeJSON,
		neutralize:  neutralizeGoogleChat,
		encode:      encodeText,
		measure:     bodyLength(encodeText),
	},

	// ntfy accepts messages of up to 4,096 bytes and turns longer ones into
	// attachments: https://docs.ntfy.sh/publish/#limitations
	// NOTE: that is the default of the server, which a self-hosted ntfy may
	// configure differently.
	Ntfy: {
		limit:       4096,
		unit:        TextBytes,
		contentType: contentTypeText,
		neutralize:  func(text string) string { return text },
		encode:      func(text string) ([]byte, error) { return []byte(text), nil },
		measure:     func(text string) int { return len(text) },
	},
}
