package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// prefixedSide is the delivery setup of one layout in TestLayoutsShareServer.
type prefixedSide struct {
	layout    emitter.Layout
	store     *Store
	orders    *receiver
	failing   *receiver
	endpoints []*Endpoint
	eventID   string
}

func newPrefixedSide(t *testing.T, prefix string) *prefixedSide {
	t.Helper()
	layout, err := emitter.NewLayout(prefix)
	if err != nil {
		t.Fatalf("NewLayout(%q): %v", prefix, err)
	}
	side := &prefixedSide{
		layout:  layout,
		orders:  newReceiver(t, nil),
		failing: newReceiver(t, respondWith(http.StatusInternalServerError)),
		eventID: ulid.Make().String(),
	}
	// Both layouts use the same endpoint names, so their consumers have
	// the same names on different streams.
	side.endpoints = []*Endpoint{
		newEndpoint(t, "orders", side.orders.URL, nil),
		newEndpoint(t, "failing", side.failing.URL, nil),
	}
	return side
}

func TestLayoutsShareServer(t *testing.T) {
	js := startServer(t)
	plain := newPrefixedSide(t, "")
	acme := newPrefixedSide(t, "acme")
	sides := []*prefixedSide{plain, acme}
	for _, side := range sides {
		ensureLayout(t, js, side.layout)
		startWorkersIn(t, js, side.layout, Options{}, side.endpoints...)
		store, err := OpenStore(t.Context(), js, side.layout)
		if err != nil {
			t.Fatalf("OpenStore with prefix %q: %v", side.layout.Prefix(), err)
		}
		side.store = store
	}

	for _, side := range sides {
		publishEventIn(t, js, side.layout, side.eventID, "order.created", []byte(`{"prefix":"`+side.layout.Prefix()+`"}`))
	}

	// Each event reaches its own layout's receivers, and the failing
	// endpoint dead-letters it after its two retries.
	for _, side := range sides {
		waitUntil(t, 10*time.Second, func() error {
			if n := len(side.orders.requestsFor(side.eventID)); n != 1 {
				return fmt.Errorf("orders receiver of prefix %q got event %s %d times, want 1", side.layout.Prefix(), side.eventID, n)
			}
			counts, err := side.store.DeadLetterCounts(t.Context())
			if err != nil {
				return err
			}
			if counts["failing"] != 1 {
				return fmt.Errorf("prefix %q has dead letters %v, want 1 for failing", side.layout.Prefix(), counts)
			}
			return nil
		})
	}

	for i, side := range sides {
		other := sides[1-i]
		t.Run(fmt.Sprintf("prefix %q", side.layout.Prefix()), func(t *testing.T) {
			checkLayoutIsolation(t, side, other)
		})
	}
}

// checkLayoutIsolation checks that side holds its own event, attempts and
// dead letter and nothing of other.
func checkLayoutIsolation(t *testing.T, side, other *prefixedSide) {
	for _, rcv := range []*receiver{side.orders, side.failing} {
		if n := len(rcv.requestsFor(other.eventID)); n != 0 {
			t.Errorf("receiver got the other layout's event %s %d times", other.eventID, n)
		}
	}

	ids, _ := listAll(t, side.store, EventQuery{Limit: 100}, side.endpoints)
	if !slices.Equal(ids, []string{side.eventID}) {
		t.Errorf("listed events %v, want only %s", ids, side.eventID)
	}
	found, err := side.store.FindEvent(t.Context(), side.eventID)
	if err != nil {
		t.Fatalf("FindEvent of its own event: %v", err)
	}
	if found.Type != "order.created" {
		t.Errorf("found event type %q, want order.created", found.Type)
	}
	if _, err := side.store.FindEvent(t.Context(), other.eventID); !errors.Is(err, ErrEventNotFound) {
		t.Errorf("FindEvent of the other layout's event = %v, want ErrEventNotFound", err)
	}

	attempts, err := side.store.EventAttempts(t.Context(), side.eventID)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts["orders"]) != 1 || len(attempts["failing"]) != 3 {
		t.Errorf("attempts of its own event: orders %d, failing %d, want 1 and 3", len(attempts["orders"]), len(attempts["failing"]))
	}
	foreign, err := side.store.EventAttempts(t.Context(), other.eventID)
	if err != nil {
		t.Fatal(err)
	}
	if len(foreign) != 0 {
		t.Errorf("attempts of the other layout's event: %v, want none", foreign)
	}

	page, err := side.store.ListDeadLetters(t.Context(), DeadLetterQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].EventID != side.eventID {
		t.Errorf("dead letters %+v, want one of event %s", page.DeadLetters, side.eventID)
	}

	stats, err := side.store.TypeStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if stats["order.created"] == nil || stats["order.created"].Stored != 1 {
		t.Errorf("type stats %+v, want 1 stored order.created", stats["order.created"])
	}
}

