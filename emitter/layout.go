package emitter

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// Names of the JetStream layout without a prefix. A Layout with a prefix
// puts "<PREFIX>_" in front of the stream and bucket names and "<prefix>."
// in front of the subjects. So code that reads or writes the layout takes
// its names from a Layout, not from these constants.
const (
	// EventsStream stores every published event.
	EventsStream = "WEBHOOKS_EVENTS"
	// EventsSubjectPrefix is followed by the event type.
	EventsSubjectPrefix = "webhooks.events."

	// DirectSubjectPrefix is followed by "<destination>.<event type>". The
	// events stream stores these messages too, and only the named
	// destination's consumer receives them: the copies that redeliver and
	// replay make, and test events.
	DirectSubjectPrefix = "webhooks.direct."

	// AttemptsStream stores one record per delivery attempt.
	AttemptsStream = "WEBHOOKS_ATTEMPTS"
	// AttemptsSubjectPrefix is followed by "<destination>.<bucket>", where
	// the bucket comes from the event id (see AttemptBucket).
	AttemptsSubjectPrefix = "webhooks.attempts."

	// DeadStream stores dead letters until they are replayed or purged.
	DeadStream = "WEBHOOKS_DEAD"
	// DeadSubjectPrefix is followed by the destination name.
	DeadSubjectPrefix = "webhooks.dead."

	// CountersStream contains JetStream counters, one subject per counter,
	// each message carrying the running total.
	CountersStream = "WEBHOOKS_COUNTERS"
	// CountersSubjectPrefix is followed by the counter's name.
	CountersSubjectPrefix = "webhooks.counters."
	// DeliveredCounterPrefix is followed by the event type. Its counter
	// is the number of successful deliveries of events of that type.
	DeliveredCounterPrefix = CountersSubjectPrefix + "delivered."

	// StateBucket is the key-value bucket with one key per destination
	// (enabled, paused, disabled) and one "health.<destination>" key with
	// the time of its last success and the start of its current failures.
	StateBucket = "WEBHOOKS_STATE"
)

// Names that the prefix does not change.
const (
	// EventIDHeader carries the original event id on a copy made by
	// redeliver or replay. The copy's Nats-Msg-Id must differ from the
	// event id, because JetStream drops a message whose Nats-Msg-Id it has
	// stored within the duplicates window. Attempt records carry their
	// event's id in it too.
	EventIDHeader = "Webhooks-Event-Id"

	// ConsumerPrefix is followed by the destination name to form the name
	// of that destination's durable pull consumer on the events stream.
	// Each layout has its own events stream, so the consumer names of two
	// layouts do not collide.
	ConsumerPrefix = "dest_"
)

// MaxPrefixLength is the maximum length of a layout prefix.
const MaxPrefixLength = 32

// reservedPrefixToken is the first token of the subjects without a prefix.
// A prefix that starts with it could make subjects that the streams of the
// unprefixed layout also select, such as "webhooks.events.webhooks.events.x".
const reservedPrefixToken = "webhooks"

// Layout contains the names of the streams, the key-value bucket and the
// subjects that the emitter and the delivery workers share. Its zero value
// is the layout without a prefix, whose names are the constants above.
// Layouts with different prefixes have no stream, bucket or subject in
// common, so configs with different prefixes can share one NATS cluster.
// Layout values are comparable with ==.
type Layout struct {
	prefix        string // as configured, such as "acme"
	namePrefix    string // "ACME_" for stream and bucket names, or ""
	subjectPrefix string // "acme." for subjects, or ""
}

// NewLayout returns the layout for prefix, or an error when ValidatePrefix
// rejects it. With prefix "acme" the events stream is ACME_WEBHOOKS_EVENTS
// and events are published on "acme.webhooks.events.<type>". The empty
// prefix returns the zero Layout.
func NewLayout(prefix string) (Layout, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return Layout{}, err
	}
	if prefix == "" {
		return Layout{}, nil
	}
	return Layout{
		prefix:        prefix,
		namePrefix:    strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(prefix)) + "_",
		subjectPrefix: prefix + ".",
	}, nil
}

