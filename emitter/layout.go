package emitter

// JetStream layout shared by the emitter and the delivery workers. Every
// name and subject that both sides use is defined here and nowhere else.
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

	// EventIDHeader carries the original event id on a copy made by
	// redeliver or replay. The copy's Nats-Msg-Id must differ from the
	// event id, because JetStream drops a message whose Nats-Msg-Id it has
	// stored within the duplicates window.
	EventIDHeader = "Webhooks-Event-Id"

	// AttemptsStream stores one record per delivery attempt.
	AttemptsStream = "WEBHOOKS_ATTEMPTS"
	// AttemptsSubjectPrefix is followed by "<destination>.<event id>".
	AttemptsSubjectPrefix = "webhooks.attempts."

	// DeadStream stores dead letters until they are replayed or purged.
	DeadStream = "WEBHOOKS_DEAD"
	// DeadSubjectPrefix is followed by the destination name.
	DeadSubjectPrefix = "webhooks.dead."

	// CountersStream contains JetStream counters, one subject per counter,
	// each message carrying the running total.
	CountersStream = "WEBHOOKS_COUNTERS"
	// DeliveredCounterPrefix is followed by the event type. Its counter
	// is the number of successful deliveries of events of that type.
	DeliveredCounterPrefix = "webhooks.counters.delivered."

	// StateBucket is the key-value bucket with one key per destination
	// (enabled, paused, disabled) and one "health.<destination>" key with
	// the time of its last success and the start of its current failures.
	StateBucket = "WEBHOOKS_STATE"

	// ConsumerPrefix is followed by the destination name to form the name
	// of that destination's durable pull consumer on EventsStream.
	ConsumerPrefix = "dest_"
)

// DirectSubject returns the subject on which an event of eventType reaches
// only the destination's consumer.
func DirectSubject(destination, eventType string) string {
	return DirectSubjectPrefix + destination + "." + eventType
}
