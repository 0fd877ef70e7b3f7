package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cliConfig is the operator's setup: a site whose POST /orders emits
// order.created, and two endpoints that receive it, billing and crm, with a
// retry schedule short enough that a failing event is dead-lettered after
// about two seconds.
const cliConfig = `{
	admin {{.Admin}}
	persist_config off
	auto_https off
	grace_period 2s
	webhooks {
		endpoint billing {{.Billing}} {
			events order.*
			secret ` + testSecret + `
			timeout 2s
			retry 1s 1s
			allow_private
		}
		endpoint crm {{.CRM}} {
			events order.*
			secret ` + testSecret + `
			timeout 2s
			retry 1s 1s
			allow_private
		}
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
	}
	reverse_proxy 127.0.0.1:{{.APIPort}}
}

http://127.0.0.1:{{.APIPort}} {
	bind 127.0.0.1
	header Content-Type application/json
	respond /orders {http.request.body} 201
}
`

// crmFailure is the body that the crm receiver sends with its 500 responses
// until the test fixes it.
const crmFailure = `{"error":"database connection refused: orders-db is down"}`

// failingReceiver is a webhook receiver on 127.0.0.1 that responds 500 with
// crmFailure while fixed is false, and 204 while it is true. The harness's
// receiver sends no response body, and the attempt log under test stores
// that body.
type failingReceiver struct {
	fixed      atomic.Bool
	mu         sync.Mutex
	deliveries []delivery
	URL        string
}

func newFailingReceiver(t *testing.T) *failingReceiver {
	t.Helper()
	rc := new(failingReceiver)
	server := httptest.NewServer(http.HandlerFunc(rc.serveHTTP))
	t.Cleanup(server.Close)
	rc.URL = server.URL + "/hooks"
	return rc
}

func (rc *failingReceiver) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivery{Header: r.Header.Clone(), Body: body, At: time.Now(), Status: http.StatusNoContent}
	if !rc.fixed.Load() {
		d.Status = http.StatusInternalServerError
	}
	rc.mu.Lock()
	rc.deliveries = append(rc.deliveries, d)
	rc.mu.Unlock()

	if d.Status == http.StatusNoContent {
		w.WriteHeader(d.Status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(d.Status)
	_, _ = io.WriteString(w, crmFailure)
}

func (rc *failingReceiver) all() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.deliveries)
}

