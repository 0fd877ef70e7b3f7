package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// requireConsumers fails the test unless each named consumer on the events
// stream exists exactly when its value in want is true.
func requireConsumers(t *testing.T, js jetstream.JetStream, want map[string]bool) {
	t.Helper()
	for name, exists := range want {
		_, err := consumerInfo(t, js, name)
		switch {
		case exists && err != nil:
			t.Errorf("consumer %s: %v, want it to exist", name, err)
		case !exists && err == nil:
			t.Errorf("consumer %s exists, want it deleted", name)
		case !exists && !errors.Is(err, jetstream.ErrConsumerNotFound):
			t.Errorf("consumer %s: %v, want not found", name, err)
		}
	}
}

func filterSubjects(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	info, err := consumerInfo(t, js, name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(info.Config.FilterSubjects, " ")
}

func TestRejectedReloadRestoresConsumers(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	running := []*Endpoint{
		newEndpoint(t, "kept", rcv.URL, nil),
		newEndpoint(t, "only_running", rcv.URL, nil),
	}
	startWorkers(t, js, Options{RemoveStale: true}, running...)

	// Caddy starts the new config before the reload is certain to succeed,
	// so this Start must leave the running config's consumers in place.
	changedKept := newEndpoint(t, "kept", rcv.URL, func(e *Endpoint) { e.Events = []string{"payment.*"} })
	rejected := startWorkers(t, js, Options{}, changedKept, newEndpoint(t, "only_rejected", rcv.URL, nil))
	requireConsumers(t, js, map[string]bool{"dest_kept": true, "dest_only_running": true, "dest_only_rejected": true})

	// Another app failed to start, so Caddy stops the new config and the
	// running one stays in charge.
	rejected.Drain()
	if err := Reconcile(t.Context(), js, defaultLayout, running, zap.NewNop()); err != nil {
		t.Fatalf("Reconcile() = %v", err)
	}
	requireConsumers(t, js, map[string]bool{"dest_kept": true, "dest_only_running": true, "dest_only_rejected": false})
	if got := filterSubjects(t, js, "dest_kept"); got != "webhooks.events.order.* webhooks.direct.kept.>" {
		t.Errorf("dest_kept filter subjects = %s, want the running config's webhooks.events.order.*", got)
	}

	publishEvent(t, js, "evt-after", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.requestsFor("evt-after")); n != 2 {
			return fmt.Errorf("event delivered %d times, want once to kept and once to only_running", n)
		}
		return nil
	})
}

func TestCommittedReloadRemovesConsumers(t *testing.T) {
	js := startJetStream(t)
	failing := newReceiver(t, respondWith(http.StatusInternalServerError))
	fine := newReceiver(t, nil)
	waitingRetry := func(e *Endpoint) { e.Retry = []caddy.Duration{caddy.Duration(time.Hour)} }
	old := startWorkers(t, js, Options{RemoveStale: true},
		newEndpoint(t, "kept", fine.URL, nil),
		newEndpoint(t, "backlog", failing.URL, waitingRetry),
		newEndpoint(t, "idle", fine.URL, func(e *Endpoint) { e.Events = []string{"payment.*"} }),
	)

	// Two events wait for their retry at "backlog" when it is removed.
	publishEvent(t, js, "evt1", "order.created", []byte(`{}`))
	publishEvent(t, js, "evt2", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		if n := len(failing.received()); n != 2 {
			return fmt.Errorf("failing receiver got %d requests, want 2", n)
		}
		return nil
	})

	next := []*Endpoint{newEndpoint(t, "kept", fine.URL, nil)}
	startWorkers(t, js, Options{}, next...)
	requireConsumers(t, js, map[string]bool{"dest_kept": true, "dest_backlog": true, "dest_idle": true})

	// The reload succeeded: the old config stops while the new one runs.
	old.Drain()
	core, logs := observer.New(zapcore.InfoLevel)
	if err := Reconcile(t.Context(), js, defaultLayout, next, zap.New(core)); err != nil {
		t.Fatalf("Reconcile() = %v", err)
	}
	requireConsumers(t, js, map[string]bool{"dest_kept": true, "dest_backlog": false, "dest_idle": false})

	deleted := logs.FilterMessageSnippet("deleted consumer of removed endpoint").AllUntimed()
	if len(deleted) != 2 {
		t.Fatalf("got %d log lines about deleted consumers, want 2: %v", len(deleted), deleted)
	}
	byDestination := make(map[string]observer.LoggedEntry)
	for _, entry := range deleted {
		byDestination[entry.ContextMap()["destination"].(string)] = entry
	}
	backlog := byDestination["backlog"]
	if backlog.Level != zapcore.WarnLevel {
		t.Errorf("deleting backlog logged at %s, want warn", backlog.Level)
	}
	if got := backlog.ContextMap()["undelivered_events"]; got != uint64(2) {
		t.Errorf("deleting backlog logged undelivered_events = %v, want 2", got)
	}
	idle := byDestination["idle"]
	if idle.Level != zapcore.InfoLevel {
		t.Errorf("deleting idle logged at %s, want info", idle.Level)
	}
	if _, ok := idle.ContextMap()["undelivered_events"]; ok {
		t.Errorf("deleting idle logged undelivered_events, want none for an empty consumer")
	}
}

