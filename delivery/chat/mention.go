package chat

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// zeroWidthSpace is inserted into mention syntax to break it. Clients draw
// it with no width, so the text reads as it was written.
const zeroWidthSpace = "\u200b"

// massMentionWords are the words that notify a whole channel after an "@":
// @channel, @here and @all in Mattermost, @everyone and @here in Discord,
// and @channel, @here and @everyone as Slack users type them.
var massMentionWords = []string{"channel", "everyone", "here", "all"}

// neutralizeSlack breaks the @ mass mentions. Slack's own <!channel>,
// <!here> and <!everyone> need nothing here, because encodeSlack escapes
// every < and > as the Slack docs require, and Slack then shows them as
// text.
func neutralizeSlack(text string) string {
	return breakAtMentions(text)
}

// neutralizeDiscord breaks the @ mass mentions so that they read as text.
// encodeDiscord also sets allowed_mentions to parse nothing, which stops
// every mention from notifying, user and role mentions included.
func neutralizeDiscord(text string) string {
	return breakAtMentions(text)
}

// neutralizeTeams breaks the @ mass mentions and every "<at>" tag. A Teams
// card mentions someone only with an <at> tag and a matching mention entity
// under "msteams" (https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format),
// and encodeTeams sends no entities.
func neutralizeTeams(text string) string {
	return breakSequences(breakAtMentions(text), "<at>")
}

// neutralizeMattermost breaks the @ mass mentions and every "<!", so that
// the Slack forms <!channel>, <!here> and <!all>, which Mattermost
// translates into mentions, stay text.
func neutralizeMattermost(text string) string {
	return breakSequences(breakAtMentions(text), "<!")
}

// neutralizeGoogleChat breaks the @ mass mentions and every "<users/all>",
// Google Chat's mention of everyone in a space.
func neutralizeGoogleChat(text string) string {
	return breakSequences(breakAtMentions(text), "<users/all>")
}

// breakAtMentions inserts a zero-width space after the "@" of every mass
// mention word, matched without regard to ASCII case. An "@" after a letter
// or digit, as in an e-mail address, is left alone. So is a word that goes
// on with a letter, a digit, "_", "-", or "." and a letter or digit, as in
// @allison or @here.example.com. Neither mentions a whole channel.
func breakAtMentions(text string) string {
	if !strings.Contains(text, "@") {
		return text
	}

	var b strings.Builder
	b.Grow(len(text) + 8)
	for i := 0; i < len(text); i++ {
		b.WriteByte(text[i])
		if text[i] == '@' && isMassMention(text[:i], text[i+1:]) {
			b.WriteString(zeroWidthSpace)
		}
	}
	return b.String()
}

// isMassMention reports whether the "@" between before and after starts a
// mass mention.
func isMassMention(before, after string) bool {
	if r, _ := utf8.DecodeLastRuneInString(before); r != utf8.RuneError && isLetterOrDigit(r) {
		return false
	}
	for _, word := range massMentionWords {
		if hasPrefixFoldASCII(after, word) && endsWord(after[len(word):]) {
			return true
		}
	}
	return false
}

// endsWord reports whether rest, the text after a mention word, ends that
// word.
func endsWord(rest string) bool {
	r, size := utf8.DecodeRuneInString(rest)
	switch {
	case size == 0:
		return true
	case isLetterOrDigit(r), r == '_', r == '-':
		return false
	case r == '.':
		next, _ := utf8.DecodeRuneInString(rest[size:])
		return !isLetterOrDigit(next)
	default:
		return true
	}
}

func isLetterOrDigit(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// breakSequences inserts a zero-width space after the first byte of every
// occurrence of each sequence, matched without regard to ASCII case. The
// sequences must be ASCII.
func breakSequences(text string, sequences ...string) string {
	var b strings.Builder
	b.Grow(len(text) + 8)
	for i := 0; i < len(text); i++ {
		b.WriteByte(text[i])
		for _, seq := range sequences {
			if hasPrefixFoldASCII(text[i:], seq) {
				b.WriteString(zeroWidthSpace)
				break
			}
		}
	}
	return b.String()
}

// hasPrefixFoldASCII reports whether s starts with the ASCII string prefix,
// ignoring ASCII case. Bytes of multi-byte runes never match, so no Unicode
// case folding can turn another character into an ASCII letter.
func hasPrefixFoldASCII(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerASCII(s[i]) != lowerASCII(prefix[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
