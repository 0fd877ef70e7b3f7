package emitter

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Retention defaults for the streams of the JetStream layout.
const (
	DefaultEventsMaxAge   = 7 * 24 * time.Hour
	DefaultAttemptsMaxAge = 30 * 24 * time.Hour

	// eventsDuplicatesWindow is how long the events stream remembers a
	// Nats-Msg-Id, so a publish retried within it is stored once.
	// nats-server v2.15.3 keeps every id of the window in memory, so the
	// window costs memory in proportion to the event rate. With its
	// 2-minute default, a heap profile of bench/load at about 6 400
	// events/s showed 108 MB of ids. The publisher retries an event whose
	// acknowledgement timed out after ackTimeout (10 s) and at most
	// maxRetryDelay (5 s) of backoff, so 30 s covers the first retry of an
	// uncertain publish. A retry after a longer outage can store an event
	// twice with any window, and receivers deduplicate it by its event id.
	eventsDuplicatesWindow = 30 * time.Second

	// attemptsDuplicatesWindow is the same for the attempts stream. The
	// workers write each attempt record once, without retrying, so the
	// window only has to catch a record that is sent twice in a row.
	attemptsDuplicatesWindow = 5 * time.Second

	// countersSubjects selects every counter subject, such as those of
	// DeliveredCounterPrefix.
	countersSubjects = "webhooks.counters.>"
)

// StreamOptions are the settings of the JetStream layout that come from the
// config.
type StreamOptions struct {
	// EventsMaxAge is how long events are kept in the events stream.
	// Default: DefaultEventsMaxAge.
	EventsMaxAge time.Duration

	// AttemptsMaxAge is how long attempt records are kept in the attempts
	// stream. Default: DefaultAttemptsMaxAge.
	AttemptsMaxAge time.Duration

	// Replicas is the number of copies of each stream; 1 on a single server.
	Replicas int
}

// EnsureStreams creates the streams and the state bucket of the JetStream
// layout, or updates them to match opts. It is idempotent and runs on every
// config load.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, opts StreamOptions) error {
	if opts.EventsMaxAge <= 0 {
		opts.EventsMaxAge = DefaultEventsMaxAge
	}
	if opts.AttemptsMaxAge <= 0 {
		opts.AttemptsMaxAge = DefaultAttemptsMaxAge
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}

	streams := []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "Events observed by the webhooks handler, one message per event",
			Subjects:    []string{EventsSubjectPrefix + ">", DirectSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      opts.EventsMaxAge,
			Duplicates:  min(eventsDuplicatesWindow, opts.EventsMaxAge),
		},
		{
			Name:        AttemptsStream,
			Description: "One record per webhook delivery attempt",
			Subjects:    []string{AttemptsSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      opts.AttemptsMaxAge,
			Duplicates:  min(attemptsDuplicatesWindow, opts.AttemptsMaxAge),
		},
		{
			Name:        DeadStream,
			Description: "Events whose delivery failed after the last retry, kept until replayed or purged",
			Subjects:    []string{DeadSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
		},
		{
			Name:        CountersStream,
			Description: "Running totals, such as successful deliveries per event type",
			Subjects:    []string{countersSubjects},
			Retention:   jetstream.LimitsPolicy,
			// Each message carries the counter's total, so only the
			// last one of a subject is needed.
			MaxMsgsPerSubject: 1,
			AllowMsgCounter:   true,
		},
	}
	for _, cfg := range streams {
		cfg.Storage = jetstream.FileStorage
		cfg.Replicas = opts.Replicas
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("creating or updating stream %s: %w", cfg.Name, err)
		}
	}

	_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "State of each webhook destination: enabled, paused or disabled",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("creating or updating key-value bucket %s: %w", StateBucket, err)
	}
	return nil
}
