package delivery

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestDeliverSignedEvent(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	oldSecret, newSecret := testSecret('a'), testSecret('b')
	t.Setenv("DELIVERY_TEST_SECRET", newSecret)
	t.Setenv("DELIVERY_TEST_TOKEN", "token-123")
	e := newEndpoint(t, "orders", rcv.URL, func(e *Endpoint) {
		e.Secrets = []string{oldSecret, "{env.DELIVERY_TEST_SECRET}"}
		e.Headers = http.Header{"Authorization": {"Bearer {env.DELIVERY_TEST_TOKEN}"}}
	})
	startWorkers(t, js, Options{}, e)

	// Non-ASCII text, escapes and a literal '<' must arrive byte for byte.
	payload := []byte(`{"type":"order.created","data":{"name":"Zoë \"Ünïcode\" 日本 💡","note":"line\nbreak \u00e9 \\ \u003cb\u003e","id":42}}`)
	publishEvent(t, js, "01HZEVENT0000000000000001", "order.created", payload)

	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.received()); n != 1 {
			return fmt.Errorf("receiver got %d requests, want 1", n)
		}
		return nil
	})
	req := rcv.received()[0]

	if !bytes.Equal(req.body, payload) {
		t.Errorf("body = %q, want %q", req.body, payload)
	}
	wantHeaders := map[string]string{
		"Content-Type":  "application/json",
		"Webhook-Id":    "01HZEVENT0000000000000001",
		"User-Agent":    "caddy-webhooks",
		"Authorization": "Bearer token-123",
	}
	for name, want := range wantHeaders {
		if got := req.header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if ts := req.header.Get("Webhook-Timestamp"); ts == "" {
		t.Error("webhook-timestamp header missing")
	}
	if n := len(strings.Fields(req.header.Get("Webhook-Signature"))); n != 2 {
		t.Errorf("webhook-signature has %d signatures, want 2: %q", n, req.header.Get("Webhook-Signature"))
	}
	for _, secret := range []string{oldSecret, newSecret} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatalf("creating verifier: %v", err)
		}
		if err := wh.Verify(req.body, req.header); err != nil {
			t.Errorf("signature does not verify with secret %c…: %v", secret[len(SecretPrefix)], err)
		}
	}

	waitUntil(t, 5*time.Second, func() error {
		records := attemptRecords(t, js, "orders", "01HZEVENT0000000000000001")
		if len(records) != 1 {
			return fmt.Errorf("got %d attempt records, want 1", len(records))
		}
		rec := records[0]
		if rec.Outcome != OutcomeSuccess || rec.StatusCode != http.StatusNoContent || rec.Attempt != 1 || rec.ErrorClass != "" || rec.EventType != "order.created" {
			return fmt.Errorf("attempt record = %+v, want attempt 1, success, 204, type order.created", rec)
		}
		return nil
	})
}

func TestDeliverUnsignedEvent(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	startWorkers(t, js, Options{}, newEndpoint(t, "plain", rcv.URL, nil))

	publishEvent(t, js, "evt1", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.received()); n != 1 {
			return fmt.Errorf("receiver got %d requests, want 1", n)
		}
		return nil
	})
	if sig := rcv.received()[0].header.Get("Webhook-Signature"); sig != "" {
		t.Errorf("webhook-signature = %q, want none without secrets", sig)
	}
}

func TestInvalidEventIsDeadLettered(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	hooks := new(hookLog)
	startWorkers(t, js, Options{Hooks: hooks.hooks()}, newEndpoint(t, "strict", rcv.URL, nil))

	// An event without a Nats-Msg-Id header has no webhook-id to send.
	if _, err := js.Publish(t.Context(), "webhooks.events.order.created", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, func() error {
		if dead := deadLetters(t, js, "strict"); len(dead) != 1 {
			return fmt.Errorf("got %d dead letters, want 1", len(dead))
		}
		return nil
	})
	dead := deadLetters(t, js, "strict")[0]
	if dead.ErrorClass != ClassInvalidEvent {
		t.Errorf("error class = %q, want %q", dead.ErrorClass, ClassInvalidEvent)
	}
	if !strings.Contains(dead.Error, "Nats-Msg-Id") {
		t.Errorf("error = %q, want it to name the missing header", dead.Error)
	}
	if dead.EventID != "seq1" {
		t.Errorf("event id = %q, want seq1 from the stream sequence", dead.EventID)
	}
	if string(dead.Payload) != `{"n":1}` {
		t.Errorf("payload = %s, want the stored payload", dead.Payload)
	}
	if n := len(rcv.received()); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
	// The hook runs after the dead letter is stored, so it is waited for.
	waitUntil(t, 5*time.Second, func() error {
		if _, deadCount := hooks.snapshot(); deadCount != 1 {
			return fmt.Errorf("DeadLettered called %d times, want 1", deadCount)
		}
		return nil
	})
}