// The shapes of the admin API's responses, decoded strictly so that a field
// outside the documented contract fails the test.
type (
	contractDestination struct {
		Name         string               `json:"name"`
		Kind         string               `json:"kind"`
		URL          string               `json:"url"`
		Events       []string             `json:"events"`
		State        string               `json:"state"`
		StateReason  string               `json:"state_reason"`
		StateSince   string               `json:"state_since"`
		Pending      *uint64              `json:"pending"`
		FailingSince string               `json:"failing_since"`
		LastAttempt  *contractLastAttempt `json:"last_attempt"`
		LastSuccess  string               `json:"last_success"`
		DeadLetters  *uint64              `json:"dead_letters"`
	}
	contractLastAttempt struct {
		Time       string `json:"time"`
		Outcome    string `json:"outcome"`
		StatusCode int    `json:"status_code"`
		ErrorClass string `json:"error_class"`
	}
	contractDestinationList struct {
		Destinations []contractDestination `json:"destinations"`
	}
	contractEventSummary struct {
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
	contractEventPage struct {
		Events     []contractEventSummary `json:"events"`
		NextCursor string                 `json:"next_cursor"`
	}
	contractAttempt struct {
		EventID        string  `json:"event_id"`
		EventType      string  `json:"event_type"`
		Destination    string  `json:"destination"`
		StreamSequence uint64  `json:"stream_sequence"`
		Attempt        int     `json:"attempt"`
		Time           string  `json:"time"`
		Outcome        string  `json:"outcome"`
		StatusCode     int     `json:"status_code"`
		ErrorClass     string  `json:"error_class"`
		Error          string  `json:"error"`
		DurationMS     float64 `json:"duration_ms"`
		Response       string  `json:"response"`
		NextAttempt    string  `json:"next_attempt"`
	}
	contractEvent struct {
		ID             string                       `json:"id"`
		Type           string                       `json:"type"`
		Time           string                       `json:"time"`
		StreamSequence uint64                       `json:"stream_sequence"`
		Payload        json.RawMessage              `json:"payload"`
		PayloadBase64  string                       `json:"payload_base64"`
		Attempts       map[string][]contractAttempt `json:"attempts"`
	}
	contractDeadLetter struct {
		EventID        string          `json:"event_id"`
		EventType      string          `json:"event_type"`
		Destination    string          `json:"destination"`
		StreamSequence uint64          `json:"stream_sequence"`
		Attempts       int             `json:"attempts"`
		StatusCode     int             `json:"status_code"`
		ErrorClass     string          `json:"error_class"`
		Error          string          `json:"error"`
		Time           string          `json:"time"`
		Payload        json.RawMessage `json:"payload"`
		PayloadBase64  string          `json:"payload_base64"`
		Sequence       uint64          `json:"sequence"`
	}
	contractDeadPage struct {
		DeadLetters []contractDeadLetter `json:"dead_letters"`
		NextCursor  string               `json:"next_cursor"`
	}
	contractEventType struct {
		Type         string   `json:"type"`
		Description  string   `json:"description"`
		Sites        []string `json:"sites"`
		Rules        int      `json:"rules"`
		Destinations []string `json:"destinations"`
		Stored       uint64   `json:"stored"`
		Delivered    uint64   `json:"delivered"`
		DeadLetters  uint64   `json:"dead_letters"`
	}
	contractEventTypes struct {
		EventTypes []contractEventType `json:"event_types"`
	}
	contractTest struct {
		EventID string `json:"event_id"`
		Type    string `json:"type"`
	}
	contractRedelivered struct {
		Redelivered []struct {
			Destination string `json:"destination"`
			EventID     string `json:"event_id"`
		} `json:"redelivered"`
	}
)

// cliResult is the outcome of one run of the Caddy binary.
type cliResult struct {
	stdout, stderr string
	exitCode       int
}

// runCaddyCLI runs the built Caddy binary with args and stdin.
func runCaddyCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyPath(t), args...)
	// A binary built with -race sleeps for GORACE's atexit_sleep_ms, one
	// second by default, before it exits. This test runs it many times.
	cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.exitCode = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running caddy %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// operator runs `caddy webhooks` subcommands against one admin API.
type operator struct {
	t     *testing.T
	admin string
}

// try runs `caddy webhooks ARGS --address ADMIN`.
func (o operator) try(args ...string) cliResult {
	o.t.Helper()
	return runCaddyCLI(o.t, "", append(append([]string{"webhooks"}, args...), "--address", o.admin)...)
}

