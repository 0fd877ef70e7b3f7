package emitter

import (
	"fmt"
	"strings"
	"time"
)

// Event is one observed API call, ready to be published. Payload holds the
// serialized envelope; it is built once and those exact bytes are stored in
// JetStream, signed and sent on every delivery attempt.
type Event struct {
	// ID is unique per observed request and sortable by time (a ULID). It is
	// the Nats-Msg-Id of the published message and the webhook-id sent to
	// receivers.
	ID string

	// Type is the event type, such as "order.created".
	Type string

	// Payload is the JSON envelope.
	Payload []byte

	// Observed is when the handler saw the response; the publish latency
	// metric counts from here.
	Observed time.Time
}

// ValidateEventType checks that an event type is a dot-separated list of
// tokens made of ASCII letters, digits, '_' and '-', because it becomes part
// of a NATS subject.
func ValidateEventType(eventType string) error {
	if eventType == "" {
		return fmt.Errorf("event type is empty: use dot-separated tokens such as 'order.created'")
	}
	for token := range strings.SplitSeq(eventType, ".") {
		if token == "" {
			return fmt.Errorf("invalid event type %q: empty token between dots; use dot-separated tokens such as 'order.created'", eventType)
		}
		for _, c := range token {
			if !isTokenChar(c) {
				return fmt.Errorf("invalid event type %q: character %q is not allowed; use only A-Z, a-z, 0-9, '_' and '-' between dots", eventType, c)
			}
		}
	}
	return nil
}

// ValidateEventPattern checks a subscription pattern: an event type whose
// tokens may also be '*' (exactly one token) or, as the last token, '>'
// (one or more tokens), as in NATS subjects.
func ValidateEventPattern(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("event pattern is empty: use an event type such as 'order.created' or a pattern such as 'order.*'")
	}
	tokens := strings.Split(pattern, ".")
	for i, token := range tokens {
		switch {
		case token == "*":
			continue
		case token == ">":
			if i != len(tokens)-1 {
				return fmt.Errorf("invalid event pattern %q: '>' must be the last token", pattern)
			}
			continue
		case token == "":
			return fmt.Errorf("invalid event pattern %q: empty token between dots", pattern)
		}
		for _, c := range token {
			if !isTokenChar(c) {
				return fmt.Errorf("invalid event pattern %q: character %q is not allowed; use A-Z, a-z, 0-9, '_', '-', or a whole token '*' or '>'", pattern, c)
			}
		}
	}
	return nil
}

func isTokenChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// MatchPattern reports whether eventType is selected by a subscription
// pattern, with NATS subject semantics: '*' matches exactly one token and a
// final '>' matches one or more tokens.
func MatchPattern(pattern, eventType string) bool {
	patternTokens := strings.Split(pattern, ".")
	typeTokens := strings.Split(eventType, ".")
	for i, token := range patternTokens {
		if token == ">" {
			return len(typeTokens) > i
		}
		if i >= len(typeTokens) {
			return false
		}
		if token != "*" && token != typeTokens[i] {
			return false
		}
	}
	return len(typeTokens) == len(patternTokens)
}
