package emitter

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// EnsureStreams creates the streams and the state bucket of layout, or
// updates them to match opts. It is idempotent and runs on every config
// load. It fails without changing a stream that exists with subjects of
// another layout. Prefixes such as "acme" and "ACME", or "a.b" and "a_b",
// map to the same stream names, and updating such a stream would take its
// subjects away from the config that created it.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, layout Layout, opts StreamOptions) error {
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
			Name:        layout.EventsStream(),
			Description: "Events observed by the webhooks handler, one message per event",
			Subjects:    []string{layout.EventsSubjectPrefix() + ">", layout.DirectSubjectPrefix() + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      opts.EventsMaxAge,
			Duplicates:  min(eventsDuplicatesWindow, opts.EventsMaxAge),
		},
		{
			Name:        layout.AttemptsStream(),
			Description: "One record per webhook delivery attempt",
			Subjects:    []string{layout.AttemptsSubjectPrefix() + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      opts.AttemptsMaxAge,
			Duplicates:  min(attemptsDuplicatesWindow, opts.AttemptsMaxAge),
		},
		{
			Name:        layout.DeadStream(),
			Description: "Events whose delivery failed after the last retry, kept until replayed or purged",
			Subjects:    []string{layout.DeadSubjectPrefix() + ">"},
			Retention:   jetstream.LimitsPolicy,
		},
		{
			Name:        layout.CountersStream(),
			Description: "Running totals, such as successful deliveries per event type",
			Subjects:    []string{layout.CountersSubjectPrefix() + ">"},
			Retention:   jetstream.LimitsPolicy,
			// Each message carries the counter's total, so only the
			// last one of a subject is needed.
			MaxMsgsPerSubject: 1,
			AllowMsgCounter:   true,
		},
	}
	for _, cfg := range streams {
		if err := checkStreamOwner(ctx, js, layout, cfg.Name); err != nil {
			return err
		}
	}
	for _, cfg := range streams {
		cfg.Storage = jetstream.FileStorage
		cfg.Replicas = opts.Replicas
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("creating or updating stream %s: %w", cfg.Name, err)
		}
	}

	_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      layout.StateBucket(),
		Description: "State of each webhook destination: enabled, paused or disabled",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("creating or updating key-value bucket %s: %w", layout.StateBucket(), err)
	}
	return nil
}

// checkStreamOwner returns an error when the stream name exists with a
// subject outside of layout. The state bucket has no subjects of the
// layout to check, but its name collides only when the stream names do,
// so this check covers it too.
func checkStreamOwner(ctx context.Context, js jetstream.JetStream, layout Layout, name string) error {
	stream, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up stream %s: %w", name, err)
	}
	root := layout.subjectRoot()
	for _, subject := range stream.CachedInfo().Config.Subjects {
		if !strings.HasPrefix(subject, root) {
			return fmt.Errorf("stream %s stores subject %q, which is outside of prefix %q (subjects %s>): another prefix that maps to the same stream names created it; choose a prefix that differs in more than case, '.', '-' and '_'",
				name, subject, layout.Prefix(), root)
		}
	}
	return nil
}
