package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

func openStore(t *testing.T, js jetstream.JetStream) *Store {
	t.Helper()
	store, err := OpenStore(t.Context(), js, defaultLayout)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	return store
}

func stateBucket(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), defaultLayout.StateBucket())
	if err != nil {
		t.Fatalf("opening state bucket: %v", err)
	}
	return kv
}

// waitGate waits until the endpoint's fetch loop follows the stored state.
func waitGate(t *testing.T, w *Workers, name string, open bool) {
	t.Helper()
	waitUntil(t, 5*time.Second, func() error {
		for _, r := range w.runners {
			if r.name == name && r.gate.isOpen() != open {
				return fmt.Errorf("gate of %s open = %v, want %v", name, !open, open)
			}
		}
		return nil
	})
}

// publishMany stores n events of type order.created and returns their ids.
func publishMany(t *testing.T, js jetstream.JetStream, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = ulid.Make().String()
		publishEvent(t, js, ids[i], "order.created", fmt.Appendf(nil, `{"n":%d}`, i))
	}
	return ids
}

// waitDeliveredOnce waits until every id was received, and checks that none
// was received twice.
func waitDeliveredOnce(t *testing.T, rcv *receiver, ids []string) {
	t.Helper()
	waitUntil(t, 15*time.Second, func() error {
		missing := 0
		for _, id := range ids {
			if len(rcv.requestsFor(id)) == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d events not received yet", missing, len(ids))
		}
		return nil
	})
	for _, id := range ids {
		if n := len(rcv.requestsFor(id)); n != 1 {
			t.Errorf("event %s received %d times, want once", id, n)
		}
	}
}

// holdPeriod is how long a test checks that a stopped endpoint receives
// nothing: several pull requests long.
const holdPeriod = 600 * time.Millisecond

func TestPauseHoldsEventsUntilResume(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)
	rcv := newReceiver(t, nil)
	w := startWorkers(t, js, Options{}, newEndpoint(t, "orders", rcv.URL, nil))

	state, err := store.Pause(t.Context(), "orders")
	if err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if state.State != StatePaused || state.Reason != pausedReason || state.Since.IsZero() {
		t.Errorf("state after Pause = %+v, want paused with reason and time", state)
	}
	waitGate(t, w, "orders", false)

	ids := publishMany(t, js, 50)
	waitUntil(t, 5*time.Second, func() error {
		if pending, err := store.Pending(t.Context(), "orders"); err != nil || pending != 50 {
			return fmt.Errorf("pending = %d (%v), want 50", pending, err)
		}
		return nil
	})
	time.Sleep(holdPeriod)
	if n := len(rcv.received()); n != 0 {
		t.Fatalf("receiver got %d requests while paused, want 0", n)
	}

	if again, err := store.Pause(t.Context(), "orders"); err != nil || again.Since != state.Since {
		t.Errorf("second Pause = %+v, %v; want the first pause unchanged", again, err)
	}
	resumed, err := store.Resume(t.Context(), "orders")
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if resumed.State != StateEnabled || resumed.Reason != resumedReason {
		t.Errorf("state after Resume = %+v, want enabled with reason", resumed)
	}
	waitDeliveredOnce(t, rcv, ids)
	waitUntil(t, 5*time.Second, func() error {
		if pending, err := store.Pending(t.Context(), "orders"); err != nil || pending != 0 {
			return fmt.Errorf("pending = %d (%v), want 0", pending, err)
		}
		return nil
	})
}

func TestStateChangesOfDisabledEndpoint(t *testing.T) {
	js := startJetStream(t)
	kv := stateBucket(t, js)
	putState(t, js, "orders", StateDisabled)

	if _, err := Pause(t.Context(), kv, "orders"); !errors.Is(err, ErrEndpointDisabled) {
		t.Errorf("Pause of disabled endpoint = %v, want ErrEndpointDisabled", err)
	}
	if _, err := Resume(t.Context(), kv, "orders"); !errors.Is(err, ErrEndpointDisabled) {
		t.Errorf("Resume of disabled endpoint = %v, want ErrEndpointDisabled", err)
	}
	if state, err := Enable(t.Context(), kv, "orders"); err != nil || state.State != StateEnabled {
		t.Errorf("Enable = %+v, %v; want enabled", state, err)
	}
	if state, err := Resume(t.Context(), kv, "never-paused"); err != nil || state.State != StateEnabled || !state.Since.IsZero() {
		t.Errorf("Resume of an endpoint without state = %+v, %v; want enabled and unchanged", state, err)
	}
}

