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

	// duplicatesWindow is how long JetStream remembers a Nats-Msg-Id, so a
	// publish retried within it is stored once.
	duplicatesWindow = 2 * time.Minute

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
			Duplicates:  min(duplicatesWindow, opts.EventsMaxAge),
		},
		{
			Name:        AttemptsStream,
			Description: "One record per webhook delivery attempt",
			Subjects:    []string{AttemptsSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      opts.AttemptsMaxAge,
			Duplicates:  min(duplicatesWindow, opts.AttemptsMaxAge),
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
