package emitter

// JetStream layout shared by the emitter and the delivery workers. Every
// name and subject that both sides use is defined here and nowhere else.
const (
	// EventsStream stores every published event.
	EventsStream = "WEBHOOKS_EVENTS"
	// EventsSubjectPrefix is followed by the event type.
	EventsSubjectPrefix = "webhooks.events."

	// AttemptsStream stores one record per delivery attempt.
	AttemptsStream = "WEBHOOKS_ATTEMPTS"
	// AttemptsSubjectPrefix is followed by "<destination>.<event id>".
	AttemptsSubjectPrefix = "webhooks.attempts."

	// DeadStream stores dead letters until they are replayed or purged.
	DeadStream = "WEBHOOKS_DEAD"
	// DeadSubjectPrefix is followed by the destination name.
	DeadSubjectPrefix = "webhooks.dead."

	// StateBucket is the key-value bucket with one key per destination
	// (enabled, paused, disabled, failing since).
	StateBucket = "WEBHOOKS_STATE"

	// ConsumerPrefix is followed by the destination name to form the name
	// of that destination's durable pull consumer on EventsStream.
	ConsumerPrefix = "dest_"
)