func TestRetryUntilSuccess(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, func(n int, _ recordedRequest, w http.ResponseWriter) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("database unavailable"))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	delays := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	e := newEndpoint(t, "retrying", rcv.URL, func(e *Endpoint) {
		e.Secrets = []string{testSecret('k')}
		e.Retry = []caddy.Duration{caddy.Duration(delays[0]), caddy.Duration(delays[1])}
	})
	hooks := new(hookLog)
	startWorkers(t, js, Options{Hooks: hooks.hooks()}, e)

	payload := []byte(`{"type":"order.created","data":{"id":7}}`)
	publishEvent(t, js, "evt-retry", "order.created", payload)

	waitUntil(t, 10*time.Second, func() error {
		if n := len(rcv.received()); n != 3 {
			return fmt.Errorf("receiver got %d requests, want 3", n)
		}
		return nil
	})
	requests := rcv.received()
	for i, req := range requests {
		if req.id() != "evt-retry" {
			t.Errorf("attempt %d: webhook-id = %q, want evt-retry", i+1, req.id())
		}
		if !bytes.Equal(req.body, payload) {
			t.Errorf("attempt %d: body = %q, want %q", i+1, req.body, payload)
		}
	}
	for i, delay := range delays {
		gap := requests[i+1].at.Sub(requests[i].at)
		if minGap := delay * 8 / 10; gap < minGap {
			t.Errorf("gap before attempt %d = %s, want at least %s (delay %s minus 20%% jitter)", i+2, gap, minGap, delay)
		}
	}

	waitUntil(t, 5*time.Second, func() error {
		records := attemptRecords(t, js, "retrying", "evt-retry")
		wantOutcomes := []string{OutcomeRetry, OutcomeRetry, OutcomeSuccess}
		if len(records) != len(wantOutcomes) {
			return fmt.Errorf("got %d attempt records, want %d", len(records), len(wantOutcomes))
		}
		for i, rec := range records {
			if rec.Attempt != i+1 || rec.Outcome != wantOutcomes[i] {
				return fmt.Errorf("record %d = attempt %d %s, want attempt %d %s", i, rec.Attempt, rec.Outcome, i+1, wantOutcomes[i])
			}
		}
		if records[0].Response != "database unavailable" || records[0].StatusCode != 500 || records[0].ErrorClass != ClassStatus {
			return fmt.Errorf("first record = %+v, want status 500, class status and the response body", records[0])
		}
		if records[0].NextAttempt == "" || records[2].NextAttempt != "" {
			return fmt.Errorf("next_attempt = %q and %q, want set on a retry only", records[0].NextAttempt, records[2].NextAttempt)
		}
		return nil
	})
	// The hook of the last attempt runs after its record is stored.
	waitUntil(t, 5*time.Second, func() error {
		outcomes, _ := hooks.snapshot()
		if got := strings.Join(outcomes, " "); got != "retrying:retry retrying:retry retrying:success" {
			return fmt.Errorf("hook outcomes = %s", got)
		}
		return nil
	})
}

