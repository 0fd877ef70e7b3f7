package webhooks_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// adminConfig has two destinations: orders, whose receiver the test
// switches between success and failure, and flaky, which is disabled after
// failing for one second. The site emits order.created and audit.logged.
const adminConfig = `{
	admin {{.Admin}}
	persist_config off
	auto_https off
	grace_period 2s
	webhooks {
		retention {
			events 1d
			attempts 2d
		}
		endpoint orders {{.Orders}} {
			events order.*
			secret ` + testSecret + `
			timeout 2s
			retry 100ms
			allow_private
		}
		endpoint flaky {{.Flaky}} {
			events audit.*
			timeout 2s
			retry 200ms 200ms 200ms 200ms 200ms 200ms 200ms 200ms 200ms 200ms
			disable_after 1s
			allow_private
		}
		{{.Extra}}
	}
}

http://127.0.0.1:{{.Port}} {
	bind 127.0.0.1
	webhooks {
		event order.created {
			method POST
			path /orders
			status 201
			description "A customer placed an order"
		}
		event audit.logged POST /audit 2xx
	}
	respond /orders "{}" 201
	respond /audit "{}" 200
}
`

// adminSite is one Caddy with adminConfig and its two receivers.
type adminSite struct {
	t                 *testing.T
	caddy             *caddyProcess
	port              int
	orders            *receiver
	flaky             *receiver
	ordersOK, flakyOK *atomic.Bool
	data              map[string]any
}

func startAdminSite(t *testing.T) *adminSite {
	t.Helper()
	s := &adminSite{t: t, port: freePort(t), ordersOK: new(atomic.Bool), flakyOK: new(atomic.Bool)}
	s.ordersOK.Store(true)
	switchable := func(ok *atomic.Bool) func(int, delivery) int {
		return func(int, delivery) int {
			if ok.Load() {
				return http.StatusNoContent
			}
			return http.StatusInternalServerError
		}
	}
	s.orders = newReceiver(t, switchable(s.ordersOK))
	s.flaky = newReceiver(t, switchable(s.flakyOK))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.data = map[string]any{"Admin": admin, "Orders": s.orders.URL, "Flaky": s.flaky.URL, "Port": s.port, "Extra": ""}
	s.caddy = startCaddy(t, renderConfig(t, adminConfig, s.data), "", admin)
	t.Cleanup(func() {
		for _, line := range s.caddy.logs.snapshot() {
			if strings.Contains(line, "DATA RACE") {
				t.Error("the race detector reported a data race in Caddy")
				return
			}
		}
	})
	return s
}

// call sends a request to the admin API and returns the status and body.
func (s *adminSite) call(method, path, body string) (int, []byte) {
	s.t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+s.caddy.Admin+path, reader)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// callJSON sends a request, checks the status and decodes the JSON body.
func (s *adminSite) callJSON(method, path, body string, wantStatus int, out any) {
	s.t.Helper()
	status, data := s.call(method, path, body)
	if status != wantStatus {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, wantStatus, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
}

// wantError checks an error response: its status and that its message
// contains each of parts.
func (s *adminSite) wantError(method, path, body string, wantStatus int, parts ...string) {
	s.t.Helper()
	status, data := s.call(method, path, body)
	if status != wantStatus {
		s.t.Errorf("%s %s: status %d, want %d: %s", method, path, status, wantStatus, data)
		return
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &apiErr); err != nil || apiErr.Error == "" {
		s.t.Errorf("%s %s: body %s is not {\"error\": ...}", method, path, data)
		return
	}
	for _, part := range parts {
		if !strings.Contains(apiErr.Error, part) {
			s.t.Errorf("%s %s: error %q does not contain %q", method, path, apiErr.Error, part)
		}
	}
}

// emit makes n requests that each emit one event of the path's type.
func (s *adminSite) emit(path string, n int) {
	s.t.Helper()
	for i := range n {
		status := send(s.t, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path), fmt.Sprintf(`{"n":%d}`, i))
		if status != http.StatusCreated && status != http.StatusOK {
			s.t.Fatalf("POST %s: status %d", path, status)
		}
	}
}

type adminDestination struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	URL          string   `json:"url"`
	Events       []string `json:"events"`
	State        string   `json:"state"`
	StateReason  string   `json:"state_reason"`
	StateSince   string   `json:"state_since"`
	Pending      *uint64  `json:"pending"`
	FailingSince string   `json:"failing_since"`
	LastAttempt  *struct {
		Time       string `json:"time"`
		Outcome    string `json:"outcome"`
		StatusCode int    `json:"status_code"`
		ErrorClass string `json:"error_class"`
	} `json:"last_attempt"`
	LastSuccess string  `json:"last_success"`
	DeadLetters *uint64 `json:"dead_letters"`
}