func TestLayoutsKeepStateAndConsumersApart(t *testing.T) {
	js := startServer(t)
	plain := newPrefixedSide(t, "")
	acme := newPrefixedSide(t, "acme")
	for _, side := range []*prefixedSide{plain, acme} {
		ensureLayout(t, js, side.layout)
		startWorkersIn(t, js, side.layout, Options{}, side.endpoints...)
		store, err := OpenStore(t.Context(), js, side.layout)
		if err != nil {
			t.Fatal(err)
		}
		side.store = store
	}

	// Pausing failing in one layout leaves the other's failing enabled.
	if _, err := acme.store.Pause(t.Context(), "failing"); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	for _, c := range []struct {
		side *prefixedSide
		want string
	}{{acme, StatePaused}, {plain, StateEnabled}} {
		status, err := c.side.store.Status(t.Context(), "failing", nil)
		if err != nil {
			t.Fatal(err)
		}
		if status.State.State != c.want {
			t.Errorf("state of failing with prefix %q = %q, want %q", c.side.layout.Prefix(), status.State.State, c.want)
		}
	}

	// A test event goes only to its own layout's destination.
	for _, c := range []struct{ side, other *prefixedSide }{{plain, acme}, {acme, plain}} {
		id, err := c.side.store.SendTest(t.Context(), "orders")
		if err != nil {
			t.Fatalf("SendTest: %v", err)
		}
		waitUntil(t, 10*time.Second, func() error {
			if n := len(c.side.orders.requestsFor(id)); n != 1 {
				return fmt.Errorf("test event %s with prefix %q reached its orders receiver %d times, want 1", id, c.side.layout.Prefix(), n)
			}
			return nil
		})
		if n := len(c.other.orders.requestsFor(id)); n != 0 {
			t.Errorf("test event %s with prefix %q reached the other layout's orders receiver %d times", id, c.side.layout.Prefix(), n)
		}
	}

	// Removing the stale consumers of one layout keeps the other's.
	if err := Reconcile(t.Context(), js, plain.layout, plain.endpoints[:1], nil); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if _, err := js.Consumer(t.Context(), plain.layout.EventsStream(), consumerName("failing")); err == nil {
		t.Error("Reconcile kept the unprefixed consumer of failing, which its list leaves out")
	}
	if _, err := js.Consumer(t.Context(), acme.layout.EventsStream(), consumerName("failing")); err != nil {
		t.Errorf("looking up the consumer of failing with prefix acme after the other layout's Reconcile: %v", err)
	}
}

func TestConsumerConfigUsesLayout(t *testing.T) {
	acme, err := emitter.NewLayout("acme")
	if err != nil {
		t.Fatal(err)
	}
	e := newEndpoint(t, "orders", "http://127.0.0.1:9/hooks", func(e *Endpoint) { e.Events = []string{"order.*", "payment.>"} })

	cfg := consumerConfig(acme, e)
	want := []string{"acme.webhooks.events.order.*", "acme.webhooks.events.payment.>", "acme.webhooks.direct.orders.>"}
	if !slices.Equal(cfg.FilterSubjects, want) {
		t.Errorf("filter subjects = %q, want %q", cfg.FilterSubjects, want)
	}
	if cfg.Durable != "dest_orders" {
		t.Errorf("durable name = %q, want dest_orders", cfg.Durable)
	}

	plain := consumerConfig(defaultLayout, e)
	wantPlain := []string{"webhooks.events.order.*", "webhooks.events.payment.>", "webhooks.direct.orders.>"}
	if !slices.Equal(plain.FilterSubjects, wantPlain) {
		t.Errorf("filter subjects without a prefix = %q, want %q", plain.FilterSubjects, wantPlain)
	}
}