func TestDeadLetterAfterLastRetry(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, respondWith(http.StatusBadGateway))
	retry := []caddy.Duration{ms(100), ms(100)}
	e := newEndpoint(t, "failing", rcv.URL, func(e *Endpoint) { e.Retry = retry })
	hooks := new(hookLog)
	startWorkers(t, js, Options{Hooks: hooks.hooks()}, e)

	payload := []byte(`{"type":"order.created","data":{"note":"é"}}`)
	publishEvent(t, js, "evt-dead", "order.created", payload)

	waitUntil(t, 10*time.Second, func() error {
		if dead := deadLetters(t, js, "failing"); len(dead) != 1 {
			return fmt.Errorf("got %d dead letters, want 1", len(dead))
		}
		return nil
	})
	dead := deadLetters(t, js, "failing")[0]
	wantFields := map[string]string{
		"event_id":    "evt-dead",
		"event_type":  "order.created",
		"destination": "failing",
		"error_class": ClassStatus,
	}
	gotFields := map[string]string{
		"event_id":    dead.EventID,
		"event_type":  dead.EventType,
		"destination": dead.Destination,
		"error_class": dead.ErrorClass,
	}
	for field, want := range wantFields {
		if gotFields[field] != want {
			t.Errorf("dead letter %s = %q, want %q", field, gotFields[field], want)
		}
	}
	if !bytes.Equal(dead.Payload, payload) {
		t.Errorf("dead letter payload = %s, want %s", dead.Payload, payload)
	}
	if dead.Attempts != 1+len(retry) {
		t.Errorf("dead letter attempts = %d, want %d", dead.Attempts, 1+len(retry))
	}
	if dead.StatusCode != http.StatusBadGateway {
		t.Errorf("dead letter status code = %d, want 502", dead.StatusCode)
	}

	// Wait past the delay a further retry would have used.
	time.Sleep(500 * time.Millisecond)
	if n := len(rcv.received()); n != 1+len(retry) {
		t.Errorf("receiver got %d requests, want exactly %d", n, 1+len(retry))
	}
	outcomes, deadCount := hooks.snapshot()
	if got := strings.Join(outcomes, " "); got != "failing:retry failing:retry failing:dead_letter" {
		t.Errorf("hook outcomes = %s", got)
	}
	if deadCount != 1 {
		t.Errorf("DeadLettered called %d times, want 1", deadCount)
	}
	records := attemptRecords(t, js, "failing", "evt-dead")
	if len(records) != 3 || records[2].Outcome != OutcomeDeadLetter {
		t.Errorf("attempt records = %+v, want 3 ending in dead_letter", records)
	}
}

