package emitter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

func TestPublisherStoresEvents(t *testing.T) {
	recorder := newHookRecorder()
	b := acquire(t, testConfig(t), zap.NewNop(), recorder.hooks())
	ensureStreams(t, b)

	const count = 500
	events := make([]*Event, count)
	for i := range events {
		events[i] = testEvent(fmt.Sprintf("evt-%04d", i))
		if i%2 == 1 {
			events[i].Type = "payment.failed"
		}
		if err := b.Publisher().Enqueue(events[i]); err != nil {
			t.Fatalf("Enqueue(%s): %v", events[i].ID, err)
		}
	}

	waitForMessages(t, b.JetStream(), count)
	stored := storedEvents(t, b.JetStream())
	for _, ev := range events {
		msg, ok := stored[ev.ID]
		if !ok {
			t.Errorf("event %s not stored under its Nats-Msg-Id", ev.ID)
			continue
		}
		if want := "webhooks.events." + ev.Type; msg.Subject != want {
			t.Errorf("event %s subject = %q, want %q", ev.ID, msg.Subject, want)
		}
		if !bytes.Equal(msg.Data, ev.Payload) {
			t.Errorf("event %s payload = %q, want %q", ev.ID, msg.Data, ev.Payload)
		}
	}

	waitFor(t, 5*time.Second, func() error {
		if got := recorder.publishedCount(); got != count {
			return fmt.Errorf("Published hook called %d times, want %d", got, count)
		}
		return nil
	})
	recorder.mu.Lock()
	for id, calls := range recorder.published {
		if calls != 1 {
			t.Errorf("Published hook called %d times for %s, want 1", calls, id)
		}
	}
	for _, latency := range recorder.latencies {
		if latency <= 0 {
			t.Errorf("Published latency = %s, want > 0", latency)
			break
		}
	}
	recorder.mu.Unlock()
	if got := b.Publisher().Pending(); got != 0 {
		t.Errorf("Pending() = %d after every ack, want 0", got)
	}
}

func TestPublisherDuplicateIDStoredOnce(t *testing.T) {
	recorder := newHookRecorder()
	b := acquire(t, testConfig(t), zap.NewNop(), recorder.hooks())
	ensureStreams(t, b)

	first := testEvent("evt-duplicate")
	second := testEvent("evt-duplicate")
	second.Payload = []byte(`{"type":"order.created","data":{"copy":true}}`)
	for _, ev := range []*Event{first, second} {
		if err := b.Publisher().Enqueue(ev); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	// A later event shows when both copies have been handled.
	if err := b.Publisher().Enqueue(testEvent("evt-after")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}

	waitFor(t, 10*time.Second, func() error {
		if pending := b.Publisher().Pending(); pending != 0 {
			return fmt.Errorf("%d events pending", pending)
		}
		return nil
	})
	stored := storedEvents(t, b.JetStream())
	if len(stored) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(stored))
	}
	if got := stored["evt-duplicate"].Data; !bytes.Equal(got, first.Payload) {
		t.Errorf("stored payload = %q, want the first copy %q", got, first.Payload)
	}
	recorder.mu.Lock()
	defer recorder.mu.Unlock()
	if calls := recorder.published["evt-duplicate"]; calls != 1 {
		t.Errorf("Published hook called %d times for the duplicated event, want 1", calls)
	}
}

func TestPublisherQueueFull(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 4
	recorder := newHookRecorder()
	b := acquire(t, cfg, zap.NewNop(), recorder.hooks())

	// No stream exists yet, so every publish fails and is retried. The
	// publisher stops reading the queue while it backs off, so the queue
	// fills up.
	var accepted []string
	var fullErr error
	for i := 0; i < 10_000 && fullErr == nil; i++ {
		ev := testEvent(fmt.Sprintf("evt-%05d", i))
		switch err := b.Publisher().Enqueue(ev); {
		case err == nil:
			accepted = append(accepted, ev.ID)
		case errors.Is(err, ErrQueueFull):
			fullErr = err
			if dropped := recorder.droppedIDs(DropQueueFull); !slices.Equal(dropped, []string{ev.ID}) {
				t.Errorf("Dropped(%q) saw %v, want [%s]", DropQueueFull, dropped, ev.ID)
			}
		default:
			t.Fatalf("Enqueue: %v", err)
		}
	}
	if fullErr == nil {
		t.Fatalf("Enqueue never returned ErrQueueFull with queue_size 4")
	}

	// Once the streams exist, every accepted event is stored.
	ensureStreams(t, b)
	waitForMessages(t, b.JetStream(), uint64(len(accepted)))
	stored := storedEvents(t, b.JetStream())
	for _, id := range accepted {
		if _, ok := stored[id]; !ok {
			t.Errorf("accepted event %s not stored", id)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		if got := recorder.publishedCount(); got != len(accepted) {
			return fmt.Errorf("Published hook called %d times, want %d", got, len(accepted))
		}
		return nil
	})
}

func TestPublisherDropsOversizedPayload(t *testing.T) {
	recorder := newHookRecorder()
	b := acquire(t, testConfig(t), zap.NewNop(), recorder.hooks())
	ensureStreams(t, b)

	oversized := testEvent("evt-oversized")
	oversized.Payload = bytes.Repeat([]byte("x"), int(b.Conn().MaxPayload())+1)
	if err := b.Publisher().Enqueue(oversized); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if err := b.Publisher().Enqueue(testEvent("evt-normal")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}

	waitForMessages(t, b.JetStream(), 1)
	if _, ok := storedEvents(t, b.JetStream())["evt-normal"]; !ok {
		t.Errorf("event after the oversized one not stored")
	}
	waitFor(t, 5*time.Second, func() error {
		if dropped := recorder.droppedIDs(DropPublishFailed); !slices.Equal(dropped, []string{"evt-oversized"}) {
			return fmt.Errorf("Dropped(%q) saw %v, want [evt-oversized]", DropPublishFailed, dropped)
		}
		return nil
	})
}

