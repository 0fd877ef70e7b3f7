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
)

// StreamOptions are the settings of the JetStream layout that come from the
// config.
type StreamOptions struct {
	// EventsMaxAge is how long events are kept in the events stream.
	EventsMaxAge time.Duration

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
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}

	streams := []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "Events observed by the webhooks handler, one message per event",
			Subjects:    []string{EventsSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      opts.EventsMaxAge,
			Duplicates:  min(duplicatesWindow, opts.EventsMaxAge),
		},
		{
			Name:        AttemptsStream,
			Description: "One record per webhook delivery attempt",
			Subjects:    []string{AttemptsSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      DefaultAttemptsMaxAge,
		},
		{
			Name:        DeadStream,
			Description: "Events whose delivery failed after the last retry, kept until replayed or purged",
			Subjects:    []string{DeadSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
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