func TestBackoffDoesNotBlockFreshEvents(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, func(_ int, req recordedRequest, w http.ResponseWriter) {
		if strings.HasPrefix(req.id(), "failing") {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e := newEndpoint(t, "busy", rcv.URL, func(e *Endpoint) {
		e.Retry = []caddy.Duration{caddy.Duration(time.Hour)}
		e.Concurrency = 4
	})
	startWorkers(t, js, Options{}, e)

	for i := range 20 {
		publishEvent(t, js, fmt.Sprintf("failing%02d", i), "order.created", []byte(`{}`))
	}
	waitUntil(t, 10*time.Second, func() error {
		if n := len(rcv.received()); n != 20 {
			return fmt.Errorf("receiver got %d requests, want the 20 failing events once each", n)
		}
		return nil
	})

	for i := range 50 {
		publishEvent(t, js, fmt.Sprintf("fresh%02d", i), "order.created", []byte(`{}`))
	}
	waitUntil(t, 10*time.Second, func() error {
		for i := range 50 {
			id := fmt.Sprintf("fresh%02d", i)
			if n := len(rcv.requestsFor(id)); n != 1 {
				return fmt.Errorf("event %s delivered %d times, want 1", id, n)
			}
		}
		return nil
	})
	if n := len(rcv.received()); n != 70 {
		t.Errorf("receiver got %d requests, want 70: the failing events must wait for their 1h retry", n)
	}
}

func TestHangingEndpointDoesNotDelayOthers(t *testing.T) {
	js := startJetStream(t)
	release := make(chan struct{})
	stuck := newReceiver(t, func(_ int, _ recordedRequest, w http.ResponseWriter) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	fine := newReceiver(t, nil)

	stuckEndpoint := newEndpoint(t, "stuck", stuck.URL, func(e *Endpoint) {
		e.Timeout = caddy.Duration(time.Minute)
		e.Concurrency = 2
	})
	fineEndpoint := newEndpoint(t, "fine", fine.URL, func(e *Endpoint) { e.Concurrency = 2 })
	startWorkers(t, js, Options{}, stuckEndpoint, fineEndpoint)
	// Registered after startWorkers so it runs first and the workers stop
	// without waiting for the blocked handlers.
	t.Cleanup(func() { close(release) })

	for i := range 10 {
		publishEvent(t, js, fmt.Sprintf("evt%02d", i), "order.created", []byte(`{}`))
	}
	waitUntil(t, 10*time.Second, func() error {
		if n := len(fine.received()); n != 10 {
			return fmt.Errorf("healthy endpoint got %d of 10 events", n)
		}
		return nil
	})
	if n := len(stuck.received()); n != 2 {
		t.Errorf("hanging endpoint got %d requests, want 2 (its concurrency)", n)
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, func(n int, _ recordedRequest, w http.ResponseWriter) {
		if n == 1 {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	hooks := new(hookLog)
	startWorkers(t, js, Options{Hooks: hooks.hooks()}, newEndpoint(t, "gone", rcv.URL, nil))

	publishEvent(t, js, "evt-kept", "order.created", []byte(`{"n":1}`))
	waitUntil(t, 5*time.Second, func() error {
		state, err := getState(t, js, "gone")
		if err != nil {
			return err
		}
		if state.State != StateDisabled || state.Reason != goneReason || state.Since.IsZero() {
			return fmt.Errorf("state = %+v, want disabled with reason and time", state)
		}
		return nil
	})

	publishEvent(t, js, "evt-later", "order.created", []byte(`{"n":2}`))
	time.Sleep(500 * time.Millisecond)
	if n := len(rcv.received()); n != 1 {
		t.Fatalf("receiver got %d requests while disabled, want only the first", n)
	}

	putState(t, js, "gone", StateEnabled)
	waitUntil(t, 5*time.Second, func() error {
		for _, id := range []string{"evt-kept", "evt-later"} {
			records := attemptRecords(t, js, "gone", id)
			if len(records) == 0 || records[len(records)-1].Outcome != OutcomeSuccess {
				return fmt.Errorf("event %s not delivered after enabling: %+v", id, records)
			}
		}
		return nil
	})
	outcomes, dead := hooks.snapshot()
	if outcomes[0] != "gone:disabled" || dead != 0 {
		t.Errorf("hook outcomes = %v, dead letters = %d; want disabled first and no dead letter", outcomes, dead)
	}
}

func TestDisabledAtStartDoesNotFetch(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	putState(t, js, "off", StateDisabled)
	startWorkers(t, js, Options{}, newEndpoint(t, "off", rcv.URL, nil))

	publishEvent(t, js, "evt-waiting", "order.created", []byte(`{}`))
	time.Sleep(500 * time.Millisecond)
	if n := len(rcv.received()); n != 0 {
		t.Fatalf("receiver got %d requests from a disabled endpoint, want 0", n)
	}

	putState(t, js, "off", StateEnabled)
	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.requestsFor("evt-waiting")); n != 1 {
			return fmt.Errorf("event delivered %d times after enabling, want 1", n)
		}
		return nil
	})
}

func TestRetryAfterIsHonored(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, func(n int, _ recordedRequest, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e := newEndpoint(t, "limited", rcv.URL, func(e *Endpoint) { e.Retry = []caddy.Duration{ms(50)} })
	startWorkers(t, js, Options{}, e)

	publishEvent(t, js, "evt-429", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.received()); n != 2 {
			return fmt.Errorf("receiver got %d requests, want 2", n)
		}
		return nil
	})
	requests := rcv.received()
	if gap := requests[1].at.Sub(requests[0].at); gap < 950*time.Millisecond {
		t.Errorf("retry came %s after a 429 with Retry-After: 1, want about 1s", gap)
	}
}

func TestOrderedDeliversInStreamOrder(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, func(n int, _ recordedRequest, w http.ResponseWriter) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e := newEndpoint(t, "ordered", rcv.URL, func(e *Endpoint) { e.Ordered = true })
	startWorkers(t, js, Options{}, e)

	for i := range 5 {
		publishEvent(t, js, fmt.Sprintf("evt%d", i), "order.created", []byte(`{}`))
	}
	waitUntil(t, 10*time.Second, func() error {
		if n := len(rcv.received()); n != 6 {
			return fmt.Errorf("receiver got %d requests, want 6", n)
		}
		return nil
	})
	var got []string
	for _, req := range rcv.received() {
		got = append(got, req.id())
	}
	if want := "evt0 evt0 evt1 evt2 evt3 evt4"; strings.Join(got, " ") != want {
		t.Errorf("delivery order = %s, want %s", strings.Join(got, " "), want)
	}
}

func TestRateLimitSpacesAttempts(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	e := newEndpoint(t, "slow", rcv.URL, func(e *Endpoint) { e.Rate = 5 })
	startWorkers(t, js, Options{}, e)

	for i := range 6 {
		publishEvent(t, js, fmt.Sprintf("evt%d", i), "order.created", []byte(`{}`))
	}
	waitUntil(t, 10*time.Second, func() error {
		if n := len(rcv.received()); n != 6 {
			return fmt.Errorf("receiver got %d requests, want 6", n)
		}
		return nil
	})
	requests := rcv.received()
	// Five intervals of 200ms at 5 attempts per second.
	if span := requests[5].at.Sub(requests[0].at); span < 900*time.Millisecond {
		t.Errorf("6 attempts at 5/s took %s, want at least 1s", span)
	}
}

func TestStopWhileAttemptHangs(t *testing.T) {
	js := startJetStream(t)
	release := make(chan struct{})
	rcv := newReceiver(t, func(_ int, _ recordedRequest, w http.ResponseWriter) {
		<-release
	})
	e := newEndpoint(t, "hanging", rcv.URL, func(e *Endpoint) { e.Timeout = caddy.Duration(time.Minute) })
	w := startWorkers(t, js, Options{}, e)
	t.Cleanup(func() { close(release) })

	publishEvent(t, js, "evt-hang", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.received()); n != 1 {
			return fmt.Errorf("receiver got %d requests, want 1", n)
		}
		return nil
	})

	const timeout = 300 * time.Millisecond
	start := time.Now()
	w.Stop(timeout)
	if elapsed := time.Since(start); elapsed > timeout+time.Second {
		t.Errorf("Stop returned after %s, want about %s", elapsed, timeout)
	}
}

