package webhooks

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// newTestApp provisions an app whose embedded server keeps its store in a
// temporary directory.
func newTestApp(t *testing.T) *App {
	t.Helper()
	ctx, err := caddy.ProvisionContext(new(caddy.Config))
	if err != nil {
		t.Fatal(err)
	}
	app := &App{NATS: &emitter.Config{StoreDir: t.TempDir(), QueueSize: 10}}
	if err := app.Provision(ctx); err != nil {
		t.Fatalf("provisioning the app: %v", err)
	}
	if err := app.Validate(); err != nil {
		t.Fatalf("validating the app: %v", err)
	}
	return app
}

func testEvent(i int) *emitter.Event {
	return &emitter.Event{
		ID:       fmt.Sprintf("01TESTEVENT%04d", i),
		Type:     "order.created",
		Payload:  []byte(fmt.Sprintf(`{"n":%d}`, i)),
		Observed: time.Now(),
	}
}

// storedEvents returns how many events the events stream holds.
func storedEvents(t *testing.T, app *App) uint64 {
	t.Helper()
	stream, err := app.broker.JetStream().Stream(context.Background(), emitter.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestAppPublishesEventsEmittedBeforeStart(t *testing.T) {
	app := newTestApp(t)

	// Caddy starts apps in random order, so handlers may emit first.
	for i := range 3 {
		app.Emit(testEvent(i))
	}
	if err := app.Start(); err != nil {
		t.Fatalf("starting the app: %v", err)
	}
	defer app.Stop()
	app.Emit(testEvent(3))

	deadline := time.Now().Add(10 * time.Second)
	for storedEvents(t, app) != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the stream holds %d events, expected 4", storedEvents(t, app))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAppDropsEarlyEventsPastQueueSize(t *testing.T) {
	app := newTestApp(t)
	for i := range 15 {
		app.Emit(testEvent(i))
	}
	if got := len(app.early); got != app.NATS.QueueSize {
		t.Errorf("%d events held before start, expected the queue size %d", got, app.NATS.QueueSize)
	}
}

func TestAppEmitAfterLastStopCountsDrop(t *testing.T) {
	app := newTestApp(t)
	if err := app.Start(); err != nil {
		t.Fatalf("starting the app: %v", err)
	}
	if err := app.Stop(); err != nil {
		t.Fatalf("stopping the app: %v", err)
	}

	// The broker is gone, so the event is dropped and counted.
	dropped := testutil.ToFloat64(eventsDropped.WithLabelValues(emitter.DropClosed))
	app.Emit(testEvent(1))
	if got := testutil.ToFloat64(eventsDropped.WithLabelValues(emitter.DropClosed)); got != dropped+1 {
		t.Errorf("dropped events with reason closed = %v, expected %v", got, dropped+1)
	}
}

func TestAppReloadKeepsBroker(t *testing.T) {
	dir := t.TempDir()
	newApp := func() *App {
		ctx, err := caddy.ProvisionContext(new(caddy.Config))
		if err != nil {
			t.Fatal(err)
		}
		app := &App{NATS: &emitter.Config{StoreDir: dir}}
		if err := app.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return app
	}

	// A reload starts the new app before it stops the old one.
	old := newApp()
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	replacement := newApp()
	if err := replacement.Start(); err != nil {
		t.Fatal(err)
	}
	if old.broker.Conn() != replacement.broker.Conn() {
		t.Error("the new app got its own broker, expected the one the old app uses")
	}
	if err := old.Stop(); err != nil {
		t.Fatal(err)
	}

	// An event from a request that the old config was still serving.
	old.Emit(testEvent(1))
	deadline := time.Now().Add(10 * time.Second)
	for storedEvents(t, replacement) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the event emitted through the stopped app was not published")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := replacement.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestAppValidateRetriesOutlivingRetention(t *testing.T) {
	tests := []struct {
		name          string
		retryAfterMax caddy.Duration
		expect        string
	}{
		// A receiver's Retry-After may stretch the one wait to the default
		// cap of 1h.
		{"default Retry-After cap", 0, "its retries span up to 1h0m0s, but events are kept for 1m0s"},
		// With a low cap, the wait is the 75s delay plus 20% jitter.
		{"low Retry-After cap", caddy.Duration(time.Second), "its retries span up to 1m30s, but events are kept for 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, err := caddy.ProvisionContext(new(caddy.Config))
			if err != nil {
				t.Fatal(err)
			}
			app := &App{
				NATS: &emitter.Config{StoreDir: t.TempDir(), Retention: caddy.Duration(time.Minute)},
				Endpoints: []*delivery.Endpoint{{
					Name:          "orders",
					URL:           "http://127.0.0.1:9/hooks",
					Events:        []string{"order.*"},
					Retry:         []caddy.Duration{caddy.Duration(75 * time.Second)},
					RetryAfterMax: tt.retryAfterMax,
					AllowPrivate:  true, // the receiver address is loopback
				}},
			}
			if err := app.Provision(ctx); err != nil {
				t.Fatal(err)
			}
			err = app.Validate()
			if err == nil {
				t.Fatal("Validate accepted retries that outlive the retention of 1m")
			}
			if !strings.Contains(err.Error(), `endpoint "orders": `+tt.expect) {
				t.Errorf("error = %q, expected it to contain %q", err, tt.expect)
			}
		})
	}
}

func TestAppProvisionNullEndpoint(t *testing.T) {
	ctx, err := caddy.ProvisionContext(new(caddy.Config))
	if err != nil {
		t.Fatal(err)
	}
	app := &App{Endpoints: []*delivery.Endpoint{nil}}
	err = app.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "endpoint 0 is null") {
		t.Errorf("Provision error = %v, expected one that names the null endpoint", err)
	}
}