func TestDisableAfterKeepsEventsUntilEnable(t *testing.T) {
	saved := flushInterval
	flushInterval = 50 * time.Millisecond
	t.Cleanup(func() { flushInterval = saved })

	js := startJetStream(t)
	store := openStore(t, js)
	var failing atomic.Bool
	failing.Store(true)
	rcv := newReceiver(t, func(_ int, _ recordedRequest, w http.ResponseWriter) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	var mu sync.Mutex
	var disabled []string
	hooks := Hooks{Disabled: func(destination, reason string) {
		mu.Lock()
		defer mu.Unlock()
		disabled = append(disabled, destination+": "+reason)
	}}
	e := newEndpoint(t, "flaky", rcv.URL, func(e *Endpoint) {
		e.Retry = []caddy.Duration{ms(100), ms(100), ms(100), ms(100), ms(100), ms(100), ms(100), ms(100)}
		after := ms(300)
		e.DisableAfter = &after
	})
	w := startWorkers(t, js, Options{Hooks: hooks}, e)

	first := publishMany(t, js, 1)
	waitUntil(t, 10*time.Second, func() error {
		state, err := ReadState(t.Context(), store.kv, "flaky")
		if err != nil {
			return err
		}
		if state.State != StateDisabled {
			return fmt.Errorf("state = %+v, want disabled", state)
		}
		return nil
	})
	state, _ := ReadState(t.Context(), store.kv, "flaky")
	if !strings.Contains(state.Reason, "disable_after") || state.Since.IsZero() {
		t.Errorf("state = %+v, want a reason that names disable_after, and a time", state)
	}
	waitGate(t, w, "flaky", false)
	mu.Lock()
	if len(disabled) != 1 || !strings.HasPrefix(disabled[0], "flaky: no successful delivery since") {
		t.Errorf("Disabled hook calls = %q, want one for flaky", disabled)
	}
	mu.Unlock()
	waitUntil(t, 5*time.Second, func() error {
		if status, err := store.Status(t.Context(), "flaky", nil); err != nil || status.FailingSince.IsZero() {
			return fmt.Errorf("failing since = %v (%v), want it stored", status.FailingSince, err)
		}
		return nil
	})

	failing.Store(false)
	later := publishMany(t, js, 50)
	time.Sleep(holdPeriod)
	for _, id := range later {
		if n := len(rcv.requestsFor(id)); n != 0 {
			t.Fatalf("event %s received %d times while disabled, want 0", id, n)
		}
	}

	if _, err := store.Enable(t.Context(), "flaky"); err != nil {
		t.Fatalf("Enable: %v", err)
	}
	waitDeliveredOnce(t, rcv, later)
	waitUntil(t, 10*time.Second, func() error {
		records := attemptRecords(t, js, "flaky", first[0])
		if len(records) == 0 || records[len(records)-1].Outcome != OutcomeSuccess {
			return fmt.Errorf("first event not delivered after enabling: %+v", records)
		}
		return nil
	})
	status, err := store.Status(t.Context(), "flaky", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !status.FailingSince.IsZero() || status.LastSuccess.IsZero() || status.State.State != StateEnabled {
		t.Errorf("status after enable = %+v, want enabled, a last success and no failing since", status)
	}
}

func TestMergeHealth(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(1_800_000_000+s), 0) }
	tests := []struct {
		name    string
		a, b    Health
		restart time.Time
		want    Health
	}{
		{name: "empty", want: Health{}},
		{
			name: "later success ends earlier failures",
			a:    Health{FailingSince: at(10)},
			b:    Health{LastSuccess: at(20)},
			want: Health{LastSuccess: at(20)},
		},
		{
			name: "earliest failure after the success",
			a:    Health{LastSuccess: at(5), FailingSince: at(30)},
			b:    Health{LastSuccess: at(20), FailingSince: at(25)},
			want: Health{LastSuccess: at(20), FailingSince: at(25)},
		},
		{
			name:    "failures before a restart are dropped",
			a:       Health{FailingSince: at(10)},
			b:       Health{FailingSince: at(40)},
			restart: at(30),
			want:    Health{FailingSince: at(40)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mergeHealth(tt.a, tt.b, tt.restart); got != tt.want {
				t.Errorf("mergeHealth = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * 24 * time.Hour:     "5d",
		36 * time.Hour:         "36h0m0s",
		300 * time.Millisecond: "300ms",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
