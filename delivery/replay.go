package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// TestEventType is the type of the events that SendTest sends.
const TestEventType = "webhooks.test"

// maxCopiesInFlight bounds the copies that a replay publishes before it
// waits for their acknowledgements.
const maxCopiesInFlight = 256

// newCopy returns a copy of an event for one destination, with the same
// payload and event id, on the destination's direct subject of layout. The
// copy has its own message id, so JetStream does not drop it as a
// duplicate of the event.
func newCopy(layout emitter.Layout, destination, eventID, eventType string, payload []byte, msgID string) *nats.Msg {
	msg := nats.NewMsg(layout.DirectSubject(destination, eventType))
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	msg.Header.Set(emitter.EventIDHeader, eventID)
	msg.Data = payload
	return msg
}

// copyMsgID returns a new message id for a copy of an event.
func copyMsgID(eventID string) string {
	return "copy." + eventID + "." + ulid.Make().String()
}

// Redeliver sends the event once more to each of the destinations, each
// getting its own copy with the full retry schedule. The copies keep the
// event id, which receivers see as webhook-id, and the payload.
func (s *Store) Redeliver(ctx context.Context, ev *StoredEvent, destinations []string) error {
	for _, destination := range destinations {
		msg := newCopy(s.layout, destination, ev.ID, ev.Type, ev.Payload, copyMsgID(ev.ID))
		if _, err := s.js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("publishing a copy of event %s for destination %q: %w", ev.ID, destination, err)
		}
	}
	return nil
}

// ReplayDeadLetters sends every event that was dead-lettered at the
// destination once more, and deletes each dead letter once its copy is
// stored. It returns the number of events sent. A copy that fails again is
// dead-lettered anew.
//
// The copy's message id is derived from the dead letter, so a replay that
// is repeated within JetStream's duplicates window, after it stored a copy
// but failed to delete its dead letter, stores no second copy.
func (s *Store) ReplayDeadLetters(ctx context.Context, destination string) (int, error) {
	stream, err := s.stream(ctx, s.layout.DeadStream())
	if err != nil {
		return 0, err
	}
	replayed := 0
	err = s.deadLettersOf(ctx, destination, func(dead StoredDeadLetter) (bool, error) {
		msgID := fmt.Sprintf("dead.%s.%d", destination, dead.Sequence)
		msg := newCopy(s.layout, destination, dead.EventID, dead.EventType, dead.PayloadBytes(), msgID)
		if _, err := s.js.PublishMsg(ctx, msg); err != nil {
			return false, fmt.Errorf("publishing a copy of dead-lettered event %s for destination %q: %w", dead.EventID, destination, err)
		}
		if err := deleteMsg(ctx, stream, dead.Sequence); err != nil {
			return false, fmt.Errorf("deleting the dead letter of event %s after replaying it: %w", dead.EventID, err)
		}
		replayed++
		return true, nil
	})
	return replayed, err
}

// ReplaySince sends once more, to e alone, every event of a type that e
// receives which was stored at or after since and, if until is set, before
// until. Events stored after the call began are left out, because e
// receives them anyway. It returns the number of events sent.
func (s *Store) ReplaySince(ctx context.Context, e *Endpoint, since, until time.Time) (int, error) {
	stream, err := s.stream(ctx, s.layout.EventsStream())
	if err != nil {
		return 0, err
	}
	end := stream.CachedInfo().State.LastSeq + 1
	if !until.IsZero() {
		if end, err = firstSeqAtOrAfter(ctx, stream, until, end); err != nil {
			return 0, err
		}
	}

	batch := &copyBatch{js: s.js}
	var batchErr error
	err = scan{stream: stream, subjects: eventSubjects(s.layout, e), startTime: since, endSeq: end}.run(ctx, func(msg jetstream.Msg) bool {
		id := eventID(msg.Headers())
		copied := newCopy(s.layout, e.Name, id, s.layout.EventType(msg.Subject()), msg.Data(), copyMsgID(id))
		batchErr = batch.publish(ctx, copied)
		return batchErr == nil
	})
	if waitErr := batch.wait(ctx); batchErr == nil {
		batchErr = waitErr
	}
	if err == nil {
		err = batchErr
	}
	return batch.stored, err
}

// copyBatch publishes copies asynchronously, with at most
// maxCopiesInFlight waiting for their acknowledgement.
type copyBatch struct {
	js      jetstream.JetStream
	pending []jetstream.PubAckFuture
	stored  int
}

func (b *copyBatch) publish(ctx context.Context, msg *nats.Msg) error {
	if len(b.pending) >= maxCopiesInFlight {
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
	future, err := b.js.PublishMsgAsync(msg)
	if err != nil {
		return fmt.Errorf("publishing a copy of event %s: %w", msg.Header.Get(emitter.EventIDHeader), err)
	}
	b.pending = append(b.pending, future)
	return nil
}

// wait waits for the acknowledgement of every pending copy and counts those
// stored.
func (b *copyBatch) wait(ctx context.Context) error {
	var errs []error
	for _, future := range b.pending {
		select {
		case <-future.Ok():
			b.stored++
		case err := <-future.Err():
			errs = append(errs, fmt.Errorf("publishing a copy of event %s: %w", future.Msg().Header.Get(emitter.EventIDHeader), err))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.pending = b.pending[:0]
	return errors.Join(errs...)
}

// testPayload is the envelope of a test event, shaped like the default
// envelope of the webhooks handler.
type testPayload struct {
	Type      string   `json:"type"`
	Timestamp string   `json:"timestamp"`
	Data      testData `json:"data"`
}

type testData struct {
	Destination string `json:"destination"`
	Message     string `json:"message"`
}

// SendTest stores a test event of type TestEventType that only the
// destination receives, and returns its id.
func (s *Store) SendTest(ctx context.Context, destination string) (string, error) {
	id := ulid.Make()
	payload, err := json.Marshal(testPayload{
		Type:      TestEventType,
		Timestamp: formatTime(ulid.Time(id.Time())),
		Data: testData{
			Destination: destination,
			Message:     "Test event sent through the Caddy admin API",
		},
	})
	if err != nil {
		return "", fmt.Errorf("encoding test event: %w", err)
	}
	msg := nats.NewMsg(s.layout.DirectSubject(destination, TestEventType))
	msg.Header.Set(jetstream.MsgIDHeader, id.String())
	msg.Data = payload
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return "", fmt.Errorf("publishing test event for destination %q: %w", destination, err)
	}
	return id.String(), nil
}