func (s *adminSite) destination(name string) adminDestination {
	s.t.Helper()
	var d adminDestination
	s.callJSON(http.MethodGet, "/webhooks/destinations/"+name, "", http.StatusOK, &d)
	return d
}

type adminEventSummary struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	Time           string `json:"time"`
	StreamSequence uint64 `json:"stream_sequence"`
	Size           int    `json:"size"`
	Destinations   map[string]struct {
		Outcome  string `json:"outcome"`
		Attempts int    `json:"attempts"`
	} `json:"destinations"`
}

type adminEventPage struct {
	Events     []adminEventSummary `json:"events"`
	NextCursor string              `json:"next_cursor"`
}

// listEvents pages through /webhooks/events with the query and returns
// every event and the number of pages.
func (s *adminSite) listEvents(query string) ([]adminEventSummary, int) {
	s.t.Helper()
	var all []adminEventSummary
	cursor := ""
	for pages := 1; ; pages++ {
		path := "/webhooks/events?" + query
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page adminEventPage
		s.callJSON(http.MethodGet, path, "", http.StatusOK, &page)
		all = append(all, page.Events...)
		if page.NextCursor == "" {
			return all, pages
		}
		if pages == 100 {
			s.t.Fatalf("more than 100 pages of %s", query)
		}
		cursor = page.NextCursor
	}
}

// waitDeliveries waits until the receiver got each event id n times.
func waitDeliveries(t *testing.T, rc *receiver, ids []string, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d events received %d times each", len(ids), n), func() error {
		got := byEventID(rc.all())
		for _, id := range ids {
			if len(got[id]) < n {
				return fmt.Errorf("event %s received %d times", id, len(got[id]))
			}
		}
		return nil
	})
}

// metric returns the value of a sample on Caddy's metrics endpoint, or -1
// when it is missing.
func (s *adminSite) metric(series string) float64 {
	s.t.Helper()
	status, data := s.call(http.MethodGet, "/metrics", "")
	if status != http.StatusOK {
		s.t.Fatalf("GET /metrics: status %d", status)
	}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), " ")
		if ok && name == series {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				s.t.Fatalf("metric %s has value %q", series, value)
			}
			return f
		}
	}
	return -1
}

func (s *adminSite) waitMetric(series string, check func(float64) bool, what string) {
	s.t.Helper()
	waitFor(s.t, 20*time.Second, series+" "+what, func() error {
		if v := s.metric(series); !check(v) {
			return fmt.Errorf("value %v", v)
		}
		return nil
	})
}

func TestAdminAPI(t *testing.T) {
	s := startAdminSite(t)

	t.Run("destinations", func(t *testing.T) { s.t = t; testAdminDestinations(s) })
	t.Run("errors", func(t *testing.T) { s.t = t; testAdminErrors(s) })
	t.Run("events and pages", func(t *testing.T) { s.t = t; testAdminEvents(s) })
	t.Run("pause 50 then resume", func(t *testing.T) { s.t = t; testAdminPause(s) })
	t.Run("disable then enable", func(t *testing.T) { s.t = t; testAdminDisable(s) })
	t.Run("dead letters replay and purge", func(t *testing.T) { s.t = t; testAdminDeadLetters(s) })
	t.Run("redeliver replay since and test event", func(t *testing.T) { s.t = t; testAdminResend(s) })
	t.Run("event types", func(t *testing.T) { s.t = t; testAdminEventTypes(s) })
	t.Run("reload", func(t *testing.T) { s.t = t; testAdminReload(s) })
	t.Run("broker", func(t *testing.T) { s.t = t; testAdminBroker(s) })
}

func testAdminDestinations(s *adminSite) {
	var list struct {
		Destinations []adminDestination `json:"destinations"`
	}
	s.callJSON(http.MethodGet, "/webhooks/destinations", "", http.StatusOK, &list)
	names := make([]string, len(list.Destinations))
	for i, d := range list.Destinations {
		names[i] = d.Name
	}
	if !slices.Equal(names, []string{"flaky", "orders"}) {
		s.t.Fatalf("destinations = %v, want flaky and orders by name", names)
	}

	orders := s.destination("orders")
	if orders.Kind != "webhook" || orders.URL != s.orders.URL || !slices.Equal(orders.Events, []string{"order.*"}) {
		s.t.Errorf("orders = %+v, want kind webhook, its URL and events order.*", orders)
	}
	if orders.State != "enabled" || orders.Pending == nil || *orders.Pending != 0 || orders.DeadLetters == nil || *orders.DeadLetters != 0 {
		s.t.Errorf("orders = %+v, want enabled with pending 0 and dead_letters 0", orders)
	}
	if orders.LastAttempt != nil || orders.LastSuccess != "" || orders.FailingSince != "" {
		s.t.Errorf("orders = %+v, want no attempt, success or failure yet", orders)
	}
}