// ValidatePrefix checks a layout prefix: empty, or dot-separated tokens of
// ASCII letters, digits, '_' and '-', at most MaxPrefixLength characters
// long, whose first token is not "webhooks".
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxPrefixLength {
		return fmt.Errorf("invalid prefix %q: it has %d characters, more than the maximum of %d; use a shorter name such as 'acme'",
			prefix, len(prefix), MaxPrefixLength)
	}
	tokens := strings.Split(prefix, ".")
	for _, token := range tokens {
		if token == "" {
			return fmt.Errorf("invalid prefix %q: empty token between dots; use dot-separated tokens such as 'acme' or 'acme.prod'", prefix)
		}
		for _, c := range token {
			if !isTokenChar(c) {
				return fmt.Errorf("invalid prefix %q: character %q is not allowed; use only A-Z, a-z, 0-9, '_' and '-' between dots", prefix, c)
			}
		}
	}
	if tokens[0] == reservedPrefixToken {
		return fmt.Errorf("invalid prefix %q: it starts with %q, the first token of the unprefixed subjects, so its subjects could overlap with theirs; start it with another token such as 'acme'",
			prefix, reservedPrefixToken)
	}
	return nil
}

// Prefix returns the prefix as configured, empty for the default layout.
func (l Layout) Prefix() string { return l.prefix }

// EventsStream returns the name of the stream that stores the events.
func (l Layout) EventsStream() string { return l.namePrefix + EventsStream }

// AttemptsStream returns the name of the stream of attempt records.
func (l Layout) AttemptsStream() string { return l.namePrefix + AttemptsStream }

// DeadStream returns the name of the stream of dead letters.
func (l Layout) DeadStream() string { return l.namePrefix + DeadStream }

// CountersStream returns the name of the stream of counters.
func (l Layout) CountersStream() string { return l.namePrefix + CountersStream }

// StateBucket returns the name of the key-value bucket of destination
// states and health.
func (l Layout) StateBucket() string { return l.namePrefix + StateBucket }

// EventsSubjectPrefix returns the subject prefix of events, which the
// event type follows.
func (l Layout) EventsSubjectPrefix() string { return l.subjectPrefix + EventsSubjectPrefix }

// DirectSubjectPrefix returns the subject prefix of events for a single
// destination, which "<destination>.<event type>" follows.
func (l Layout) DirectSubjectPrefix() string { return l.subjectPrefix + DirectSubjectPrefix }

// AttemptsSubjectPrefix returns the subject prefix of attempt records,
// which "<destination>.<event id>" follows.
func (l Layout) AttemptsSubjectPrefix() string { return l.subjectPrefix + AttemptsSubjectPrefix }

// DeadSubjectPrefix returns the subject prefix of dead letters, which the
// destination name follows.
func (l Layout) DeadSubjectPrefix() string { return l.subjectPrefix + DeadSubjectPrefix }

// CountersSubjectPrefix returns the subject prefix of counters.
func (l Layout) CountersSubjectPrefix() string { return l.subjectPrefix + CountersSubjectPrefix }

// DeliveredCounterPrefix returns the subject prefix of the delivery
// counters, which the event type follows.
func (l Layout) DeliveredCounterPrefix() string { return l.subjectPrefix + DeliveredCounterPrefix }

// Subject returns the subject that events of eventType are published on.
// eventType may also be a pattern with '*' and '>' tokens.
func (l Layout) Subject(eventType string) string {
	return l.subjectPrefix + EventsSubjectPrefix + eventType
}

// DirectSubject returns the subject on which an event of eventType reaches
// only the destination's consumer.
func (l Layout) DirectSubject(destination, eventType string) string {
	return l.subjectPrefix + DirectSubjectPrefix + destination + "." + eventType
}

