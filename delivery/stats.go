package delivery

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// TypeStats contains the counts of the streams for one event type.
type TypeStats struct {
	// Stored counts the events of the type in the events stream. Copies
	// made by redeliver and replay and test events are not counted.
	Stored uint64

	// Delivered counts the successful deliveries of events of the type,
	// one per event and destination, since the store was created. Unlike
	// Stored it does not shrink as events expire. The workers add to it
	// every few seconds (see flushInterval).
	Delivered uint64

	// DeadLetters counts the stored dead letters of events of the type.
	DeadLetters uint64
}

// TypeStats returns the counts per event type, for every type that has
// one.
func (s *Store) TypeStats(ctx context.Context) (map[string]*TypeStats, error) {
	stats := make(map[string]*TypeStats)
	of := func(eventType string) *TypeStats {
		if stats[eventType] == nil {
			stats[eventType] = new(TypeStats)
		}
		return stats[eventType]
	}

	events, err := s.stream(ctx, s.layout.EventsStream())
	if err != nil {
		return nil, err
	}
	stored, err := subjectCounts(ctx, events, s.layout.EventsSubjectPrefix())
	if err != nil {
		return nil, err
	}
	for eventType, n := range stored {
		of(eventType).Stored = n
	}

	counters, err := s.stream(ctx, s.layout.CountersStream())
	if err != nil {
		return nil, err
	}
	counted, err := subjectCounts(ctx, counters, s.layout.DeliveredCounterPrefix())
	if err != nil {
		return nil, err
	}
	for eventType := range counted {
		n, err := readCounter(ctx, counters, s.layout.DeliveredCounterSubject(eventType))
		if err != nil {
			return nil, err
		}
		of(eventType).Delivered = n
	}

	err = s.allDeadLetters(ctx, func(dead StoredDeadLetter) {
		if dead.EventType != "" {
			of(dead.EventType).DeadLetters++
		}
	})
	return stats, err
}

// subjectCounts returns the number of messages per subject under prefix,
// keyed by the rest of the subject.
func subjectCounts(ctx context.Context, stream jetstream.Stream, prefix string) (map[string]uint64, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, fmt.Errorf("counting messages on %s> in stream %s: %w", prefix, stream.CachedInfo().Config.Name, err)
	}
	counts := make(map[string]uint64, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		counts[strings.TrimPrefix(subject, prefix)] = n
	}
	return counts, nil
}

// allDeadLetters calls visit for every stored dead letter.
func (s *Store) allDeadLetters(ctx context.Context, visit func(StoredDeadLetter)) error {
	stream, err := s.stream(ctx, s.layout.DeadStream())
	if err != nil {
		return err
	}
	var decodeErr error
	err = scan{stream: stream}.run(ctx, func(msg jetstream.Msg) bool {
		dead, err := decodeDeadLetter(stream, msg.Data(), sequence(msg))
		if err != nil {
			decodeErr = err
			return false
		}
		visit(dead)
		return true
	})
	if err != nil {
		return err
	}
	return decodeErr
}
