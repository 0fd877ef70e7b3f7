package emitter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// testConfig returns a provisioned config on a fresh store directory.
func testConfig(t testing.TB) *Config {
	t.Helper()
	cfg := &Config{
		StoreDir:     t.TempDir(),
		StartTimeout: caddy.Duration(20 * time.Second),
		DrainTimeout: caddy.Duration(10 * time.Second),
	}
	if err := cfg.Provision(); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return cfg
}

// observedLogger returns a logger that records Debug and above.
func observedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// hookRecorder counts the calls of Hooks per event ID.
type hookRecorder struct {
	mu        sync.Mutex
	published map[string]int
	latencies []time.Duration
	dropped   map[string][]string // reason → event IDs
}

func newHookRecorder() *hookRecorder {
	return &hookRecorder{published: map[string]int{}, dropped: map[string][]string{}}
}

func (r *hookRecorder) hooks() Hooks {
	return Hooks{
		Published: func(ev *Event, latency time.Duration) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.published[ev.ID]++
			r.latencies = append(r.latencies, latency)
		},
		Dropped: func(ev *Event, reason string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.dropped[reason] = append(r.dropped[reason], ev.ID)
		},
	}
}

func (r *hookRecorder) publishedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for _, n := range r.published {
		total += n
	}
	return total
}

func (r *hookRecorder) droppedIDs(reason string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dropped[reason]...)
}

// acquire acquires a broker and releases it at the end of the test unless
// the test released it already.
func acquire(t testing.TB, cfg *Config, logger *zap.Logger, hooks Hooks) *Broker {
	t.Helper()
	b, err := Acquire(cfg, logger, hooks)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	t.Cleanup(func() {
		if b.refs.Load() > 0 {
			_ = b.Release()
		}
	})
	return b
}

func ensureStreams(t testing.TB, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, b.JetStream(), b.Layout(), StreamOptions{}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
}

func testEvent(id string) *Event {
	return &Event{
		ID:       id,
		Type:     "order.created",
		Payload:  fmt.Appendf(nil, `{"type":"order.created","data":{"id":%q}}`, id),
		Observed: time.Now(),
	}
}

// waitFor polls check until it returns nil or the timeout expires.
func waitFor(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamMessages returns the number of messages in the events stream.
func streamMessages(js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return 0, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

func waitForMessages(t *testing.T, js jetstream.JetStream, want uint64) {
	t.Helper()
	waitFor(t, 20*time.Second, func() error {
		got, err := streamMessages(js)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("stream holds %d messages, want %d", got, want)
		}
		return nil
	})
}

// storedEvents reads every message of the events stream, keyed by
// Nats-Msg-Id.
func storedEvents(t *testing.T, js jetstream.JetStream) map[string]*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatalf("looking up stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("reading stream info: %v", err)
	}
	messages := map[string]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("reading message %d: %v", seq, err)
		}
		id := msg.Header.Get(jetstream.MsgIDHeader)
		if _, seen := messages[id]; seen {
			t.Errorf("event %q stored more than once", id)
		}
		messages[id] = msg
	}
	return messages
}