func TestPublisherDropsWhenStreamRemoved(t *testing.T) {
	recorder := newHookRecorder()
	b := acquire(t, testConfig(t), zap.NewNop(), recorder.hooks())
	ensureStreams(t, b)

	if err := b.Publisher().Enqueue(testEvent("evt-before")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	waitForMessages(t, b.JetStream(), 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.JetStream().DeleteStream(ctx, EventsStream); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	if err := b.Publisher().Enqueue(testEvent("evt-after")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	waitFor(t, 10*time.Second, func() error {
		if dropped := recorder.droppedIDs(DropPublishFailed); !slices.Equal(dropped, []string{"evt-after"}) {
			return fmt.Errorf("Dropped(%q) saw %v, want [evt-after]", DropPublishFailed, dropped)
		}
		return nil
	})
	if got := b.Publisher().Pending(); got != 0 {
		t.Errorf("Pending() = %d after the drop, want 0", got)
	}
}

func TestPublisherRejectsInvalidEvent(t *testing.T) {
	recorder := newHookRecorder()
	b := acquire(t, testConfig(t), zap.NewNop(), recorder.hooks())

	tests := []struct {
		name string
		ev   *Event
	}{
		{name: "nil event", ev: nil},
		{name: "empty id", ev: &Event{Type: "order.created"}},
		{name: "empty type", ev: &Event{ID: "evt-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.Publisher().Enqueue(tt.ev); err == nil {
				t.Errorf("Enqueue accepted an invalid event")
			}
		})
	}
	if got := b.Publisher().Pending(); got != 0 {
		t.Errorf("Pending() = %d, want 0", got)
	}
}

func TestPublisherDrainTimeoutDropsUnpublished(t *testing.T) {
	cfg := testConfig(t)
	cfg.DrainTimeout = caddy.Duration(200 * time.Millisecond)
	logger, logs := observedLogger()
	recorder := newHookRecorder()
	b, err := Acquire(cfg, logger, recorder.hooks())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}

	// Without streams, nothing can be published before the drain timeout.
	const count = 20
	for i := range count {
		if err := b.Publisher().Enqueue(testEvent(fmt.Sprintf("evt-%02d", i))); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	if err := b.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}

	if dropped := recorder.droppedIDs(DropClosed); len(dropped) != count {
		t.Errorf("Dropped(%q) called %d times, want %d", DropClosed, len(dropped), count)
	}
	lost := logs.FilterMessage("events lost: publisher stopped before JetStream acknowledged them").All()
	if len(lost) != 1 {
		t.Fatalf("logged %d 'events lost' lines, want 1", len(lost))
	}
	if got := lost[0].ContextMap()["events"]; got != int64(count) {
		t.Errorf("'events lost' count = %v, want %d", got, count)
	}
	if got := b.Publisher().Pending(); got != 0 {
		t.Errorf("Pending() = %d after the drain timeout, want 0", got)
	}
}

func TestPublisherClosedAfterRelease(t *testing.T) {
	recorder := newHookRecorder()
	b, err := Acquire(testConfig(t), zap.NewNop(), recorder.hooks())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	publisher := b.Publisher()
	if err := b.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}

	if err := publisher.Enqueue(testEvent("evt-late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Release = %v, want ErrClosed", err)
	}
	if dropped := recorder.droppedIDs(DropClosed); !slices.Equal(dropped, []string{"evt-late"}) {
		t.Errorf("Dropped(%q) saw %v, want [evt-late]", DropClosed, dropped)
	}
}

func TestTransientAPIError(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		errorCode uint16
		want      bool
	}{
		{name: "store failed", code: 503, errorCode: 10077, want: true},
		{name: "too many requests", code: 429, errorCode: 10167, want: true},
		{name: "account resources exceeded", code: 400, errorCode: 10002, want: true},
		{name: "message exceeds maximum", code: 400, errorCode: 10054, want: false},
		{name: "sealed stream", code: 400, errorCode: 10109, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := &jetstream.APIError{Code: tt.code, ErrorCode: jetstream.ErrorCode(tt.errorCode)}
			if got := transientAPIError(err); got != tt.want {
				t.Errorf("transientAPIError(%d/%d) = %t, want %t", tt.code, tt.errorCode, got, tt.want)
			}
		})
	}
}

func TestPublisherLogsEveryDropCount(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 1
	logger, logs := observedLogger()
	b := acquire(t, cfg, logger, Hooks{})

	// No stream exists, so the one queued event stays and the rest drop,
	// more than the log rate limit lets through as lines of their own.
	const events = 100
	full := 0
	for i := range events {
		if errors.Is(b.Publisher().Enqueue(testEvent(fmt.Sprintf("evt-%03d", i))), ErrQueueFull) {
			full++
		}
	}

	// Every drop is in the log, as a line of its own or in a count.
	waitFor(t, 5*time.Second, func() error {
		logged := 0
		for _, entry := range logs.All() {
			switch entry.Message {
			case "event dropped":
				logged++
			case "events dropped without a log line of their own":
			default:
				continue
			}
			if skipped, ok := entry.ContextMap()["drops_not_logged"].(int64); ok {
				logged += int(skipped)
			}
		}
		if logged != full {
			return fmt.Errorf("the log accounts for %d drops, expected %d", logged, full)
		}
		return nil
	})

	// With the streams in place the queued event is stored, so the release
	// at cleanup has nothing to wait for.
	ensureStreams(t, b)
}
