package delivery

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestBreakerStates(t *testing.T) {
	const (
		success = "success"
		failure = "failure"
		probe   = "probe" // the fetch loop requests the pause of a probe
	)
	first, maxPause := breakerFirstPause, breakerMaxPause
	repeat := func(step string, n int) []string {
		steps := make([]string, n)
		for i := range steps {
			steps[i] = step
		}
		return steps
	}
	tests := []struct {
		name      string
		steps     []string
		wantPause time.Duration
	}{
		{"no attempts", nil, 0},
		{"failures below threshold", repeat(failure, breakerThreshold-1), 0},
		{"threshold reached", repeat(failure, breakerThreshold), first},
		{"success resets count", append(append(repeat(failure, breakerThreshold-1), success), failure), 0},
		{"failures after opening without probe", repeat(failure, breakerThreshold+5), first},
		{"failed probe doubles", append(repeat(failure, breakerThreshold), probe, failure), 2 * first},
		{"two failed probes", append(repeat(failure, breakerThreshold), probe, failure, probe, failure), 4 * first},
		{"pause capped", append(repeat(failure, breakerThreshold), repeat2(probe, failure, 20)...), maxPause},
		{"successful probe closes", append(repeat(failure, breakerThreshold), probe, success), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b breaker
			for _, step := range tt.steps {
				switch step {
				case success:
					b.succeeded()
				case failure:
					b.failed()
				case probe:
					_, _ = b.probePause()
				}
			}
			if got, _ := b.probePause(); got != tt.wantPause {
				t.Errorf("pause = %s, want %s", got, tt.wantPause)
			}
			if got, want := b.isOpen(), tt.wantPause > 0; got != want {
				t.Errorf("open = %t, want %t", got, want)
			}
		})
	}
}

// repeat2 returns n copies of the pair a, b.
func repeat2(a, b string, n int) []string {
	steps := make([]string, 0, 2*n)
	for range n {
		steps = append(steps, a, b)
	}
	return steps
}

func TestBreakerReportsTransitions(t *testing.T) {
	var b breaker
	for i := 1; i < breakerThreshold; i++ {
		if b.failed() {
			t.Fatalf("failure %d opened the breaker, want it to open at %d", i, breakerThreshold)
		}
	}
	if !b.failed() {
		t.Errorf("failure %d did not report opening", breakerThreshold)
	}
	if b.failed() {
		t.Error("a failure while open reported opening again")
	}
	if !b.succeeded() {
		t.Error("success while open did not report closing")
	}
	if b.succeeded() {
		t.Error("success while closed reported closing")
	}
}

func TestBreakerThrottlesDeadReceiver(t *testing.T) {
	first, maxPause := breakerFirstPause, breakerMaxPause
	breakerFirstPause, breakerMaxPause = 50*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { breakerFirstPause, breakerMaxPause = first, maxPause })

	var down atomic.Bool
	down.Store(true)
	var watched atomic.Pointer[runner]
	var failedWhileOpen atomic.Int32
	var deliveredMu sync.Mutex
	delivered := make(map[string]bool)
	rcv := newReceiver(t, func(_ int, req recordedRequest, w http.ResponseWriter) {
		if !down.Load() {
			deliveredMu.Lock()
			delivered[req.id()] = true
			deliveredMu.Unlock()
			w.WriteHeader(http.StatusOK)
			return
		}
		if r := watched.Load(); r != nil && r.breaker.isOpen() {
			failedWhileOpen.Add(1)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	retry := make([]caddy.Duration, 20)
	for i := range retry {
		retry[i] = ms(50)
	}
	const concurrency = 8
	e := newEndpoint(t, "dead", rcv.URL, func(e *Endpoint) {
		e.Concurrency = concurrency
		e.Retry = retry
	})
	js := startJetStream(t)
	workers := startWorkers(t, js, Options{}, e)
	watched.Store(workers.runners[0])

	const events = 100
	for i := range events {
		publishEvent(t, js, fmt.Sprintf("evt%03d", i), "order.created", []byte(`{}`))
	}
	waitUntil(t, 10*time.Second, func() error {
		if !workers.runners[0].breaker.isOpen() {
			return fmt.Errorf("breaker still closed after %d requests", len(rcv.received()))
		}
		return nil
	})
	opened, requestsAtOpen := time.Now(), len(rcv.received())
	waitUntil(t, 10*time.Second, func() error {
		if n := failedWhileOpen.Load(); n < 3 {
			return fmt.Errorf("%d failed probes, want 3", n)
		}
		return nil
	})

	// Probes are at least breakerFirstPause apart. The attempts in flight
	// when the breaker opened may reach the receiver after that.
	elapsed := time.Since(opened)
	maxRequests := concurrency + int(elapsed/breakerFirstPause) + 1
	if n := len(rcv.received()) - requestsAtOpen; n > maxRequests {
		t.Errorf("receiver got %d requests in the %s after the breaker opened, want at most %d", n, elapsed, maxRequests)
	}

	down.Store(false)
	waitUntil(t, 20*time.Second, func() error {
		deliveredMu.Lock()
		defer deliveredMu.Unlock()
		if len(delivered) != events {
			return fmt.Errorf("%d of %d events delivered", len(delivered), events)
		}
		return nil
	})
	if workers.runners[0].breaker.isOpen() {
		t.Error("breaker still open after successful deliveries")
	}
	if dead := deadLetters(t, js, "dead"); len(dead) != 0 {
		t.Errorf("got %d dead letters, want none: the breaker must not use up attempts", len(dead))
	}
}

func TestResumeClosesOpenBreaker(t *testing.T) {
	// A probe pause longer than the test, which only a close can end.
	first, maxPause := breakerFirstPause, breakerMaxPause
	breakerFirstPause, breakerMaxPause = time.Hour, time.Hour
	t.Cleanup(func() { breakerFirstPause, breakerMaxPause = first, maxPause })

	var down atomic.Bool
	down.Store(true)
	var deliveredMu sync.Mutex
	delivered := make(map[string]bool)
	rcv := newReceiver(t, func(_ int, req recordedRequest, w http.ResponseWriter) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		deliveredMu.Lock()
		delivered[req.id()] = true
		deliveredMu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	retry := make([]caddy.Duration, 10)
	for i := range retry {
		retry[i] = ms(20)
	}
	e := newEndpoint(t, "flaky", rcv.URL, func(e *Endpoint) {
		e.Concurrency = 4
		e.Retry = retry
	})
	js := startJetStream(t)
	store := openStore(t, js)
	workers := startWorkers(t, js, Options{}, e)

	ids := publishMany(t, js, 10)
	b := &workers.runners[0].breaker
	waitUntil(t, 10*time.Second, func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		// probing is set when the fetch loop starts its probe pause, with
		// no attempt in flight.
		if !b.probing {
			return fmt.Errorf("no probe pause yet after %d requests", len(rcv.received()))
		}
		return nil
	})

	// The operator fixes the receiver, then pauses and resumes the
	// endpoint.
	down.Store(false)
	if _, err := store.Pause(t.Context(), "flaky"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Resume(t.Context(), "flaky"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 15*time.Second, func() error {
		deliveredMu.Lock()
		defer deliveredMu.Unlock()
		for _, id := range ids {
			if !delivered[id] {
				return fmt.Errorf("%d of %d events delivered", len(delivered), len(ids))
			}
		}
		return nil
	})
	if b.isOpen() {
		t.Error("breaker still open after the resume and successful deliveries")
	}
}