func TestDrainLetsAttemptFinish(t *testing.T) {
	js := startJetStream(t)
	var responded atomic.Bool
	rcv := newReceiver(t, func(_ int, _ recordedRequest, w http.ResponseWriter) {
		time.Sleep(2 * time.Second)
		responded.Store(true)
		w.WriteHeader(http.StatusOK)
	})
	e := newEndpoint(t, "draining", rcv.URL, func(e *Endpoint) { e.Timeout = caddy.Duration(10 * time.Second) })
	hooks := new(hookLog)
	w := startWorkers(t, js, Options{Hooks: hooks.hooks()}, e)

	publishEvent(t, js, "evt-drain", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.received()); n != 1 {
			return fmt.Errorf("receiver got %d requests, want 1", n)
		}
		return nil
	})

	w.Drain()
	if responded.Load() {
		t.Fatal("Drain returned only after the attempt finished; it must return at once")
	}

	waitUntil(t, 10*time.Second, func() error {
		records := attemptRecords(t, js, "draining", "evt-drain")
		if len(records) != 1 {
			return fmt.Errorf("got %d attempt records, want 1", len(records))
		}
		if rec := records[0]; rec.Attempt != 1 || rec.Outcome != OutcomeSuccess || rec.StatusCode != http.StatusOK {
			return fmt.Errorf("attempt record = %+v, want attempt 1, success, 200", rec)
		}
		return nil
	})
	waitUntil(t, 5*time.Second, func() error {
		info, err := consumerInfo(t, js, "dest_draining")
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumRedelivered != 0 || info.NumPending != 0 {
			return fmt.Errorf("consumer has %d unacknowledged, %d redelivered and %d pending events, want the event acknowledged",
				info.NumAckPending, info.NumRedelivered, info.NumPending)
		}
		return nil
	})
	// The hook runs after the acknowledgement, so it is waited for too.
	waitUntil(t, 5*time.Second, func() error {
		if outcomes, _ := hooks.snapshot(); strings.Join(outcomes, " ") != "draining:success" {
			return fmt.Errorf("hook outcomes = %v, want one success", outcomes)
		}
		return nil
	})
	if n := len(rcv.received()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestDrainKeepsEventWaitingForRate(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	e := newEndpoint(t, "paced", rcv.URL, func(e *Endpoint) { e.Rate = 1 })
	w := startWorkers(t, js, Options{}, e)

	publishEvent(t, js, "evt-first", "order.created", []byte(`{}`))
	publishEvent(t, js, "evt-paced", "order.created", []byte(`{}`))
	// Once both events are fetched, the second waits about a second for
	// the rate limit.
	waitUntil(t, 5*time.Second, func() error {
		info, err := consumerInfo(t, js, "dest_paced")
		if err != nil {
			return err
		}
		if info.Delivered.Consumer != 2 {
			return fmt.Errorf("consumer delivered %d events, want 2", info.Delivered.Consumer)
		}
		return nil
	})
	w.Drain()

	waitUntil(t, 5*time.Second, func() error {
		records := attemptRecords(t, js, "paced", "evt-paced")
		if len(records) != 1 {
			return fmt.Errorf("got %d attempt records for the paced event, want 1", len(records))
		}
		if rec := records[0]; rec.Attempt != 1 || rec.Outcome != OutcomeSuccess {
			return fmt.Errorf("attempt record = %+v, want attempt 1, success", rec)
		}
		return nil
	})
}

func TestStartReconcilesConsumers(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	first := startWorkers(t, js, Options{RemoveStale: true}, newEndpoint(t, "kept", rcv.URL, nil), newEndpoint(t, "removed", rcv.URL, nil))

	publishEvent(t, js, "evt-before", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.received()); n != 2 {
			return fmt.Errorf("receiver got %d requests, want 2", n)
		}
		return nil
	})
	first.Stop(time.Second)

	stream, err := js.Stream(t.Context(), "WEBHOOKS_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	removed, err := stream.Consumer(t.Context(), "dest_removed")
	if err != nil {
		t.Fatalf("looking up dest_removed: %v", err)
	}
	if got := removed.CachedInfo().Config.MaxAckPending; got != -1 {
		t.Errorf("dest_removed MaxAckPending = %d, want -1", got)
	}
	if got := removed.CachedInfo().Config.AckWait; got != 32*time.Second {
		t.Errorf("dest_removed AckWait = %s, want the 2s timeout plus 30s", got)
	}

	keptEndpoint := newEndpoint(t, "kept", rcv.URL, func(e *Endpoint) {
		e.Events = []string{"order.created", "payment.>"}
		e.Timeout = ms(5000)
		e.Ordered = true
	})
	startWorkers(t, js, Options{RemoveStale: true}, keptEndpoint)

	if _, err := stream.Consumer(t.Context(), "dest_removed"); err == nil {
		t.Error("consumer dest_removed still exists after its endpoint was removed")
	}
	cons, err := stream.Consumer(t.Context(), "dest_kept")
	if err != nil {
		t.Fatalf("looking up dest_kept: %v", err)
	}
	cfg := cons.CachedInfo().Config
	if got := strings.Join(cfg.FilterSubjects, " "); got != "webhooks.events.order.created webhooks.events.payment.> webhooks.direct.kept.>" {
		t.Errorf("filter subjects = %s", got)
	}
	if cfg.AckWait != 35*time.Second {
		t.Errorf("AckWait = %s, want the 5s timeout plus 30s", cfg.AckWait)
	}
	if cfg.MaxAckPending != 1 {
		t.Errorf("MaxAckPending = %d, want 1 for an ordered endpoint", cfg.MaxAckPending)
	}
	if cfg.MaxDeliver != -1 {
		t.Errorf("MaxDeliver = %d, want -1", cfg.MaxDeliver)
	}
	if len(cfg.BackOff) != 0 {
		t.Errorf("BackOff = %v, want none", cfg.BackOff)
	}
	if cons.CachedInfo().Delivered.Stream != 1 {
		t.Errorf("dest_kept delivered up to stream sequence %d, want 1: the update must keep its position", cons.CachedInfo().Delivered.Stream)
	}
}