func testAdminErrors(s *adminSite) {
	s.wantError(http.MethodGet, "/webhooks/destinations/ordrs", "", http.StatusNotFound, `unknown destination "ordrs"`, "GET /webhooks/destinations")
	s.wantError(http.MethodPost, "/webhooks/destinations/ordrs/pause", "", http.StatusNotFound, `unknown destination "ordrs"`)
	s.wantError(http.MethodGet, "/webhooks/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", "", http.StatusNotFound, `unknown event "01ARZ3NDEKTSV4RRFFQ69G5FAV"`)
	s.wantError(http.MethodGet, "/webhooks/events?cursor=bogus", "", http.StatusBadRequest, `invalid cursor "bogus"`)
	s.wantError(http.MethodGet, "/webhooks/events?since=yesterday", "", http.StatusBadRequest, `invalid since "yesterday"`, "RFC 3339")
	s.wantError(http.MethodGet, "/webhooks/dead?until=soon", "", http.StatusBadRequest, `invalid until "soon"`)
	s.wantError(http.MethodGet, "/webhooks/events?since=2026-12-05T00:00:00Z&until=2026-12-04T00:00:00Z", "", http.StatusBadRequest, "is not before until")
	s.wantError(http.MethodGet, "/webhooks/events?limit=0", "", http.StatusBadRequest, `invalid limit "0"`)
	s.wantError(http.MethodGet, "/webhooks/events?limit=1001", "", http.StatusBadRequest, `invalid limit "1001"`)
	s.wantError(http.MethodGet, "/webhooks/events?outcome=lost", "", http.StatusBadRequest, `invalid outcome "lost"`)
	s.wantError(http.MethodGet, "/webhooks/events?type=order..x", "", http.StatusBadRequest, `invalid type filter`, `"order..x"`)
	s.wantError(http.MethodGet, "/webhooks/events?destination=nobody", "", http.StatusBadRequest, `unknown destination "nobody"`)
	s.wantError(http.MethodGet, "/webhooks/events?dest=orders", "", http.StatusBadRequest, `unknown query parameter "dest"`)
	s.wantError(http.MethodGet, "/webhooks/dead?outcome=success", "", http.StatusBadRequest, `unknown query parameter "outcome"`)
	s.wantError(http.MethodPost, "/webhooks/destinations/orders/replay", `{"since":`, http.StatusBadRequest, "invalid JSON body")
	s.wantError(http.MethodPost, "/webhooks/destinations/orders/replay", `{"from":"2026-12-04T10:00:00Z"}`, http.StatusBadRequest, "invalid JSON body", `"from"`)
	s.wantError(http.MethodPost, "/webhooks/destinations/orders/replay", `{}`, http.StatusBadRequest, "nothing to replay")
	s.wantError(http.MethodPost, "/webhooks/destinations/orders/replay", `{"since":"last week"}`, http.StatusBadRequest, `invalid since "last week"`)
	s.wantError(http.MethodPost, "/webhooks/destinations/orders/replay", `{"dead_letters":true,"since":"2026-12-04T10:00:00Z"}`, http.StatusBadRequest, "cannot be combined")
	s.wantError(http.MethodPost, "/webhooks/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver", `{"destination":`, http.StatusBadRequest, "invalid JSON body")
	s.wantError(http.MethodPost, "/webhooks/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver", `{}`, http.StatusNotFound, "unknown event")
	s.wantError(http.MethodDelete, "/webhooks/dead/orders", "", http.StatusNotFound, `destination "orders" has no dead letters`)
	s.wantError(http.MethodDelete, "/webhooks/dead/bad.name", "", http.StatusBadRequest, `invalid endpoint name "bad.name"`)
	s.wantError(http.MethodGet, "/webhooks/nothing", "", http.StatusNotFound, "unknown admin route /webhooks/nothing")

	for _, tt := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/webhooks/destinations", "GET"},
		{http.MethodGet, "/webhooks/destinations/orders/pause", "POST"},
		{http.MethodPut, "/webhooks/events", "GET"},
		{http.MethodGet, "/webhooks/dead/orders", "DELETE"},
		{http.MethodPost, "/webhooks/event-types", "GET"},
	} {
		status, data := s.call(tt.method, tt.path, "")
		if status != http.StatusMethodNotAllowed || !strings.Contains(string(data), "use "+tt.allow) {
			s.t.Errorf("%s %s: status %d, body %s; want 405 naming %s", tt.method, tt.path, status, data, tt.allow)
		}
	}
}