// AttemptSubject returns the subject of the attempt records of an event at
// a destination, which may be a '*' wildcard. Other events of the same
// bucket share the subject, so readers select an event's records by their
// EventIDHeader.
func (l Layout) AttemptSubject(destination, eventID string) string {
	return l.subjectPrefix + AttemptsSubjectPrefix + destination + "." + AttemptBucket(eventID)
}

// LegacyAttemptSubject returns the subject that attempt records had before
// they were grouped in buckets: one per destination and event. Readers
// still look there, so records written before the change, or by instances
// not yet upgraded, stay visible.
func (l Layout) LegacyAttemptSubject(destination, eventID string) string {
	return l.subjectPrefix + AttemptsSubjectPrefix + destination + "." + eventID
}

// DestinationAttemptsSubject returns the subject that matches every attempt
// record of a destination.
func (l Layout) DestinationAttemptsSubject(destination string) string {
	return l.subjectPrefix + AttemptsSubjectPrefix + destination + ".*"
}

// attemptBucketLength is the number of leading ULID characters that name an
// attempt bucket. The first ten characters encode the millisecond of the
// event's creation, 3 bits in the first and 5 in each following one, so
// seven characters leave 15 bits: a bucket spans 2^15 ms, about 33 seconds.
const attemptBucketLength = 7

// attemptHashBuckets is the number of buckets of event ids that are not
// ULIDs.
const attemptHashBuckets = 256

// AttemptBucket returns the subject token that groups the attempt records
// of eventID with those of other events created within the same 33
// seconds: the first seven characters of a ULID, or "h" and two hex digits
// of a hash for any other id.
//
// JetStream keeps an index entry in memory for every subject of a stream.
// With nats-server v2.15.3 we measured about 130 bytes per subject, so a
// subject per event would grow the server's memory with every record
// kept. Buckets bound it by the retention time instead: about 80 000 per
// destination in 30 days.
func AttemptBucket(eventID string) string {
	if isULID(eventID) {
		return eventID[:attemptBucketLength]
	}
	hash := fnv.New32a()
	hash.Write([]byte(eventID))
	return fmt.Sprintf("h%02x", hash.Sum32()%attemptHashBuckets)
}

// isULID reports whether id has the form of a ULID: 26 characters of
// Crockford's base32 alphabet in upper case, the first at most '7'.
func isULID(id string) bool {
	if len(id) != 26 || id[0] > '7' {
		return false
	}
	for i := range len(id) {
		if !strings.ContainsRune(crockfordAlphabet, rune(id[i])) {
			return false
		}
	}
	return true
}

// crockfordAlphabet is the alphabet of ULIDs.
const crockfordAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// DeadSubject returns the subject of the dead letters of a destination.
func (l Layout) DeadSubject(destination string) string {
	return l.subjectPrefix + DeadSubjectPrefix + destination
}

// DeliveredCounterSubject returns the subject of the counter of successful
// deliveries of events of eventType.
func (l Layout) DeliveredCounterSubject(eventType string) string {
	return l.subjectPrefix + DeliveredCounterPrefix + eventType
}

// EventType returns the event type of a message on one of the layout's
// event subjects, "<prefix>.webhooks.events.<type>" or
// "<prefix>.webhooks.direct.<destination>.<type>", and "" for any other
// subject.
func (l Layout) EventType(subject string) string {
	if rest, ok := strings.CutPrefix(subject, l.DirectSubjectPrefix()); ok {
		_, eventType, _ := strings.Cut(rest, ".")
		return eventType
	}
	if eventType, ok := strings.CutPrefix(subject, l.EventsSubjectPrefix()); ok {
		return eventType
	}
	return ""
}

// DirectDestination returns the destination of a message on the layout's
// direct subject "<prefix>.webhooks.direct.<destination>.<type>", and false
// for any other subject.
func (l Layout) DirectDestination(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, l.DirectSubjectPrefix())
	if !ok {
		return "", false
	}
	destination, _, _ := strings.Cut(rest, ".")
	return destination, true
}

// subjectRoot returns the start of every subject of the layout.
func (l Layout) subjectRoot() string {
	return l.subjectPrefix + reservedPrefixToken + "."
}
