package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/oklog/ulid/v2"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// switchableReceiver fails every request with 500 until ok is set.
func switchableReceiver(t *testing.T) (*receiver, *atomic.Bool) {
	t.Helper()
	ok := new(atomic.Bool)
	rcv := newReceiver(t, func(_ int, _ recordedRequest, w http.ResponseWriter) {
		if ok.Load() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	return rcv, ok
}

func TestReplayDeadLettersOnce(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)
	rcv, ok := switchableReceiver(t)
	startWorkers(t, js, Options{}, newEndpoint(t, "orders", rcv.URL, func(e *Endpoint) {
		e.Retry = []caddy.Duration{ms(50)}
	}))

	// The second payload is valid JSON that encoding/json would rewrite.
	payloads := map[string][]byte{
		ulid.Make().String(): []byte(`{"n":1}`),
		ulid.Make().String(): []byte(`{"html": "<b>&</b>"}`),
	}
	for id, payload := range payloads {
		publishEvent(t, js, id, "order.created", payload)
	}
	waitUntil(t, 10*time.Second, func() error {
		if dead := deadLetters(t, js, "orders"); len(dead) != 2 {
			return fmt.Errorf("got %d dead letters, want 2", len(dead))
		}
		return nil
	})

	ok.Store(true)
	replayed, err := store.ReplayDeadLetters(t.Context(), "orders")
	if err != nil || replayed != 2 {
		t.Fatalf("ReplayDeadLetters = %d, %v; want 2", replayed, err)
	}
	waitUntil(t, 10*time.Second, func() error {
		for id := range payloads {
			if n := len(rcv.requestsFor(id)); n != 3 {
				return fmt.Errorf("event %s received %d times, want 2 failed attempts and 1 replay", id, n)
			}
		}
		return nil
	})
	for id, payload := range payloads {
		requests := rcv.requestsFor(id)
		if last := requests[len(requests)-1]; !bytes.Equal(last.body, payload) {
			t.Errorf("replayed body of %s = %s, want the original %s", id, last.body, payload)
		}
	}
	if dead := deadLetters(t, js, "orders"); len(dead) != 0 {
		t.Errorf("%d dead letters left after the replay, want 0", len(dead))
	}

	again, err := store.ReplayDeadLetters(t.Context(), "orders")
	if err != nil || again != 0 {
		t.Errorf("second ReplayDeadLetters = %d, %v; want 0", again, err)
	}
	time.Sleep(holdPeriod)
	for id := range payloads {
		if n := len(rcv.requestsFor(id)); n != 3 {
			t.Errorf("event %s received %d times after the second replay, want still 3", id, n)
		}
	}
}

func TestReplaySinceResendsLaterEvents(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)
	rcv := newReceiver(t, nil)
	other := newReceiver(t, nil)
	orders := newEndpoint(t, "orders", rcv.URL, nil)
	startWorkers(t, js, Options{}, orders, newEndpoint(t, "other", other.URL, nil))

	before := publishMany(t, js, 3)
	since := time.Now()
	after := publishMany(t, js, 4)
	publishEvent(t, js, ulid.Make().String(), "payment.failed", []byte(`{}`))
	until := time.Now()
	excluded := publishMany(t, js, 1)
	waitDeliveredOnce(t, rcv, append(append(append([]string(nil), before...), after...), excluded...))

	replayed, err := store.ReplaySince(t.Context(), orders, since, until)
	if err != nil || replayed != len(after) {
		t.Fatalf("ReplaySince = %d, %v; want %d", replayed, err, len(after))
	}
	waitUntil(t, 10*time.Second, func() error {
		for _, id := range after {
			if n := len(rcv.requestsFor(id)); n != 2 {
				return fmt.Errorf("event %s received %d times, want twice", id, n)
			}
		}
		return nil
	})
	time.Sleep(holdPeriod)
	for _, id := range append(before, excluded...) {
		if n := len(rcv.requestsFor(id)); n != 1 {
			t.Errorf("event %s outside the range received %d times, want once", id, n)
		}
	}
	if n := len(other.received()); n != len(before)+len(after)+len(excluded) {
		t.Errorf("other destination got %d requests, want each event once", n)
	}
}