func TestReconcileRejectsUnprovisionedEndpoint(t *testing.T) {
	js := startJetStream(t)
	err := Reconcile(t.Context(), js, defaultLayout, []*Endpoint{validEndpoint()}, nil)
	if err == nil || !strings.Contains(err.Error(), "call Provision before starting delivery") {
		t.Errorf("Reconcile() = %v, want an error about provisioning", err)
	}
}

func TestEventAfterReloadUsesNewConfig(t *testing.T) {
	js := startJetStream(t)
	oldReceiver := newReceiver(t, nil)
	newReceiverAfterReload := newReceiver(t, nil)

	old := startWorkers(t, js, Options{RemoveStale: true}, newEndpoint(t, "moved", oldReceiver.URL, nil))
	startWorkers(t, js, Options{}, newEndpoint(t, "moved", newReceiverAfterReload.URL, nil))

	// The reload succeeded. The old runner's pull request is still open for
	// up to a second, and JetStream may hand it the next event.
	old.Drain()
	for i := range 5 {
		publishEvent(t, js, fmt.Sprintf("evt-%d", i), "order.created", []byte(`{}`))
	}
	waitUntil(t, 5*time.Second, func() error {
		if n := len(newReceiverAfterReload.received()); n != 5 {
			return fmt.Errorf("the new URL got %d events, want 5", n)
		}
		return nil
	})
	if n := len(oldReceiver.received()); n != 0 {
		t.Errorf("the old URL got %d events after the reload, want none", n)
	}
}

// stallingStream is a stream whose first consumer lookups get no response
// until their context ends, as on a cluster that has not elected a leader
// yet.
type stallingStream struct {
	jetstream.Stream
	stalls atomic.Int32
}

func (s *stallingStream) Consumer(ctx context.Context, name string) (jetstream.Consumer, error) {
	if s.stalls.Add(-1) >= 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Stream.Consumer(ctx, name)
}

func TestConsumerCreationRetriesStalledRequest(t *testing.T) {
	js := startJetStream(t)
	events, err := js.Stream(t.Context(), defaultLayout.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	stream := &stallingStream{Stream: events}
	stream.stalls.Store(1)
	endpoint := newEndpoint(t, "orders", "http://127.0.0.1:1/hooks", nil)

	core, logs := observer.New(zapcore.WarnLevel)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cons, err := ensureConsumerRetrying(ctx, stream, defaultLayout, endpoint, zap.New(core))
	if err != nil {
		t.Fatalf("ensureConsumerRetrying: %v", err)
	}
	if name := cons.CachedInfo().Name; name != consumerName("orders") {
		t.Errorf("consumer name = %q, want %q", name, consumerName("orders"))
	}
	if n := logs.FilterMessageSnippet("retrying until the config load times out").Len(); n != 1 {
		t.Errorf("logged %d retry warnings, want 1", n)
	}

	// Once the start timeout ends, the last error is returned.
	stream.stalls.Store(1000)
	short, cancelShort := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancelShort()
	if _, err := ensureConsumerRetrying(short, stream, defaultLayout, endpoint, zap.New(core)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ensureConsumerRetrying after the timeout: %v, want a deadline error", err)
	}
}

func TestRetryableJetStreamError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"attempt timed out", fmt.Errorf("looking up consumer: %w", context.DeadlineExceeded), true},
		{"no responders", nats.ErrNoResponders, true},
		{"request timed out", nats.ErrTimeout, true},
		{"temporarily unavailable", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"consumer offline", &jetstream.APIError{Code: 500, ErrorCode: 10119, Description: "consumer is offline"}, true},
		{"insufficient resources", &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}, false},
		{"invalid config", &jetstream.APIError{Code: 400, ErrorCode: 10084, Description: "consumer name in subject does not match durable name in request"}, false},
		{"push consumer", errors.New("consumer dest_orders on stream WEBHOOKS_EVENTS is a push consumer"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryableJetStreamError(tt.err); got != tt.want {
				t.Errorf("retryableJetStreamError(%v) = %t, want %t", tt.err, got, tt.want)
			}
		})
	}
}