func testAdminEvents(s *adminSite) {
	s.emit("/orders", 5)
	waitFor(s.t, 30*time.Second, "5 deliveries to orders", func() error {
		if n := len(s.orders.all()); n < 5 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})

	all, pages := s.listEvents("limit=1000&destination=orders")
	paged, pagesOf2 := s.listEvents("limit=2&destination=orders")
	if pages != 1 || len(all) != 5 {
		s.t.Fatalf("limit 1000 listed %d events on %d pages, want 5 on 1", len(all), pages)
	}
	if pagesOf2 != 3 || len(paged) != 5 {
		s.t.Errorf("limit 2 listed %d events on %d pages, want 5 on 3", len(paged), pagesOf2)
	}
	for i := range paged {
		if i > 0 && paged[i].StreamSequence >= paged[i-1].StreamSequence {
			s.t.Errorf("events are not newest first: %d after %d", paged[i].StreamSequence, paged[i-1].StreamSequence)
		}
		if paged[i].ID != all[i].ID {
			s.t.Errorf("page entry %d is %s, want %s as in the single page", i, paged[i].ID, all[i].ID)
		}
	}
	// Deliveries are acknowledged just after the receiver responds.
	waitFor(s.t, 10*time.Second, "success outcomes", func() error {
		all, _ = s.listEvents("limit=10&outcome=success")
		if len(all) != 5 {
			return fmt.Errorf("%d events with outcome success", len(all))
		}
		return nil
	})
	newest := all[0]
	if newest.Type != "order.created" || newest.Size == 0 || newest.Time == "" || newest.Destinations["orders"].Outcome != "success" || newest.Destinations["orders"].Attempts != 1 {
		s.t.Errorf("newest event = %+v, want order.created with size, time and one successful attempt at orders", newest)
	}
	if _, ok := newest.Destinations["flaky"]; ok {
		s.t.Errorf("newest event lists flaky, which does not receive order.*")
	}
	if none, _ := s.listEvents("type=audit.*"); len(none) != 0 {
		s.t.Errorf("type audit.* listed %d events, want 0", len(none))
	}

	var ev struct {
		ID             string          `json:"id"`
		Type           string          `json:"type"`
		Time           string          `json:"time"`
		StreamSequence uint64          `json:"stream_sequence"`
		Payload        json.RawMessage `json:"payload"`
		Attempts       map[string][]struct {
			EventID    string `json:"event_id"`
			Attempt    int    `json:"attempt"`
			Outcome    string `json:"outcome"`
			StatusCode int    `json:"status_code"`
		} `json:"attempts"`
	}
	s.callJSON(http.MethodGet, "/webhooks/events/"+newest.ID, "", http.StatusOK, &ev)
	if ev.ID != newest.ID || ev.Type != "order.created" || ev.StreamSequence != newest.StreamSequence || ev.Time != newest.Time {
		s.t.Errorf("event = %+v, want the listed %+v", ev, newest)
	}
	delivered := byEventID(s.orders.all())[newest.ID]
	if len(delivered) != 1 || !bytes.Equal(delivered[0].Body, ev.Payload) {
		s.t.Errorf("payload = %s, want the delivered body", ev.Payload)
	}
	if a := ev.Attempts["orders"]; len(a) != 1 || a[0].Outcome != "success" || a[0].StatusCode != http.StatusNoContent || a[0].EventID != newest.ID {
		s.t.Errorf("attempts at orders = %+v, want one success with status 204", a)
	}
	s.waitMetric(`caddy_webhooks_deliveries_total{destination="orders",outcome="success"}`, func(v float64) bool { return v >= 5 }, "at least 5")
	s.waitMetric(`caddy_webhooks_destination_pending{destination="orders"}`, func(v float64) bool { return v == 0 }, "0")
}