func TestRedeliverAndTestEventReachOneDestination(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)
	rcv := newReceiver(t, nil)
	other := newReceiver(t, nil)
	startWorkers(t, js, Options{}, newEndpoint(t, "orders", rcv.URL, nil), newEndpoint(t, "other", other.URL, nil))

	ids := publishMany(t, js, 1)
	waitDeliveredOnce(t, rcv, ids)
	waitDeliveredOnce(t, other, ids)

	ev, err := store.FindEvent(t.Context(), ids[0])
	if err != nil {
		t.Fatalf("FindEvent: %v", err)
	}
	if err := store.Redeliver(t.Context(), ev, []string{"orders"}); err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	testID, err := store.SendTest(t.Context(), "orders")
	if err != nil {
		t.Fatalf("SendTest: %v", err)
	}
	waitUntil(t, 10*time.Second, func() error {
		if n := len(rcv.requestsFor(ids[0])); n != 2 {
			return fmt.Errorf("event received %d times, want twice", n)
		}
		if n := len(rcv.requestsFor(testID)); n != 1 {
			return fmt.Errorf("test event received %d times, want once", n)
		}
		return nil
	})
	requests := rcv.requestsFor(ids[0])
	if !bytes.Equal(requests[1].body, requests[0].body) {
		t.Errorf("redelivered body = %s, want the original %s", requests[1].body, requests[0].body)
	}

	var envelope struct {
		Type string `json:"type"`
		Data struct {
			Destination string `json:"destination"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rcv.requestsFor(testID)[0].body, &envelope); err != nil {
		t.Fatal(err)
	}
	if envelope.Type != TestEventType || envelope.Data.Destination != "orders" {
		t.Errorf("test event = %+v, want type %s for orders", envelope, TestEventType)
	}
	found, err := store.FindEvent(t.Context(), testID)
	if err != nil || found.Type != TestEventType || found.Destination != "orders" {
		t.Errorf("FindEvent(test event) = %+v, %v; want its type and destination", found, err)
	}

	time.Sleep(holdPeriod)
	if n := len(other.received()); n != 1 {
		t.Errorf("other destination got %d requests, want only the original event", n)
	}
	attempts, err := store.EventAttempts(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if n := len(attempts["orders"]); n != 2 {
		t.Errorf("orders has %d attempt records, want 2", n)
	} else if attempts["orders"][1].StreamSequence == attempts["orders"][0].StreamSequence {
		t.Errorf("the copy's attempt has the original's stream sequence %d", attempts["orders"][0].StreamSequence)
	}
	if n := len(attempts["other"]); n != 1 {
		t.Errorf("other has %d attempt records, want 1", n)
	}
}

func TestEncodesUnchanged(t *testing.T) {
	tests := map[string]bool{
		`{"id":42,"name":"x"}`:   true,
		`{"id": 42}`:             false,
		`{"html":"<b>"}`:         false,
		`{"amp":"\u0026"}`:       true,
		`not json`:               false,
		`[1,2,3]`:                true,
		"{\"line\":\"a\u2028\"}": false,
	}
	for payload, want := range tests {
		if got := encodesUnchanged([]byte(payload)); got != want {
			t.Errorf("encodesUnchanged(%s) = %v, want %v", payload, got, want)
		}
	}
}

func TestCopyHasOwnMessageID(t *testing.T) {
	msg := newCopy(defaultLayout, "orders", "01J0000000000000000000000", "order.created", []byte(`{}`), copyMsgID("01J0000000000000000000000"))
	if msg.Subject != defaultLayout.DirectSubject("orders", "order.created") {
		t.Errorf("subject = %s", msg.Subject)
	}
	if id := msg.Header.Get(emitter.EventIDHeader); id != "01J0000000000000000000000" {
		t.Errorf("%s = %q, want the event id", emitter.EventIDHeader, id)
	}
	if msgID := msg.Header.Get("Nats-Msg-Id"); msgID == "01J0000000000000000000000" || msgID == "" {
		t.Errorf("Nats-Msg-Id = %q, want an id of its own", msgID)
	}
}
