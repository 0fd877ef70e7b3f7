package delivery

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// listAll pages through the events that q selects and returns their ids
// and the number of pages.
func listAll(t *testing.T, store *Store, q EventQuery, endpoints []*Endpoint) ([]string, int) {
	t.Helper()
	var ids []string
	pages := 0
	for {
		page, err := store.ListEvents(t.Context(), q, endpoints)
		if err != nil {
			t.Fatalf("ListEvents(%+v): %v", q, err)
		}
		pages++
		for _, ev := range page.Events {
			ids = append(ids, ev.ID)
		}
		if page.Next == 0 {
			return ids, pages
		}
		if pages > 100 {
			t.Fatal("more than 100 pages")
		}
		q.Before = page.Next
	}
}

func reversed(ids []string) []string {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

func TestListEventsPagesNewestFirst(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)

	orders := publishMany(t, js, 25)
	payment := ulid.Make().String()
	publishEvent(t, js, payment, "payment.failed", []byte(`{}`))
	all := append(slices.Clone(orders), payment)

	ids, pages := listAll(t, store, EventQuery{Limit: 10}, nil)
	if !slices.Equal(ids, reversed(all)) {
		t.Errorf("listed ids = %v, want all 26 newest first", ids)
	}
	if pages != 3 {
		t.Errorf("listed %d pages of 10, want 3", pages)
	}

	exact, pages := listAll(t, store, EventQuery{Limit: 13}, nil)
	if len(exact) != 26 || pages != 2 {
		t.Errorf("limit 13 gave %d events on %d pages, want 26 on 2 with no empty last page", len(exact), pages)
	}

	byType, _ := listAll(t, store, EventQuery{Limit: 100, Type: "payment.*"}, nil)
	if !slices.Equal(byType, []string{payment}) {
		t.Errorf("type payment.* listed %v, want only %s", byType, payment)
	}

	first, err := store.FindEvent(t.Context(), orders[10])
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.FindEvent(t.Context(), orders[19])
	if err != nil {
		t.Fatal(err)
	}
	ranged, _ := listAll(t, store, EventQuery{Limit: 4, Since: first.Time, Until: last.Time}, nil)
	if !slices.Equal(ranged, reversed(orders[10:19])) {
		t.Errorf("since/until listed %v, want events 10 to 18 newest first", ranged)
	}

	page, err := store.ListEvents(t.Context(), EventQuery{Limit: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := page.Events[0]
	if ev.ID != payment || ev.Type != "payment.failed" || ev.Size != 2 || ev.StreamSequence != 26 || ev.Time == "" {
		t.Errorf("summary = %+v, want id, type, size 2, sequence 26 and time of the newest event", ev)
	}
}

// startFineAndBroken starts workers for the endpoint "fine", whose receiver
// accepts every webhook, and "broken", whose receiver responds with 500 and
// which dead-letters after two attempts, followed by extra endpoints that
// deliver to the accepting receiver. It returns the accepting receiver.
func startFineAndBroken(t *testing.T, js jetstream.JetStream, extra ...func(url string) *Endpoint) (*receiver, []*Endpoint) {
	t.Helper()
	ok := newReceiver(t, nil)
	failing := newReceiver(t, respondWith(http.StatusInternalServerError))
	endpoints := []*Endpoint{
		newEndpoint(t, "fine", ok.URL, nil),
		newEndpoint(t, "broken", failing.URL, func(e *Endpoint) { e.Retry = []caddy.Duration{ms(50)} }),
	}
	for _, endpoint := range extra {
		endpoints = append(endpoints, endpoint(ok.URL))
	}
	startWorkers(t, js, Options{}, endpoints...)
	return ok, endpoints
}

func TestListEventsOutcomes(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)
	ok, endpoints := startFineAndBroken(t, js, func(url string) *Endpoint {
		return newEndpoint(t, "payments", url, func(e *Endpoint) { e.Events = []string{"payment.*"} })
	})

	ids := publishMany(t, js, 2)
	waitUntil(t, 10*time.Second, func() error {
		if dead := deadLetters(t, js, "broken"); len(dead) != 2 {
			return fmt.Errorf("got %d dead letters, want 2", len(dead))
		}
		return nil
	})
	waitDeliveredOnce(t, ok, ids)

	page, err := store.ListEvents(t.Context(), EventQuery{Limit: 10}, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 {
		t.Fatalf("listed %d events, want 2", len(page.Events))
	}
	got := page.Events[0].Destinations
	want := map[string]DestinationOutcome{
		"fine":   {Outcome: OutcomeSuccess, Attempts: 1},
		"broken": {Outcome: OutcomeDeadLetter, Attempts: 2},
	}
	if len(got) != len(want) || got["fine"] != want["fine"] || got["broken"] != want["broken"] {
		t.Errorf("destinations = %+v, want %+v", got, want)
	}

	for _, tt := range []struct {
		name  string
		query EventQuery
		want  int
	}{
		{name: "dead_letter anywhere", query: EventQuery{Outcome: OutcomeDeadLetter}, want: 2},
		{name: "success at broken", query: EventQuery{Outcome: OutcomeSuccess, Destination: endpoints[1]}, want: 0},
		{name: "destination without the type", query: EventQuery{Destination: endpoints[2]}, want: 0},
		{name: "pending", query: EventQuery{Outcome: OutcomePending}, want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.query.Limit = 10
			if ids, _ := listAll(t, store, tt.query, endpoints); len(ids) != tt.want {
				t.Errorf("listed %d events, want %d", len(ids), tt.want)
			}
		})
	}

	dead, err := store.ListDeadLetters(t.Context(), DeadLetterQuery{Limit: 1, Destination: "broken"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dead.DeadLetters) != 1 || dead.Next == 0 {
		t.Fatalf("first dead-letter page = %+v, want one dead letter and a next page", dead)
	}
	rest, err := store.ListDeadLetters(t.Context(), DeadLetterQuery{Limit: 1, Destination: "broken", Before: dead.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.DeadLetters) != 1 || rest.Next != 0 {
		t.Fatalf("second dead-letter page = %+v, want one dead letter and no next page", rest)
	}
	// The retry jitter decides which event is dead-lettered first.
	newest, oldest := dead.DeadLetters[0], rest.DeadLetters[0]
	if newest.Sequence <= oldest.Sequence {
		t.Errorf("dead letters at sequences %d then %d, want newest first", newest.Sequence, oldest.Sequence)
	}
	if got := []string{newest.EventID, oldest.EventID}; !slices.Contains(got, ids[0]) || !slices.Contains(got, ids[1]) {
		t.Errorf("dead letters of events %v, want %v", got, ids)
	}

	status, err := store.Status(t.Context(), "broken", mustCount(t, store))
	if err != nil {
		t.Fatal(err)
	}
	if status.DeadLetters != 2 || status.LastAttempt == nil || status.LastAttempt.Outcome != OutcomeDeadLetter || status.Pending != 0 {
		t.Errorf("status of broken = %+v, want 2 dead letters, last attempt dead_letter, nothing pending", status)
	}

	if n, err := store.DeleteDeadLetters(t.Context(), "broken", ids[0]); err != nil || n != 1 {
		t.Errorf("DeleteDeadLetters = %d, %v; want 1", n, err)
	}
	if n, err := store.DeleteDeadLetters(t.Context(), "broken", ids[0]); err != nil || n != 0 {
		t.Errorf("second DeleteDeadLetters = %d, %v; want 0", n, err)
	}
	if n, err := store.PurgeDeadLetters(t.Context(), "broken"); err != nil || n != 1 {
		t.Errorf("PurgeDeadLetters = %d, %v; want 1", n, err)
	}
	if counts := mustCount(t, store); counts["broken"] != 0 {
		t.Errorf("dead letters of broken after purge = %d, want 0", counts["broken"])
	}
}

func mustCount(t *testing.T, store *Store) map[string]uint64 {
	t.Helper()
	counts, err := store.DeadLetterCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func TestFindEventUnknownIDs(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)
	publishMany(t, js, 3)
	for _, id := range []string{ulid.Make().String(), "not-a-ulid", "", "01ARZ3NDEKTSV4RRFFQ69G5FAV"} {
		if _, err := store.FindEvent(t.Context(), id); !errors.Is(err, ErrEventNotFound) {
			t.Errorf("FindEvent(%q) = %v, want ErrEventNotFound", id, err)
		}
	}
}

func TestTypeStatsCountDeliveries(t *testing.T) {
	saved := flushInterval
	flushInterval = 50 * time.Millisecond
	t.Cleanup(func() { flushInterval = saved })

	js := startJetStream(t)
	store := openStore(t, js)
	rcv := newReceiver(t, nil)
	startWorkers(t, js, Options{}, newEndpoint(t, "a", rcv.URL, nil), newEndpoint(t, "b", rcv.URL, nil))

	publishMany(t, js, 3)
	publishEvent(t, js, ulid.Make().String(), "payment.failed", []byte(`{}`))
	waitUntil(t, 10*time.Second, func() error {
		stats, err := store.TypeStats(t.Context())
		if err != nil {
			return err
		}
		orders := stats["order.created"]
		if orders == nil || orders.Stored != 3 || orders.Delivered != 6 {
			return fmt.Errorf("order.created stats = %+v, want 3 stored and 6 delivered", orders)
		}
		if payments := stats["payment.failed"]; payments == nil || payments.Stored != 1 || payments.Delivered != 0 {
			return fmt.Errorf("payment.failed stats = %+v, want 1 stored and none delivered", payments)
		}
		return nil
	})
}

func TestAttemptRecordsShareBuckets(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)
	ok, endpoints := startFineAndBroken(t, js)

	// Eight events created within one bucket, and one whose id is no ULID.
	// Fewer than ten, so that the 18 failures stay below the threshold of
	// the circuit breaker.
	start := uint64(time.Now().UnixMilli()) &^ (1<<15 - 1)
	var ids []string
	for i := range 8 {
		ids = append(ids, ulid.MustNew(start+uint64(i), rand.Reader).String())
	}
	ids = append(ids, "manual-event-1")
	for i, id := range ids {
		publishEvent(t, js, id, "order.created", fmt.Appendf(nil, `{"n":%d}`, i))
	}
	waitUntil(t, 15*time.Second, func() error {
		if dead := deadLetters(t, js, "broken"); len(dead) != len(ids) {
			return fmt.Errorf("got %d dead letters, want %d", len(dead), len(ids))
		}
		return nil
	})
	waitDeliveredOnce(t, ok, ids)

	attempts, err := js.Stream(t.Context(), defaultLayout.AttemptsStream())
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() error {
		info, err := attempts.Info(t.Context(), jetstream.WithSubjectFilter(">"))
		if err != nil {
			return err
		}
		if info.State.Msgs != uint64(3*len(ids)) {
			return fmt.Errorf("%d attempt records, want %d", info.State.Msgs, 3*len(ids))
		}
		if len(info.State.Subjects) != 4 {
			return fmt.Errorf("attempt records on %d subjects, want 4 (two buckets at two destinations): %v", len(info.State.Subjects), info.State.Subjects)
		}
		return nil
	})

	for _, id := range ids {
		records, err := store.EventAttempts(t.Context(), id)
		if err != nil {
			t.Fatalf("EventAttempts(%s): %v", id, err)
		}
		if n := len(records["fine"]); n != 1 {
			t.Errorf("event %s: %d attempts at fine, want 1", id, n)
		}
		if n := len(records["broken"]); n != 2 {
			t.Errorf("event %s: %d attempts at broken, want 2", id, n)
		}
		for _, rec := range append(records["fine"], records["broken"]...) {
			if rec.EventID != id {
				t.Errorf("attempts of event %s include one of event %s", id, rec.EventID)
			}
		}
	}

	page, err := store.ListEvents(t.Context(), EventQuery{Limit: 50}, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != len(ids) {
		t.Fatalf("listed %d events, want %d", len(page.Events), len(ids))
	}
	for _, ev := range page.Events {
		if got := ev.Destinations["fine"]; got != (DestinationOutcome{Outcome: OutcomeSuccess, Attempts: 1}) {
			t.Errorf("event %s at fine: %+v, want one successful attempt", ev.ID, got)
		}
		if got := ev.Destinations["broken"]; got != (DestinationOutcome{Outcome: OutcomeDeadLetter, Attempts: 2}) {
			t.Errorf("event %s at broken: %+v, want two attempts and a dead letter", ev.ID, got)
		}
	}
}

func TestAttemptRecordsOfLegacyLayoutStayVisible(t *testing.T) {
	js := startJetStream(t)
	store := openStore(t, js)
	endpoints := []*Endpoint{newEndpoint(t, "fine", "http://127.0.0.1:1/hooks", nil)}
	if err := Reconcile(t.Context(), js, defaultLayout, endpoints, nil); err != nil {
		t.Fatal(err)
	}
	ids := publishMany(t, js, 1)

	// A record as instances wrote it before buckets: on a subject per
	// event, without headers.
	rec := AttemptRecord{EventID: ids[0], EventType: "order.created", Destination: "fine", Attempt: 1, Outcome: OutcomeSuccess, StatusCode: 204}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), defaultLayout.LegacyAttemptSubject("fine", ids[0]), data); err != nil {
		t.Fatal(err)
	}

	page, err := store.ListEvents(t.Context(), EventQuery{Limit: 10}, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 {
		t.Fatalf("listed %d events, want 1", len(page.Events))
	}
	if got := page.Events[0].Destinations["fine"]; got != (DestinationOutcome{Outcome: OutcomeSuccess, Attempts: 1}) {
		t.Errorf("outcome at fine = %+v, want the legacy record's success", got)
	}

	attempts, err := store.EventAttempts(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts["fine"]) != 1 {
		t.Fatalf("attempts = %+v, want the legacy record at fine", attempts)
	}
	if status := attempts["fine"][0].StatusCode; status != 204 {
		t.Errorf("legacy record status = %d, want 204", status)
	}
}
