package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
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