func testAdminPause(s *adminSite) {
	var paused adminDestination
	s.callJSON(http.MethodPost, "/webhooks/destinations/orders/pause", "", http.StatusOK, &paused)
	if paused.State != "paused" || paused.StateReason == "" || paused.StateSince == "" {
		s.t.Fatalf("after pause: %+v, want paused with reason and time", paused)
	}
	s.waitMetric(`caddy_webhooks_destination_state{destination="orders",state="paused"}`, func(v float64) bool { return v == 1 }, "1")
	before := len(s.orders.all())

	// The webhooks handler publishes events asynchronously, so the count
	// is polled.
	s.emit("/orders", 50)
	waitFor(s.t, 20*time.Second, "50 pending events", func() error {
		if d := s.destination("orders"); *d.Pending != 50 {
			return fmt.Errorf("pending %d", *d.Pending)
		}
		return nil
	})
	s.waitMetric(`caddy_webhooks_destination_pending{destination="orders"}`, func(v float64) bool { return v == 50 }, "50")
	time.Sleep(time.Second)
	if n := len(s.orders.all()); n != before {
		s.t.Fatalf("orders received %d requests while paused", n-before)
	}

	var resumed adminDestination
	s.callJSON(http.MethodPost, "/webhooks/destinations/orders/resume", "{}", http.StatusOK, &resumed)
	if resumed.State != "enabled" {
		s.t.Errorf("after resume: state %q, want enabled", resumed.State)
	}
	waitFor(s.t, 30*time.Second, "50 deliveries after resume", func() error {
		if n := len(s.orders.all()) - before; n < 50 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	for id, ds := range byEventID(s.orders.all()[before:]) {
		if len(ds) != 1 {
			s.t.Errorf("event %s delivered %d times after resume, want once", id, len(ds))
		}
	}
	s.waitMetric(`caddy_webhooks_destination_state{destination="orders",state="enabled"}`, func(v float64) bool { return v == 1 }, "1")
}

func testAdminDisable(s *adminSite) {
	s.emit("/audit", 1)
	waitFor(s.t, 20*time.Second, "flaky disabled", func() error {
		if d := s.destination("flaky"); d.State != "disabled" {
			return fmt.Errorf("state %q", d.State)
		}
		return nil
	})
	flaky := s.destination("flaky")
	if !strings.Contains(flaky.StateReason, "disable_after") || flaky.LastAttempt == nil || flaky.LastAttempt.Outcome != "retry" || flaky.LastAttempt.StatusCode != 500 {
		s.t.Errorf("flaky = %+v, want a reason naming disable_after and a last attempt retry with status 500", flaky)
	}
	s.waitMetric(`caddy_webhooks_destination_state{destination="flaky",state="disabled"}`, func(v float64) bool { return v == 1 }, "1")
	s.wantError(http.MethodPost, "/webhooks/destinations/flaky/resume", "", http.StatusConflict, `destination "flaky" is disabled`, "/enable")
	s.wantError(http.MethodPost, "/webhooks/destinations/flaky/pause", "", http.StatusConflict, `destination "flaky" is disabled`)

	s.flakyOK.Store(true)
	before := len(s.flaky.all())
	s.emit("/audit", 50)
	waitFor(s.t, 20*time.Second, "51 pending events", func() error {
		if d := s.destination("flaky"); *d.Pending != 51 {
			return fmt.Errorf("pending %d", *d.Pending)
		}
		return nil
	})
	time.Sleep(time.Second)
	if n := len(s.flaky.all()); n != before {
		s.t.Fatalf("flaky received %d requests while disabled", n-before)
	}

	var enabled adminDestination
	s.callJSON(http.MethodPost, "/webhooks/destinations/flaky/enable", "", http.StatusOK, &enabled)
	if enabled.State != "enabled" || enabled.FailingSince != "" {
		s.t.Errorf("after enable: %+v, want enabled without failing_since", enabled)
	}
	waitFor(s.t, 30*time.Second, "51 successful deliveries after enable", func() error {
		if n := len(s.flaky.all()) - before; n < 51 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	for id, ds := range byEventID(s.flaky.all()[before:]) {
		if len(ds) != 1 {
			s.t.Errorf("event %s delivered %d times after enable, want once", id, len(ds))
		}
	}
}

type adminDeadLetter struct {
	EventID     string          `json:"event_id"`
	EventType   string          `json:"event_type"`
	Destination string          `json:"destination"`
	Attempts    int             `json:"attempts"`
	StatusCode  int             `json:"status_code"`
	Payload     json.RawMessage `json:"payload"`
	Sequence    uint64          `json:"sequence"`
}

// deadLetters fails the orders receiver, emits n events and waits for
// their dead letters.
func (s *adminSite) deadLetters(n int) []adminDeadLetter {
	s.t.Helper()
	s.ordersOK.Store(false)
	defer s.ordersOK.Store(true)
	s.emit("/orders", n)
	var page struct {
		DeadLetters []adminDeadLetter `json:"dead_letters"`
		NextCursor  string            `json:"next_cursor"`
	}
	waitFor(s.t, 30*time.Second, fmt.Sprintf("%d dead letters", n), func() error {
		s.callJSON(http.MethodGet, "/webhooks/dead?destination=orders&limit=1000", "", http.StatusOK, &page)
		if len(page.DeadLetters) != n {
			return fmt.Errorf("%d so far", len(page.DeadLetters))
		}
		return nil
	})
	return page.DeadLetters
}

func testAdminDeadLetters(s *adminSite) {
	deadBefore := s.metric(`caddy_webhooks_dead_letters_total{destination="orders"}`)
	dead := s.deadLetters(2)
	for _, d := range dead {
		if d.Destination != "orders" || d.EventType != "order.created" || d.Attempts != 2 || d.StatusCode != 500 || d.Sequence == 0 || len(d.Payload) == 0 {
			s.t.Errorf("dead letter = %+v, want orders, order.created, 2 attempts, status 500, a sequence and the payload", d)
		}
	}
	if d := s.destination("orders"); *d.DeadLetters != 2 || d.LastAttempt == nil || d.LastAttempt.Outcome != "dead_letter" {
		s.t.Errorf("orders = %+v, want 2 dead letters and last attempt dead_letter", d)
	}
	s.waitMetric(`caddy_webhooks_dead_letters_stored{destination="orders"}`, func(v float64) bool { return v == 2 }, "2")
	s.waitMetric(`caddy_webhooks_dead_letters_total{destination="orders"}`, func(v float64) bool { return v >= deadBefore+2 }, "2 more")
	s.waitMetric(`caddy_webhooks_deliveries_total{destination="orders",outcome="retry"}`, func(v float64) bool { return v >= 2 }, "at least 2")

	var page struct {
		DeadLetters []adminDeadLetter `json:"dead_letters"`
		NextCursor  string            `json:"next_cursor"`
	}
	s.callJSON(http.MethodGet, "/webhooks/dead?destination=orders&limit=1", "", http.StatusOK, &page)
	if len(page.DeadLetters) != 1 || page.NextCursor == "" || page.DeadLetters[0].Sequence != dead[0].Sequence {
		s.t.Errorf("first page of limit 1 = %+v, want the newest dead letter and a next cursor", page)
	}

	var replayed struct {
		Replayed int `json:"replayed"`
	}
	s.callJSON(http.MethodPost, "/webhooks/destinations/orders/replay", `{"dead_letters":true}`, http.StatusAccepted, &replayed)
	if replayed.Replayed != 2 {
		s.t.Fatalf("replayed %d, want 2", replayed.Replayed)
	}
	ids := []string{dead[0].EventID, dead[1].EventID}
	waitDeliveries(s.t, s.orders, ids, 3)
	time.Sleep(time.Second)
	for _, id := range ids {
		ds := byEventID(s.orders.all())[id]
		if len(ds) != 3 {
			s.t.Errorf("event %s received %d times, want 2 failed attempts and 1 replay", id, len(ds))
			continue
		}
		if !bytes.Equal(ds[2].Body, ds[0].Body) {
			s.t.Errorf("replayed body of %s differs from the original", id)
		}
		verifySignature(s.t, ds[2])
	}
	if d := s.destination("orders"); *d.DeadLetters != 0 {
		s.t.Errorf("dead letters after replay = %d, want 0", *d.DeadLetters)
	}
	s.callJSON(http.MethodPost, "/webhooks/destinations/orders/replay", `{"dead_letters":true}`, http.StatusAccepted, &replayed)
	if replayed.Replayed != 0 {
		s.t.Errorf("second replay sent %d, want 0", replayed.Replayed)
	}
	s.waitMetric(`caddy_webhooks_dead_letters_stored{destination="orders"}`, func(v float64) bool { return v == 0 }, "0")

	dead = s.deadLetters(2)
	var purged struct {
		Purged int `json:"purged"`
	}
	s.callJSON(http.MethodDelete, "/webhooks/dead/orders/"+dead[0].EventID, "", http.StatusOK, &purged)
	if purged.Purged != 1 {
		s.t.Errorf("purging one dead letter: purged %d, want 1", purged.Purged)
	}
	s.wantError(http.MethodDelete, "/webhooks/dead/orders/"+dead[0].EventID, "", http.StatusNotFound, "has no dead letter of event")
	s.callJSON(http.MethodDelete, "/webhooks/dead/orders", "", http.StatusOK, &purged)
	if purged.Purged != 1 {
		s.t.Errorf("purging orders: purged %d, want 1", purged.Purged)
	}
	s.wantError(http.MethodDelete, "/webhooks/dead/orders", "", http.StatusNotFound, "has no dead letters")
}

func testAdminResend(s *adminSite) {
	var latest adminEventPage
	s.callJSON(http.MethodGet, "/webhooks/events?limit=1&type=order.created", "", http.StatusOK, &latest)
	id := latest.Events[0].ID
	before := len(byEventID(s.orders.all())[id])

	var redelivered struct {
		Redelivered []struct {
			Destination string `json:"destination"`
			EventID     string `json:"event_id"`
		} `json:"redelivered"`
	}
	s.callJSON(http.MethodPost, "/webhooks/events/"+id+"/redeliver", `{"destination":"orders"}`, http.StatusAccepted, &redelivered)
	if len(redelivered.Redelivered) != 1 || redelivered.Redelivered[0].Destination != "orders" || redelivered.Redelivered[0].EventID != id {
		s.t.Errorf("redelivered = %+v, want orders and %s", redelivered, id)
	}
	waitDeliveries(s.t, s.orders, []string{id}, before+1)
	s.wantError(http.MethodPost, "/webhooks/events/"+id+"/redeliver", `{"destination":"flaky"}`, http.StatusBadRequest, `destination "flaky" does not receive events of type "order.created"`)
	s.wantError(http.MethodPost, "/webhooks/events/"+id+"/redeliver", `{"destination":"nobody"}`, http.StatusNotFound, `unknown destination "nobody"`)

	// Replay since resends exactly the events stored after the time.
	since := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	start := len(s.orders.all())
	s.emit("/orders", 3)
	waitFor(s.t, 20*time.Second, "3 new deliveries", func() error {
		if n := len(s.orders.all()) - start; n < 3 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	later := byEventID(s.orders.all()[start:])
	var replayed struct {
		Replayed int `json:"replayed"`
	}
	s.callJSON(http.MethodPost, "/webhooks/destinations/orders/replay", `{"since":"`+since.Format(time.RFC3339Nano)+`"}`, http.StatusAccepted, &replayed)
	if replayed.Replayed != 3 {
		s.t.Errorf("replay since sent %d events, want the 3 stored after it", replayed.Replayed)
	}
	waitFor(s.t, 20*time.Second, "3 replayed deliveries", func() error {
		if n := len(s.orders.all()) - start; n < 6 {
			return fmt.Errorf("%d deliveries since the 3 events", n)
		}
		return nil
	})
	time.Sleep(time.Second)
	resent := byEventID(s.orders.all()[start:])
	if len(resent) != len(later) {
		s.t.Errorf("replay since reached %d events, want exactly the %d later ones", len(resent), len(later))
	}
	for eventID, ds := range resent {
		if len(ds) != 2 || !bytes.Equal(ds[0].Body, ds[1].Body) {
			s.t.Errorf("event %s received %d times, want twice with the same body", eventID, len(ds))
		}
	}

	var test struct {
		EventID string `json:"event_id"`
		Type    string `json:"type"`
	}
	s.callJSON(http.MethodPost, "/webhooks/destinations/orders/test", "", http.StatusAccepted, &test)
	if test.Type != "webhooks.test" || test.EventID == "" {
		s.t.Fatalf("test = %+v, want an event id and type webhooks.test", test)
	}
	waitDeliveries(s.t, s.orders, []string{test.EventID}, 1)
	got := byEventID(s.orders.all())[test.EventID][0]
	verifySignature(s.t, got)
	if !strings.Contains(string(got.Body), `"type":"webhooks.test"`) {
		s.t.Errorf("test event body = %s, want type webhooks.test", got.Body)
	}
	if n := len(byEventID(s.flaky.all())[test.EventID]); n != 0 {
		s.t.Errorf("flaky received the test event %d times, want 0", n)
	}
	var ev adminEventSummary
	s.callJSON(http.MethodGet, "/webhooks/events/"+test.EventID, "", http.StatusOK, &ev)
	if ev.Type != "webhooks.test" {
		s.t.Errorf("test event type = %q, want webhooks.test", ev.Type)
	}
}

func testAdminEventTypes(s *adminSite) {
	type eventType struct {
		Type         string   `json:"type"`
		Description  string   `json:"description"`
		Sites        []string `json:"sites"`
		Rules        int      `json:"rules"`
		Destinations []string `json:"destinations"`
		Stored       uint64   `json:"stored"`
		Delivered    uint64   `json:"delivered"`
		DeadLetters  uint64   `json:"dead_letters"`
	}
	var catalogue struct {
		EventTypes []eventType `json:"event_types"`
	}
	// The workers add their delivery counts every five seconds.
	waitFor(s.t, 20*time.Second, "delivered counts", func() error {
		s.callJSON(http.MethodGet, "/webhooks/event-types", "", http.StatusOK, &catalogue)
		for _, et := range catalogue.EventTypes {
			if et.Type == "order.created" && et.Delivered >= et.Stored && et.Stored > 0 {
				return nil
			}
		}
		return fmt.Errorf("catalogue %+v", catalogue.EventTypes)
	})

	types := make([]string, len(catalogue.EventTypes))
	for i, et := range catalogue.EventTypes {
		types[i] = et.Type
	}
	// The app's own event types are listed whether or not it emitted them.
	want := []string{"audit.logged", "order.created",
		"webhooks.alert.dead_letters", "webhooks.alert.endpoint_disabled", "webhooks.alert.events_dropped",
		"webhooks.emitter.dropped", "webhooks.endpoint.disabled", "webhooks.event.dead_lettered"}
	if !slices.Equal(types, want) {
		s.t.Fatalf("event types = %v, want %v", types, want)
	}
	for _, et := range catalogue.EventTypes[2:] {
		if et.Description == "" || et.Rules != 0 {
			s.t.Errorf("own event type %+v, want a description and no rules", et)
		}
	}
	orders := catalogue.EventTypes[1]
	if orders.Description != "A customer placed an order" || orders.Rules != 1 || !slices.Equal(orders.Destinations, []string{"orders"}) {
		s.t.Errorf("order.created = %+v, want its description, one rule and destination orders", orders)
	}
	if !slices.Contains(orders.Sites, "127.0.0.1") {
		s.t.Errorf("sites of order.created = %v, want the site 127.0.0.1", orders.Sites)
	}
	// 5 + 50 + 2 + 2 + 3 events were emitted through the site.
	if orders.Stored != 62 || orders.DeadLetters != 0 {
		s.t.Errorf("order.created stored %d and has %d dead letters, want 62 and 0", orders.Stored, orders.DeadLetters)
	}
	if audit := catalogue.EventTypes[0]; audit.Stored != 51 || !slices.Equal(audit.Destinations, []string{"flaky"}) {
		s.t.Errorf("audit.logged = %+v, want 51 stored for flaky", audit)
	}
}

func testAdminReload(s *adminSite) {
	extra := newReceiver(s.t, nil)
	s.data["Extra"] = "endpoint extra " + extra.URL + " {\n\t\t\tevents order.*\n\t\t\tretry 1s\n\t\t\tallow_private\n\t\t}"
	s.caddy.load(renderConfig(s.t, adminConfig, s.data))

	waitFor(s.t, 20*time.Second, "the new destination in the admin API", func() error {
		status, data := s.call(http.MethodGet, "/webhooks/destinations/extra", "")
		if status != http.StatusOK {
			return fmt.Errorf("status %d: %s", status, data)
		}
		return nil
	})
	var test struct {
		EventID string `json:"event_id"`
	}
	s.callJSON(http.MethodPost, "/webhooks/destinations/extra/test", "", http.StatusAccepted, &test)
	waitDeliveries(s.t, extra, []string{test.EventID}, 1)
}

func testAdminBroker(s *adminSite) {
	var state struct {
		Mode          string `json:"mode"`
		Connected     bool   `json:"connected"`
		Status        string `json:"status"`
		Replicas      int    `json:"replicas"`
		PendingEvents *int   `json:"pending_events"`
	}
	s.callJSON(http.MethodGet, "/webhooks/broker", "", http.StatusOK, &state)
	if state.Mode != "embedded" || !state.Connected || state.Status != "CONNECTED" || state.Replicas != 1 {
		s.t.Errorf("broker state %+v, want a connected embedded broker with 1 replica", state)
	}
	if state.PendingEvents == nil {
		s.t.Error("broker state has no pending_events")
	}
	if status, data := s.call(http.MethodPost, "/webhooks/broker", ""); status != http.StatusMethodNotAllowed {
		s.t.Errorf("POST /webhooks/broker: status %d (%s), want 405", status, data)
	}
}