// run runs a command that must succeed and returns its standard output.
func (o operator) run(args ...string) string {
	o.t.Helper()
	res := o.try(args...)
	if res.exitCode != 0 {
		o.t.Fatalf("caddy webhooks %s: exit status %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.exitCode, res.stdout, res.stderr)
	}
	return res.stdout
}

// runJSON runs the command with --json and decodes its output into out,
// rejecting fields that out does not have.
func (o operator) runJSON(out any, args ...string) {
	o.t.Helper()
	stdout := o.run(append(args, "--json")...)
	decoder := json.NewDecoder(strings.NewReader(stdout))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(out); err != nil {
		o.t.Fatalf("caddy webhooks %s --json: decoding into %T: %v\n%s", strings.Join(args, " "), out, err, stdout)
	}
}

// fail runs a command that must fail and returns its standard error.
func (o operator) fail(args ...string) string {
	o.t.Helper()
	res := o.try(args...)
	if res.exitCode == 0 {
		o.t.Fatalf("caddy webhooks %s: succeeded, expected an error\n%s", strings.Join(args, " "), res.stdout)
	}
	return res.stderr
}

// tableRow returns the fields of the first line of a table whose first
// field is key, or nil.
func tableRow(table, key string) []string {
	for line := range strings.Lines(table) {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == key {
			return fields
		}
	}
	return nil
}

// detailField returns the value of the line that starts with key in the
// one-object output of a command, such as "state" in `destinations NAME`.
func detailField(text, key string) string {
	for line := range strings.Lines(text) {
		if value, ok := strings.CutPrefix(line, key+"  "); ok {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// checkContains reports each part that text lacks. name says where text
// comes from.
func checkContains(t *testing.T, name, text string, parts ...string) {
	t.Helper()
	for _, part := range parts {
		if !strings.Contains(text, part) {
			t.Errorf("%s lacks %q:\n%s", name, part, text)
		}
	}
}

// sameJSON reports whether two JSON documents are equal after compaction.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// TestOperatorStory walks the story of an operator paged for failing
// webhooks, with nothing but `caddy webhooks`. The operator finds the failing
// destination, reads its receiver's response, fixes the receiver, replays
// the dead letters and confirms their delivery. Then the operator verifies a
// delivery's signature and deletes dead letters instead of replaying them.
func TestOperatorStory(t *testing.T) {
	billing := newReceiver(t, nil)
	crm := newFailingReceiver(t)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port, apiPort := freePort(t), freePort(t)
	startCaddy(t, renderConfig(t, cliConfig, map[string]any{
		"Admin": admin, "Billing": billing.URL, "CRM": crm.URL, "Port": port, "APIPort": apiPort,
	}), "", admin)
	op := operator{t: t, admin: admin}

	for _, item := range []string{"book", "pen"} {
		if got := send(t, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/orders", port), `{"item":"`+item+`"}`); got != http.StatusCreated {
			t.Fatalf("POST /orders: status %d, expected 201", got)
		}
	}
	bodies := make(map[string][]byte)
	for _, d := range billing.waitCount(t, 20*time.Second, 2) {
		bodies[d.Header.Get("webhook-id")] = d.Body
	}
	ids := slices.Sorted(maps.Keys(bodies))
	if len(ids) != 2 {
		t.Fatalf("billing got deliveries of %d events, expected 2", len(ids))
	}

	// Both events fail at crm three times, the first attempt and two retries.
	var dead contractDeadPage
	waitFor(t, 20*time.Second, "2 dead letters of crm", func() error {
		var page contractDeadPage
		op.runJSON(&page, "dead", "--destination", "crm")
		if n := len(page.DeadLetters); n != 2 {
			return fmt.Errorf("%d so far", n)
		}
		dead = page
		return nil
	})
	for _, d := range dead.DeadLetters {
		if !slices.Contains(ids, d.EventID) || d.Destination != "crm" || d.EventType != "order.created" {
			t.Errorf("dead letter %+v, expected crm, order.created and one of %v", d, ids)
		}
		if d.Attempts != 3 || d.StatusCode != 500 || d.ErrorClass != "status" || d.Sequence == 0 || d.StreamSequence == 0 {
			t.Errorf("dead letter of %s: attempts %d, status %d, class %q, sequence %d, stream sequence %d; expected 3, 500, status and nonzero sequences",
				d.EventID, d.Attempts, d.StatusCode, d.ErrorClass, d.Sequence, d.StreamSequence)
		}
		if !sameJSON(d.Payload, bodies[d.EventID]) {
			t.Errorf("dead letter of %s: payload %s, expected the body billing got: %s", d.EventID, d.Payload, bodies[d.EventID])
		}
	}
	checkContains(t, "dead table", op.run("dead"), ids[0], ids[1], "status: receiver responded with 500 Internal Server Error")

	checkDestinationsFailing(t, op, billing.URL, crm.URL)
	newestFirst := checkEventsFailing(t, op, ids, bodies)
	checkEventTypes(t, op, 2, 2, -1)

	// The operator fixes the receiver, checks it with a test event, and
	// replays the dead letters.
	crm.fixed.Store(true)
	testID := checkTestEvent(t, op)
	checkContains(t, "replay output", op.run("replay", "crm", "--dead"), "replaying 2 dead letters to destination crm")
	waitFor(t, 20*time.Second, "crm to accept both events", func() error {
		accepted := 0
		for _, d := range crm.all() {
			if d.Status == http.StatusNoContent && slices.Contains(ids, d.Header.Get("webhook-id")) {
				accepted++
			}
		}
		if accepted < 2 {
			return fmt.Errorf("%d accepted so far", accepted)
		}
		return nil
	})
	checkDeliveredAfterFix(t, op, newestFirst, testID)

	// A redelivery of one event goes to crm alone.
	var redelivered contractRedelivered
	op.runJSON(&redelivered, "redeliver", ids[0], "--destination", "crm")
	if len(redelivered.Redelivered) != 1 || redelivered.Redelivered[0].Destination != "crm" || redelivered.Redelivered[0].EventID != ids[0] {
		t.Errorf("redeliver --json = %+v, expected crm and %s", redelivered, ids[0])
	}
	var last delivery
	waitFor(t, 20*time.Second, "the redelivery at crm", func() error {
		var accepted []delivery
		for _, d := range crm.all() {
			if d.Status == http.StatusNoContent && d.Header.Get("webhook-id") == ids[0] {
				accepted = append(accepted, d)
			}
		}
		if len(accepted) < 2 {
			return fmt.Errorf("%d accepted deliveries of %s so far", len(accepted), ids[0])
		}
		last = accepted[len(accepted)-1]
		return nil
	})
	if !sameJSON(last.Body, bodies[ids[0]]) {
		t.Errorf("redelivered body %s differs from the original %s", last.Body, bodies[ids[0]])
	}

	checkVerify(t, last)
	// Successful deliveries: 2 at billing, 2 replayed and 1 redelivered at crm.
	checkEventTypes(t, op, 2, 0, 5)
	checkPauseResume(t, op)
	checkCLIErrors(t, op)

	// crm fails again, and the operator deletes the new dead letters
	// instead of replaying them.
	crm.fixed.Store(false)
	checkPurge(t, op, port)
}

// checkDestinationsFailing checks what `destinations` shows while crm's
// events are dead letters and billing's were delivered.
func checkDestinationsFailing(t *testing.T, op operator, billingURL, crmURL string) {
	t.Helper()
	table := op.run("destinations")
	crmRow, billingRow := tableRow(table, "crm"), tableRow(table, "billing")
	if len(crmRow) < 5 || !slices.Equal(crmRow[:5], []string{"crm", "webhook", "enabled", "0", "2"}) {
		t.Errorf("destinations: crm row %q, expected crm webhook enabled, 0 pending, 2 dead\n%s", crmRow, table)
	}
	if len(billingRow) < 5 || !slices.Equal(billingRow[:5], []string{"billing", "webhook", "enabled", "0", "0"}) {
		t.Errorf("destinations: billing row %q, expected billing webhook enabled, 0 pending, 0 dead\n%s", billingRow, table)
	}
	checkContains(t, "destinations table", table, "dead_letter 500 status", "success 204", crmURL, billingURL)

	var list contractDestinationList
	op.runJSON(&list, "destinations")
	var names []string
	for _, d := range list.Destinations {
		names = append(names, d.Name)
	}
	if !slices.Equal(names, []string{"billing", "crm"}) {
		t.Fatalf("destinations --json: names %v, expected billing and crm in order", names)
	}
	c := list.Destinations[1]
	if c.Kind != "webhook" || c.URL != crmURL || !slices.Equal(c.Events, []string{"order.*"}) || c.State != "enabled" {
		t.Errorf("crm: kind %q, url %q, events %v, state %q; expected webhook, %s, [order.*], enabled", c.Kind, c.URL, c.Events, c.State, crmURL)
	}
	if c.DeadLetters == nil || *c.DeadLetters != 2 || c.Pending == nil || *c.Pending != 0 {
		t.Errorf("crm: dead_letters %v, pending %v; expected 2 and 0", c.DeadLetters, c.Pending)
	}
	if a := c.LastAttempt; a == nil || a.Outcome != "dead_letter" || a.StatusCode != 500 || a.ErrorClass != "status" || a.Time == "" {
		t.Errorf("crm: last_attempt %+v, expected a dead_letter with status 500 and class status", a)
	}
	if c.LastSuccess != "" {
		t.Errorf("crm: last_success %q, expected none", c.LastSuccess)
	}
	if b := list.Destinations[0]; b.LastAttempt == nil || b.LastAttempt.Outcome != "success" || b.LastAttempt.ErrorClass != "" || b.LastSuccess == "" {
		t.Errorf("billing: last_attempt %+v, last_success %q; expected a success without error class", b.LastAttempt, b.LastSuccess)
	}

	detail := op.run("destinations", "crm")
	for key, want := range map[string]string{"dead letters": "2", "last success": "-", "state": "enabled", "url": crmURL} {
		if got := detailField(detail, key); got != want {
			t.Errorf("destinations crm: %s %q, expected %q\n%s", key, got, want, detail)
		}
	}
	if got := detailField(detail, "last attempt"); !strings.HasSuffix(got, " dead_letter 500 status") {
		t.Errorf("destinations crm: last attempt %q, expected a dead_letter with 500 and class status", got)
	}
}

// checkEventsFailing checks `events` and `event` while both events are dead
// letters at crm: the list filtered to them, and one event's attempt log
// with the receiver's response. It returns the event ids newest first.
func checkEventsFailing(t *testing.T, op operator, ids []string, bodies map[string][]byte) []string {
	t.Helper()
	table := op.run("events", "--destination", "crm", "--outcome", "dead_letter", "--since", "10m")
	for _, id := range ids {
		row := tableRow(table, id)
		if row == nil || !slices.Contains(row, "billing=success(1)") || !slices.Contains(row, "crm=dead_letter(3)") {
			t.Errorf("events: row of %s is %q, expected billing=success(1) crm=dead_letter(3)\n%s", id, row, table)
		}
	}

	var page contractEventPage
	op.runJSON(&page, "events", "--destination", "crm", "--outcome", "dead_letter")
	if len(page.Events) != 2 || page.NextCursor != "" {
		t.Fatalf("events --json: %d events, next_cursor %q; expected 2 and none", len(page.Events), page.NextCursor)
	}
	if page.Events[0].StreamSequence <= page.Events[1].StreamSequence {
		t.Errorf("events --json: stream sequences %d, %d; expected newest first", page.Events[0].StreamSequence, page.Events[1].StreamSequence)
	}
	for _, ev := range page.Events {
		if ev.Type != "order.created" || ev.Size != len(bodies[ev.ID]) || ev.Time == "" {
			t.Errorf("event %s: type %q, size %d, time %q; expected order.created, %d bytes and a time", ev.ID, ev.Type, ev.Size, ev.Time, len(bodies[ev.ID]))
		}
		if o := ev.Destinations["crm"]; o.Outcome != "dead_letter" || o.Attempts != 3 {
			t.Errorf("event %s at crm: %+v, expected dead_letter after 3 attempts", ev.ID, o)
		}
		if o := ev.Destinations["billing"]; o.Outcome != "success" || o.Attempts != 1 {
			t.Errorf("event %s at billing: %+v, expected success after 1 attempt", ev.ID, o)
		}
	}

	id := ids[0]
	detail := op.run("event", id)
	if got := detailField(detail, "id"); got != id {
		t.Errorf("event table: id %q, expected %s\n%s", got, id, detail)
	}
	checkContains(t, "event table", detail, "response bodies", crmFailure)
	_, attemptTable, _ := strings.Cut(detail, "attempts:")
	if row := tableRow(attemptTable, "crm"); len(row) < 4 || row[1] != "1" || row[4] != "retry" {
		t.Errorf("event table: first crm attempt row %q, expected attempt 1 with outcome retry\n%s", row, detail)
	}

	var ev contractEvent
	op.runJSON(&ev, "event", id)
	if ev.ID != id || ev.Type != "order.created" || ev.StreamSequence == 0 || ev.PayloadBase64 != "" || !sameJSON(ev.Payload, bodies[id]) {
		t.Errorf("event --json: id %q, type %q, sequence %d, payload %s; expected %s, order.created, the body billing got: %s",
			ev.ID, ev.Type, ev.StreamSequence, ev.Payload, id, bodies[id])
	}
	attempts := ev.Attempts["crm"]
	if len(attempts) != 3 {
		t.Fatalf("event --json: %d crm attempts, expected 3: %+v", len(attempts), attempts)
	}
	for i, a := range attempts {
		outcome, next := "retry", true
		if i == 2 {
			outcome, next = "dead_letter", false
		}
		if a.Attempt != i+1 || a.Outcome != outcome || a.StatusCode != 500 || a.ErrorClass != "status" || a.Response != crmFailure {
			t.Errorf("crm attempt %d: %+v, expected attempt %d, %s, 500, status and the receiver's body", i+1, a, i+1, outcome)
		}
		if a.EventID != id || a.Destination != "crm" || a.StreamSequence != ev.StreamSequence || (a.NextAttempt != "") != next {
			t.Errorf("crm attempt %d: event %q, destination %q, stream sequence %d, next_attempt %q; expected %s, crm, %d, next attempt set: %v",
				i+1, a.EventID, a.Destination, a.StreamSequence, a.NextAttempt, id, ev.StreamSequence, next)
		}
	}
	if b := ev.Attempts["billing"]; len(b) != 1 || b[0].Outcome != "success" || b[0].StatusCode != 204 {
		t.Errorf("event --json: billing attempts %+v, expected one success with 204", b)
	}
	return []string{page.Events[0].ID, page.Events[1].ID}
}

// checkEventTypes checks the catalogue entry of order.created. A negative
// delivered skips that count, which the workers flush every few seconds.
// The catalogue also lists the types of the app's own events, such as
// webhooks.event.dead_lettered, which this test leaves to the app's tests.
func checkEventTypes(t *testing.T, op operator, stored, deadLetters uint64, delivered int) {
	t.Helper()
	var et contractEventType
	waitFor(t, 20*time.Second, fmt.Sprintf("%d delivered order.created events in the catalogue", delivered), func() error {
		var catalogue contractEventTypes
		op.runJSON(&catalogue, "event-types")
		i := slices.IndexFunc(catalogue.EventTypes, func(et contractEventType) bool { return et.Type == "order.created" })
		if i < 0 {
			return fmt.Errorf("no order.created among %+v", catalogue.EventTypes)
		}
		if delivered >= 0 && catalogue.EventTypes[i].Delivered < uint64(delivered) {
			return fmt.Errorf("%d delivered so far", catalogue.EventTypes[i].Delivered)
		}
		et = catalogue.EventTypes[i]
		return nil
	})
	if et.Type != "order.created" || et.Description != "A customer placed an order" || et.Rules != 1 ||
		!slices.Equal(et.Sites, []string{"127.0.0.1"}) || !slices.Equal(et.Destinations, []string{"billing", "crm"}) {
		t.Errorf("event-types --json: %+v, expected order.created with its description, 1 rule, site 127.0.0.1, billing and crm", et)
	}
	if et.Stored != stored || et.DeadLetters != deadLetters || (delivered >= 0 && et.Delivered != uint64(delivered)) {
		t.Errorf("event-types --json: stored %d, dead_letters %d, delivered %d; expected %d, %d, %d (negative: not checked)",
			et.Stored, et.DeadLetters, et.Delivered, stored, deadLetters, delivered)
	}

	table := op.run("event-types")
	row := tableRow(table, "order.created")
	if len(row) < 3 || row[1] != "1" || row[2] != "127.0.0.1" {
		t.Errorf("event-types: row %q, expected order.created with 1 rule at 127.0.0.1\n%s", row, table)
	}
	checkContains(t, "event-types table", table, "billing, crm", "A customer placed an order")
}

var testEventLine = regexp.MustCompile(`queued test event (\S+) \(webhooks\.test\) for destination crm`)

// checkTestEvent sends a test event to crm and waits until crm accepted it.
func checkTestEvent(t *testing.T, op operator) string {
	t.Helper()
	out := op.run("test", "crm")
	match := testEventLine.FindStringSubmatch(out)
	if match == nil {
		t.Fatalf("test crm printed %q, expected the queued test event's id", out)
	}
	id := match[1]
	checkContains(t, "test output", out, "caddy webhooks event "+id)

	var ev contractEvent
	waitFor(t, 20*time.Second, "the test event's success at crm", func() error {
		var latest contractEvent
		op.runJSON(&latest, "event", id)
		attempts := latest.Attempts["crm"]
		if len(attempts) == 0 || attempts[len(attempts)-1].Outcome != "success" {
			return fmt.Errorf("crm attempts so far: %+v", attempts)
		}
		ev = latest
		return nil
	})
	if ev.Type != "webhooks.test" || len(ev.Attempts) != 1 {
		t.Errorf("test event: type %q, attempts at %d destinations; expected webhooks.test at crm alone", ev.Type, len(ev.Attempts))
	}

	var sent contractTest
	op.runJSON(&sent, "test", "billing")
	if sent.Type != "webhooks.test" || sent.EventID == "" || sent.EventID == id {
		t.Errorf("test billing --json: %+v, expected a new event id of type webhooks.test", sent)
	}
	return id
}

// checkDeliveredAfterFix checks that the dead letters are gone and that
// every view shows crm delivering again. ids are the events, newest first.
func checkDeliveredAfterFix(t *testing.T, op operator, ids []string, testID string) {
	t.Helper()
	var dead contractDeadPage
	op.runJSON(&dead, "dead")
	if len(dead.DeadLetters) != 0 {
		t.Errorf("dead --json after the replay: %+v, expected none", dead.DeadLetters)
	}

	var d contractDestination
	waitFor(t, 20*time.Second, "crm's last attempt to be a success", func() error {
		var latest contractDestination
		op.runJSON(&latest, "destinations", "crm")
		if latest.LastAttempt == nil || latest.LastAttempt.Outcome != "success" {
			return fmt.Errorf("last attempt %+v", latest.LastAttempt)
		}
		d = latest
		return nil
	})
	if d.DeadLetters == nil || *d.DeadLetters != 0 || d.LastSuccess == "" || d.LastAttempt.StatusCode != 204 {
		t.Errorf("crm after the replay: dead_letters %v, last_success %q, last attempt %+v; expected 0, a time, 204", d.DeadLetters, d.LastSuccess, d.LastAttempt)
	}

	var failed contractEventPage
	op.runJSON(&failed, "events", "--destination", "crm", "--outcome", "dead_letter")
	if len(failed.Events) != 0 {
		t.Errorf("events --outcome dead_letter after the replay: %d events, expected none", len(failed.Events))
	}
	var delivered contractEventPage
	op.runJSON(&delivered, "events", "--destination", "crm", "--outcome", "success", "--limit", "1", "--all")
	var got []string
	for _, ev := range delivered.Events {
		got = append(got, ev.ID)
		if o := ev.Destinations["crm"]; ev.ID != testID && (o.Outcome != "success" || o.Attempts != 4) {
			t.Errorf("event %s at crm: %+v, expected success after 4 attempts, the last of them the replayed copy's", ev.ID, o)
		}
	}
	if want := []string{testID, ids[0], ids[1]}; !slices.Equal(got, want) {
		t.Errorf("events --outcome success --limit 1 --all: %v, expected %v, newest first", got, want)
	}

	detail := op.run("event", ids[0])
	checkContains(t, "event table after the replay", detail, "1 (copy)")
}

// checkVerify runs `caddy webhooks verify` on a delivery as crm received
// it, from a file and from standard input, and on a changed body.
func checkVerify(t *testing.T, d delivery) {
	t.Helper()
	body := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(body, d.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"webhooks", "verify", "--secret", testSecret,
		"--id", d.Header.Get("webhook-id"),
		"--timestamp", d.Header.Get("webhook-timestamp"),
		"--signature", d.Header.Get("webhook-signature")}

	res := runCaddyCLI(t, "", append(args, "--tolerance", "5m", body)...)
	if res.exitCode != 0 {
		t.Fatalf("verify: exit status %d\n%s", res.exitCode, res.stderr)
	}
	checkContains(t, "verify output", res.stdout, "signature 1 of 1 (v1) matches --secret 1", "within --tolerance 5m0s")

	if res := runCaddyCLI(t, string(d.Body), append(args, "-")...); res.exitCode != 0 || !strings.Contains(res.stdout, "matches --secret 1") {
		t.Errorf("verify from standard input: exit status %d, output %q, expected a match\n%s", res.exitCode, res.stdout, res.stderr)
	}

	res = runCaddyCLI(t, string(d.Body)+"\n", append(args, "-")...)
	if res.exitCode == 0 {
		t.Fatalf("verify of a changed body succeeded:\n%s", res.stdout)
	}
	checkContains(t, "verify error", res.stderr, "no signature matches: checked 1 v1 signature against 1 secret", "ends with a line break")
}

// checkPauseResume pauses and resumes billing.
func checkPauseResume(t *testing.T, op operator) {
	t.Helper()
	paused := op.run("pause", "billing")
	if state := detailField(paused, "state"); !strings.HasPrefix(state, "paused (paused through the admin API) since ") {
		t.Errorf("pause billing: state %q, expected paused through the admin API\n%s", state, paused)
	}
	var d contractDestination
	op.runJSON(&d, "pause", "billing")
	if d.Name != "billing" || d.State != "paused" || d.StateReason != "paused through the admin API" || d.StateSince == "" {
		t.Errorf("pause billing --json: %+v, expected billing paused through the admin API", d)
	}
	var resumed contractDestination
	op.runJSON(&resumed, "resume", "billing")
	if resumed.State != "enabled" {
		t.Errorf("resume billing --json: state %q, expected enabled", resumed.State)
	}
}

// checkPurge sends two orders that crm dead-letters and deletes their dead
// letters, one by event id and then the rest of crm's.
func checkPurge(t *testing.T, op operator, port int) {
	t.Helper()
	for range 2 {
		if got := send(t, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/orders", port), `{"item":"cup"}`); got != http.StatusCreated {
			t.Fatalf("POST /orders: status %d, expected 201", got)
		}
	}
	var dead contractDeadPage
	waitFor(t, 20*time.Second, "2 new dead letters of crm", func() error {
		var page contractDeadPage
		op.runJSON(&page, "dead", "--destination", "crm")
		if n := len(page.DeadLetters); n != 2 {
			return fmt.Errorf("%d so far", n)
		}
		dead = page
		return nil
	})

	id := dead.DeadLetters[0].EventID
	checkContains(t, "purge-dead crm ID", op.run("purge-dead", "crm", id), "deleted 1 dead letter of destination crm")
	var purged struct {
		Purged int `json:"purged"`
	}
	op.runJSON(&purged, "purge-dead", "crm")
	if purged.Purged != 1 {
		t.Errorf("purge-dead crm --json: purged %d, expected the 1 dead letter left", purged.Purged)
	}
	checkContains(t, "purge-dead of a purged event", op.fail("purge-dead", "crm", id),
		fmt.Sprintf(`destination "crm" has no dead letter of event %q`, id), "(HTTP 404)")

	// The attempt log keeps the outcome of the purged events.
	var page contractEventPage
	op.runJSON(&page, "events", "--destination", "crm", "--outcome", "dead_letter")
	var listed []string
	for _, ev := range page.Events {
		listed = append(listed, ev.ID)
	}
	for _, d := range dead.DeadLetters {
		if !slices.Contains(listed, d.EventID) {
			t.Errorf("events --outcome dead_letter after the purge: %v, expected purged event %s among them", listed, d.EventID)
		}
	}
}

// checkCLIErrors checks that the admin API's errors reach the operator with
// their message, status and exit status 1.
func checkCLIErrors(t *testing.T, op operator) {
	t.Helper()
	checkContains(t, "destinations nope", op.fail("destinations", "nope"),
		`Error: unknown destination "nope": GET /webhooks/destinations lists the configured ones (HTTP 404)`)
	checkContains(t, "purge-dead crm", op.fail("purge-dead", "crm"),
		`destination "crm" has no dead letters`, "(HTTP 404)")
	checkContains(t, "events --outcome failed", op.fail("events", "--outcome", "failed"),
		`invalid outcome "failed"`, "(HTTP 400)")
	checkContains(t, "redeliver of an unknown event", op.fail("redeliver", "01JE7XK9Q4M5T2V8B6N3C1D0FZ"),
		`unknown event "01JE7XK9Q4M5T2V8B6N3C1D0FZ"`, "(HTTP 404)")

	res := runCaddyCLI(t, "", "webhooks", "destinations", "--address", "http://"+op.admin)
	if res.exitCode == 0 {
		t.Fatalf("--address with http:// succeeded, expected an error")
	}
	checkContains(t, "--address http://", res.stderr, `invalid admin API address "http://`+op.admin+`"`)
}
