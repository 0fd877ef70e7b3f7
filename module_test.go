package webhooks

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/coder/websocket"
	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-webhooks/caddy-webhooks/capture"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// testObserved is the time the test handlers use as the observation time.
var testObserved = time.Date(2026, 12, 4, 19, 20, 0, 123_000_000, time.UTC)

// fakeSink collects emitted events. Handlers served by an httptest.Server
// emit from the server's goroutines, so access is locked.
type fakeSink struct {
	mu       sync.Mutex
	events   []*emitter.Event
	observed atomic.Int64 // observations started and not ended
}

func (s *fakeSink) observationStarted() { s.observed.Add(1) }
func (s *fakeSink) observationEnded()   { s.observed.Add(-1) }

func (s *fakeSink) Emit(ev *emitter.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
}

func (s *fakeSink) list() []*emitter.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*emitter.Event(nil), s.events...)
}

// waitForEvents polls the sink until it holds n events or the deadline
// passes.
func (s *fakeSink) waitForEvents(t *testing.T, n int) []*emitter.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		events := s.list()
		if len(events) >= n {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d events after 10s, want %d", len(events), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newTestHandler builds a handler from its JSON config and provisions its
// rules with a fake sink in place of the webhooks app, which a unit test
// cannot reach through caddy.Context.App.
func newTestHandler(t *testing.T, config string) (*Handler, *fakeSink) {
	t.Helper()
	h := new(Handler)
	if err := json.Unmarshal([]byte(config), h); err != nil {
		t.Fatalf("decoding handler config: %v", err)
	}

	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.provisionRules(ctx); err != nil {
		t.Fatalf("provisioning rules: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("validating handler: %v", err)
	}

	sink := new(fakeSink)
	h.sink = sink
	h.logger = zap.NewNop()
	h.now = func() time.Time { return testObserved }
	return h, sink
}

// withReplacer returns r with a Caddy replacer in its context, as Caddy's
// server sets one up before any handler runs.
func withReplacer(r *http.Request) *http.Request {
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	return r.WithContext(ctx)
}

// serve runs one request through the handler and returns the recorded
// response and the handler's error.
func serve(h *Handler, r *http.Request, next caddyhttp.HandlerFunc) (*httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, withReplacer(r), next)
	return w, err
}

// asServer wraps the handler in an http.Handler for httptest.Server, as
// Caddy's server does: with a replacer, and with errors written as their
// status.
func asServer(h *Handler, next caddyhttp.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, withReplacer(r), next); err != nil {
			status := http.StatusInternalServerError
			if he, ok := err.(caddyhttp.HandlerError); ok && he.StatusCode != 0 {
				status = he.StatusCode
			}
			w.WriteHeader(status)
		}
	})
}

func respond(status int, body string) caddyhttp.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if body == "" {
			return nil
		}
		_, err := io.WriteString(w, body)
		return err
	}
}

const ordersConfig = `{"rules": [{
	"event": "order.created",
	"match": [{"method": ["POST"], "path": ["/orders"]}],
	"response": {"status_code": [201]}
}]}`

func TestServeHTTPEmitsEnvelope(t *testing.T) {
	h, sink := newTestHandler(t, ordersConfig)

	r := httptest.NewRequest("POST", "http://api.example.com/orders", strings.NewReader(`{"item":"book"}`))
	w, err := serve(h, r, respond(201, `{"id": 42}`))
	if err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	if w.Code != 201 || w.Body.String() != `{"id": 42}` {
		t.Errorf("client got %d %q, want the response unchanged", w.Code, w.Body.String())
	}

	events := sink.list()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	ev := events[0]
	if ev.Type != "order.created" {
		t.Errorf("Type = %q, want order.created", ev.Type)
	}
	if _, err := ulid.ParseStrict(ev.ID); err != nil {
		t.Errorf("ID %q is not a ULID: %v", ev.ID, err)
	}
	if !ev.Observed.Equal(testObserved) {
		t.Errorf("Observed = %v, want %v", ev.Observed, testObserved)
	}
	want := `{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z",` +
		`"data":{"request":{"method":"POST","host":"api.example.com","path":"/orders","query":{}},` +
		`"response":{"status":201,"body":{"id":42}}}}`
	if string(ev.Payload) != want {
		t.Errorf("payload:\n got %s\nwant %s", ev.Payload, want)
	}
}

func TestServeHTTPRuleMatching(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		status     int
		wantEvents int
	}{
		{"matching call", "POST", "http://api.example.com/orders", 201, 1},
		{"other method", "GET", "http://api.example.com/orders", 201, 0},
		{"other path", "POST", "http://api.example.com/invoices", 201, 0},
		{"path case folded as by Caddy", "POST", "http://api.example.com/Orders", 201, 1},
		{"client error", "POST", "http://api.example.com/orders", 400, 0},
		{"other success status", "POST", "http://api.example.com/orders", 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, sink := newTestHandler(t, ordersConfig)
			r := httptest.NewRequest(tt.method, tt.target, nil)
			if _, err := serve(h, r, respond(tt.status, `{}`)); err != nil {
				t.Fatalf("ServeHTTP: %v", err)
			}
			if got := len(sink.list()); got != tt.wantEvents {
				t.Errorf("got %d events, want %d", got, tt.wantEvents)
			}
		})
	}
}

func TestServeHTTPDefaultsTo2xx(t *testing.T) {
	for _, status := range []int{200, 201, 204, 299, 301, 404, 500} {
		h, sink := newTestHandler(t, `{"rules": [{"event": "any.call"}]}`)
		r := httptest.NewRequest("GET", "http://api.example.com/", nil)
		if _, err := serve(h, r, respond(status, "")); err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
		want := 0
		if status < 300 {
			want = 1
		}
		if got := len(sink.list()); got != want {
			t.Errorf("status %d: got %d events, want %d", status, got, want)
		}
	}
}

func TestServeHTTPTwoRulesTwoEvents(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [
		{"event": "order.created", "match": [{"method": ["POST"]}]},
		{"event": "order.changed", "match": [{"path": ["/orders*"]}], "response": {"status_code": [2]}},
		{"event": "order.missing", "response": {"status_code": [404]}}
	]}`)

	r := httptest.NewRequest("POST", "http://api.example.com/orders", nil)
	if _, err := serve(h, r, respond(201, `{"id":1}`)); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}

	events := sink.list()
	if len(events) != 2 {
		t.Fatalf("got %d events, want 2", len(events))
	}
	if events[0].Type != "order.created" || events[1].Type != "order.changed" {
		t.Errorf("types = %q, %q; want order.created, order.changed in rule order", events[0].Type, events[1].Type)
	}
	if events[0].ID == events[1].ID {
		t.Errorf("both events have id %q, want distinct ids", events[0].ID)
	}
	for _, ev := range events {
		var env struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(ev.Payload, &env); err != nil {
			t.Fatalf("decoding payload %s: %v", ev.Payload, err)
		}
		if env.Type != ev.Type {
			t.Errorf("payload type = %q, want %q", env.Type, ev.Type)
		}
	}
}

func TestServeHTTPRecordsRequestBeforeNext(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "order.created", "match": [{"method": ["POST"]}]}]}`)

	r := httptest.NewRequest("POST", "http://api.example.com:8443/orders?tag=a&tag=b", nil)
	rewrite := func(w http.ResponseWriter, r *http.Request) error {
		r.Method = "PUT"
		r.Host = "backend.internal"
		r.URL.Path = "/v2/internal/orders"
		r.URL.RawQuery = "rewritten=1"
		w.WriteHeader(201)
		return nil
	}
	if _, err := serve(h, r, rewrite); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}

	events := sink.waitForEvents(t, 1)
	var env struct {
		Data struct {
			Request struct {
				Method string              `json:"method"`
				Host   string              `json:"host"`
				Path   string              `json:"path"`
				Query  map[string][]string `json:"query"`
			} `json:"request"`
		} `json:"data"`
	}
	if err := json.Unmarshal(events[0].Payload, &env); err != nil {
		t.Fatal(err)
	}
	req := env.Data.Request
	if req.Method != "POST" || req.Host != "api.example.com" || req.Path != "/orders" {
		t.Errorf("request = %s %s %s, want POST api.example.com /orders", req.Method, req.Host, req.Path)
	}
	if strings.Join(req.Query["tag"], ",") != "a,b" || len(req.Query) != 1 {
		t.Errorf("query = %v, want tag=[a b]", req.Query)
	}
}

func TestServeHTTPStatusFromError(t *testing.T) {
	upstreamDown := caddyhttp.Error(http.StatusBadGateway, errors.New("dial tcp 127.0.0.1:9: connection refused"))
	tests := []struct {
		name       string
		next       caddyhttp.HandlerFunc
		wantErr    error
		wantStatus int // 0 when no event is expected
	}{
		{
			name:       "handler error with status",
			next:       func(http.ResponseWriter, *http.Request) error { return upstreamDown },
			wantErr:    upstreamDown,
			wantStatus: 502,
		},
		{
			name:       "handler error without status",
			next:       func(http.ResponseWriter, *http.Request) error { return caddyhttp.HandlerError{Err: errClosed} },
			wantErr:    caddyhttp.HandlerError{Err: errClosed},
			wantStatus: 500,
		},
		{
			name:       "plain error",
			next:       func(http.ResponseWriter, *http.Request) error { return errClosed },
			wantErr:    errClosed,
			wantStatus: 500,
		},
		{
			name: "written status wins over error",
			next: func(w http.ResponseWriter, _ *http.Request) error {
				w.WriteHeader(503)
				return errClosed
			},
			wantErr:    errClosed,
			wantStatus: 503,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, sink := newTestHandler(t, `{"rules": [{"event": "api.failed", "response": {"status_code": [5]}}]}`)
			r := httptest.NewRequest("GET", "http://api.example.com/orders", nil)

			_, err := serve(h, r, tt.next)
			if err != tt.wantErr {
				t.Errorf("ServeHTTP returned %#v, want the error of next unchanged: %#v", err, tt.wantErr)
			}

			events := sink.list()
			if len(events) != 1 {
				t.Fatalf("got %d events, want 1", len(events))
			}
			if got := responseStatus(t, events[0]); got != tt.wantStatus {
				t.Errorf("status = %d, want %d", got, tt.wantStatus)
			}
		})
	}
}

var errClosed = errors.New("upstream closed the connection")

func TestServeHTTPNothingWrittenIs200(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "any.call"}]}`)
	r := httptest.NewRequest("GET", "http://api.example.com/", nil)
	if _, err := serve(h, r, func(http.ResponseWriter, *http.Request) error { return nil }); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	events := sink.list()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	if got := responseStatus(t, events[0]); got != 200 {
		t.Errorf("status = %d, want 200", got)
	}
}

func TestServeHTTPResponseHeaderMatch(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{
		"event": "order.created",
		"response": {"status_code": [201], "headers": {"Content-Type": ["application/json*"]}}
	}]}`)

	for _, contentType := range []string{"application/json; charset=utf-8", "text/html"} {
		r := httptest.NewRequest("POST", "http://api.example.com/orders", nil)
		next := func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(201)
			return nil
		}
		if _, err := serve(h, r, next); err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
	}
	if got := len(sink.list()); got != 1 {
		t.Errorf("got %d events, want 1 for the JSON response only", got)
	}
}

// The recorder copies only the header fields that rules read; a matcher
// field written in lower case in the config must still be among them.
func TestServeHTTPLowerCaseMatcherField(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{
		"event": "order.created",
		"response": {"headers": {"x-outcome": ["created"]}},
		"capture": {"response_headers": ["X-Tenant"]}
	}]}`)

	r := httptest.NewRequest("POST", "http://api.example.com/orders", nil)
	next := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Outcome", "created")
		w.Header().Set("X-Tenant", "acme")
		w.Header().Set("X-Other", "not captured")
		w.WriteHeader(201)
		return nil
	}
	if _, err := serve(h, r, next); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	events := sink.list()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1: the x-outcome matcher did not see X-Outcome", len(events))
	}
	var env struct {
		Data struct {
			Response struct {
				Headers map[string][]string `json:"headers"`
			} `json:"response"`
		} `json:"data"`
	}
	if err := json.Unmarshal(events[0].Payload, &env); err != nil {
		t.Fatalf("decoding event: %v", err)
	}
	want := map[string][]string{"X-Tenant": {"acme"}}
	if !reflect.DeepEqual(env.Data.Response.Headers, want) {
		t.Errorf("response headers = %v, want %v", env.Data.Response.Headers, want)
	}
}

// Caddy's respond handler with an empty body sets Content-Type to a nil
// list, which a matcher for an absent field must still see as absent.
func TestServeHTTPAbsentFieldWithNilValues(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{
		"event": "order.deleted",
		"response": {"headers": {"Content-Type": null}},
		"capture": {"response_headers": ["X-Request-Id"]}
	}]}`)

	r := httptest.NewRequest("DELETE", "http://api.example.com/orders/1", nil)
	next := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Request-Id", "r1")
		return caddyhttp.StaticResponse{StatusCode: caddyhttp.WeakString("200")}.ServeHTTP(w, r, nil)
	}
	if _, err := serve(h, r, next); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	if n := len(sink.list()); n != 1 {
		t.Fatalf("got %d events, want 1: the Content-Type matcher did not see the field as absent", n)
	}
}

func TestServeHTTPMatcherError(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "order.created", "match": [{"webhooks_test_failing": {}}]}]}`)

	called := false
	r := httptest.NewRequest("GET", "http://api.example.com/", nil)
	_, err := serve(h, r, func(http.ResponseWriter, *http.Request) error {
		called = true
		return nil
	})
	if !errors.Is(err, errMatcherFailed) {
		t.Errorf("ServeHTTP returned %v, want the matcher's error", err)
	}
	if called {
		t.Error("next handler ran after a matcher error")
	}
	if got := len(sink.list()); got != 0 {
		t.Errorf("got %d events, want 0", got)
	}
}

func TestServeHTTPBodies(t *testing.T) {
	large := strings.Repeat("a", capture.DefaultMaxBody+10)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantBody    string // JSON of data.response.body; empty for none
		wantExtra   string // expected JSON members after "body", such as encoding
	}{
		{"json", "application/json", `{"id": 42, "ok": true}`, `{"id":42,"ok":true}`, ``},
		{"text", "text/plain", "order 42 created", `"order 42 created"`, ``},
		{"binary", "application/octet-stream", "\x89PNG\r\n\x1a\n\x00\xff", `"iVBORw0KGgoA/w=="`, `,"body_encoding":"base64"`},
		{"empty", "text/plain", "", ``, ``},
		{"truncated", "text/plain", large, `"` + large[:capture.DefaultMaxBody] + `"`, `,"body_truncated":true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, sink := newTestHandler(t, `{"rules": [{"event": "file.served"}]}`)
			r := httptest.NewRequest("GET", "http://api.example.com/file", nil)
			next := func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Type", tt.contentType)
				_, err := io.WriteString(w, tt.body)
				return err
			}
			w, err := serve(h, r, next)
			if err != nil {
				t.Fatalf("ServeHTTP: %v", err)
			}
			if w.Body.String() != tt.body {
				t.Errorf("client got %d bytes, want the %d bytes written", w.Body.Len(), len(tt.body))
			}

			events := sink.list()
			if len(events) != 1 {
				t.Fatalf("got %d events, want 1", len(events))
			}
			want := `"response":{"status":200}`
			if tt.wantBody != "" {
				want = `"response":{"status":200,"body":` + tt.wantBody + tt.wantExtra + `}`
			}
			if !strings.Contains(string(events[0].Payload), want) {
				t.Errorf("payload does not contain %.200s\npayload: %.300s", want, events[0].Payload)
			}
		})
	}
}

// onlyReader hides any WriterTo method, so io.Copy uses the writer's ReadFrom.
type onlyReader struct{ io.Reader }

func TestServeHTTPReadFromCapture(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "order.read"}]}`)
	r := httptest.NewRequest("GET", "http://api.example.com/orders/42", nil)

	usedReadFrom := false
	next := func(w http.ResponseWriter, r *http.Request) error {
		_, usedReadFrom = w.(io.ReaderFrom)
		_, err := io.Copy(w, onlyReader{strings.NewReader(`{"id":42,"status":"paid"}`)})
		return err
	}
	w, err := serve(h, r, next)
	if err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	if !usedReadFrom {
		t.Fatal("the writer given to next does not implement io.ReaderFrom")
	}
	if w.Body.String() != `{"id":42,"status":"paid"}` {
		t.Errorf("client got %q", w.Body.String())
	}
	events := sink.list()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	if !strings.Contains(string(events[0].Payload), `"body":{"id":42,"status":"paid"}`) {
		t.Errorf("payload lacks the body copied with ReadFrom: %s", events[0].Payload)
	}
}

func TestServeHTTPEarlyHints(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "order.created", "response": {"status_code": [201]}}]}`)
	srv := httptest.NewServer(asServer(h, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
		_, err := io.WriteString(w, `{"id":42}`)
		return err
	}))
	defer srv.Close()

	var hints []int
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
			hints = append(hints, code)
			return nil
		},
	}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	if resp.StatusCode != 201 {
		t.Errorf("client got status %d, want 201", resp.StatusCode)
	}
	if len(hints) != 1 || hints[0] != 103 {
		t.Errorf("client got informational responses %v, want [103]", hints)
	}
	events := sink.waitForEvents(t, 1)
	if got := responseStatus(t, events[0]); got != 201 {
		t.Errorf("event status = %d, want 201", got)
	}
}

func TestServeHTTPStreamsServerSentEvents(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "stream.ended"}]}`)

	clientRead := make(chan struct{})
	srv := httptest.NewServer(asServer(h, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			return err
		}
		// The second event is only written once the client has read the
		// first, which it can only do if the flush went through.
		select {
		case <-clientRead:
		case <-r.Context().Done():
			return r.Context().Err()
		}
		_, err := io.WriteString(w, "data: second\n\n")
		return err
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	reader := bufio.NewReader(resp.Body)
	line, err := reader.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first event before the handler finished: %v", err)
	}
	if line != "data: first\n" {
		t.Errorf("first line = %q, want %q", line, "data: first\n")
	}
	close(clientRead)
	rest, err := io.ReadAll(reader)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "\ndata: second\n\n" {
		t.Errorf("rest of stream = %q", rest)
	}

	events := sink.waitForEvents(t, 1)
	if !strings.Contains(string(events[0].Payload), `"body":"data: first\n\ndata: second\n\n"`) {
		t.Errorf("payload lacks the whole stream: %s", events[0].Payload)
	}
}

func TestServeHTTPWebSocket(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "chat.closed", "response": {"status_code": [101]}}]}`)

	srv := httptest.NewServer(asServer(h, func(w http.ResponseWriter, r *http.Request) error {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return err
		}
		defer conn.CloseNow()
		typ, msg, err := conn.Read(r.Context())
		if err != nil {
			return nil
		}
		if err := conn.Write(r.Context(), typ, msg); err != nil {
			return nil
		}
		_, _, _ = conn.Read(r.Context()) // returns once the client closes
		return nil
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/chat", nil)
	if err != nil {
		t.Fatalf("dialing through the handler: %v", err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, echo, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if string(echo) != "hello" {
		t.Errorf("echo = %q, want hello", echo)
	}
	if got := len(sink.list()); got != 0 {
		t.Errorf("got %d events while the connection is open, want 0", got)
	}
	if err := conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("closing: %v", err)
	}

	events := sink.waitForEvents(t, 1)
	if got := responseStatus(t, events[0]); got != 101 {
		t.Errorf("event status = %d, want 101", got)
	}
}

func TestServeHTTPHijackWithoutStatus(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "any.call", "response": {"status_code": [1, 2, 3, 4, 5]}}]}`)

	done := make(chan struct{})
	srv := httptest.NewServer(asServer(h, func(w http.ResponseWriter, r *http.Request) error {
		defer close(done)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return err
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		return brw.Flush()
	}))
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("client got %d, want 204", resp.StatusCode)
	}
	<-done
	if got := len(sink.list()); got != 0 {
		t.Errorf("got %d events for a hijacked connection without status, want 0", got)
	}
}

func TestServeHTTPLogsEmittedEvent(t *testing.T) {
	h, sink := newTestHandler(t, ordersConfig)
	core, logs := observer.New(zapcore.DebugLevel)
	h.logger = zap.New(core)

	r := httptest.NewRequest("POST", "http://api.example.com/orders", nil)
	if _, err := serve(h, r, respond(201, `{}`)); err != nil {
		t.Fatal(err)
	}

	events := sink.list()
	entries := logs.FilterMessage("emitted event").All()
	if len(events) != 1 || len(entries) != 1 {
		t.Fatalf("got %d events and %d log entries, want 1 and 1", len(events), len(entries))
	}
	fields := entries[0].ContextMap()
	if fields["event_id"] != events[0].ID || fields["event_type"] != "order.created" {
		t.Errorf("log fields = %v, want event_id %q and event_type order.created", fields, events[0].ID)
	}
}

func TestServeHTTPNoMatchAllocatesNothing(t *testing.T) {
	h, _ := newTestHandler(t, `{"rules": [
		{"event": "order.created", "match": [{"method": ["POST"], "path": ["/orders"]}]},
		{"event": "order.updated", "match": [{"method": ["PUT", "PATCH"]}, {"path": ["/orders/*/items"]}]}
	]}`)

	r := withReplacer(httptest.NewRequest("GET", "http://api.example.com/health", nil))
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

	allocs := testing.AllocsPerRun(200, func() {
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ServeHTTP allocated %.1f times per non-matching request, want 0", allocs)
	}
}

func TestProvisionGetsApp(t *testing.T) {
	ctx, err := caddy.ProvisionContext(new(caddy.Config))
	if err != nil {
		t.Fatalf("creating Caddy context: %v", err)
	}
	h := new(Handler)
	if err := json.Unmarshal([]byte(ordersConfig), h); err != nil {
		t.Fatal(err)
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if _, ok := h.sink.(*App); !ok {
		t.Errorf("sink is %T, want *App", h.sink)
	}
	if err := h.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		wantErr string // empty for a valid config
	}{
		{"one rule", `{"rules": [{"event": "order.created"}]}`, ""},
		{"same event twice", `{"rules": [{"event": "order.created"}, {"event": "order.created"}]}`, ""},
		{"no rules", `{}`, "no rules"},
		{"empty rules", `{"rules": []}`, "no rules"},
		{"null rule", `{"rules": [{"event": "a.b"}, null]}`, "rule 1 is null"},
		{"missing event", `{"rules": [{"description": "x"}]}`, `rule 0 (event ""): event type is empty`},
		{"bad event", `{"rules": [{"event": "a.b"}, {"event": "order created"}]}`, `rule 1 (event "order created"): invalid event type "order created"`},
		{"status too high", `{"rules": [{"event": "a.b", "response": {"status_code": [600]}}]}`, "invalid status code 600"},
		{"status class 6", `{"rules": [{"event": "a.b", "response": {"status_code": [6]}}]}`, "invalid status code 6"},
		{"status 99", `{"rules": [{"event": "a.b", "response": {"status_code": [99]}}]}`, "invalid status code 99"},
		{"status 0", `{"rules": [{"event": "a.b", "response": {"status_code": [0]}}]}`, "invalid status code 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			if err := json.Unmarshal([]byte(tt.config), h); err != nil {
				t.Fatal(err)
			}
			err := h.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func responseStatus(t *testing.T, ev *emitter.Event) int {
	t.Helper()
	var env struct {
		Data struct {
			Response struct {
				Status int `json:"status"`
			} `json:"response"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Payload, &env); err != nil {
		t.Fatalf("decoding payload %s: %v", ev.Payload, err)
	}
	return env.Data.Response.Status
}

// failingMatcher is a request matcher that always fails, registered for
// the tests as http.matchers.webhooks_test_failing.
type failingMatcher struct{}

var errMatcherFailed = errors.New("matcher failed")

func (failingMatcher) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.webhooks_test_failing",
		New: func() caddy.Module { return new(failingMatcher) },
	}
}

func (failingMatcher) MatchWithError(*http.Request) (bool, error) {
	return false, errMatcherFailed
}

func init() {
	caddy.RegisterModule(failingMatcher{})
}

func TestServeHTTPAbortedResponseStillEmits(t *testing.T) {
	h, sink := newTestHandler(t, ordersConfig)
	r := httptest.NewRequest("POST", "http://api.example.com/orders", strings.NewReader(`{}`))

	// reverse_proxy panics like this when the upstream breaks off a
	// response it has started.
	aborting := func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"id":`)
		panic(http.ErrAbortHandler)
	}

	var recovered any
	func() {
		defer func() { recovered = recover() }()
		_, _ = serve(h, r, aborting)
	}()
	if recovered != http.ErrAbortHandler {
		t.Errorf("recovered %v, expected the handler's http.ErrAbortHandler to go on", recovered)
	}
	events := sink.list()
	if len(events) != 1 {
		t.Fatalf("got %d events, expected 1 for the 201 that was sent", len(events))
	}
	if got := responseStatus(t, events[0]); got != 201 {
		t.Errorf("status = %d, expected 201", got)
	}
}

func TestServeHTTPPanicBeforeStatusEmitsNothing(t *testing.T) {
	h, sink := newTestHandler(t, ordersConfig)
	r := httptest.NewRequest("POST", "http://api.example.com/orders", strings.NewReader(`{}`))

	func() {
		defer func() { _ = recover() }()
		_, _ = serve(h, r, func(http.ResponseWriter, *http.Request) error { panic("bug") })
	}()
	if events := sink.list(); len(events) != 0 {
		t.Errorf("got %d events for a handler that panicked before answering, expected none", len(events))
	}
}

func TestServeHTTPBracketsObservation(t *testing.T) {
	h, sink := newTestHandler(t, ordersConfig)
	r := httptest.NewRequest("POST", "http://api.example.com/orders", strings.NewReader(`{}`))

	var during int64
	next := func(w http.ResponseWriter, r *http.Request) error {
		during = sink.observed.Load()
		w.WriteHeader(201)
		return nil
	}
	if _, err := serve(h, r, next); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	if during != 1 {
		t.Errorf("observations while the next handler ran = %d, expected 1", during)
	}
	if after := sink.observed.Load(); after != 0 {
		t.Errorf("observations after the request = %d, expected 0", after)
	}
}

// gzipBytes returns data compressed with gzip.
func gzipBytes(t *testing.T, data string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := io.WriteString(zw, data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// anyBodyWriter is a response writer that keeps every body it is given,
// even for HEAD requests and 204 and 304 responses, for which net/http and
// httptest.ResponseRecorder drop or reject it. It shows what the handler
// does with such a body when a writer lets it through.
type anyBodyWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *anyBodyWriter) Header() http.Header         { return w.header }
func (w *anyBodyWriter) WriteHeader(status int)      { w.status = status }
func (w *anyBodyWriter) Write(p []byte) (int, error) { return w.body.Write(p) }

// respondEncoded writes status and body, labeled with the given
// Content-Encoding.
func respondEncoded(status int, contentEncoding string, body []byte) caddyhttp.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", contentEncoding)
		w.WriteHeader(status)
		_, err := w.Write(body)
		return err
	}
}

func TestServeHTTPDecodesCompressedBody(t *testing.T) {
	compressed := gzipBytes(t, `{"id": 42}`)
	asSent := `"` + base64.StdEncoding.EncodeToString(compressed) + `","body_encoding":"base64"`
	tests := []struct {
		name     string
		method   string
		status   int
		wantBody string // JSON of data.response.body and the members after it
	}{
		{"GET 200 decoded", "GET", 200, `{"id":42}`},
		{"POST 201 decoded", "POST", 201, `{"id":42}`},
		{"HEAD not decoded", "HEAD", 200, asSent},
		{"204 not decoded", "GET", 204, asSent},
		{"304 not decoded", "GET", 304, asSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, sink := newTestHandler(t, `{"rules": [{"event": "order.read", "response": {"status_code": [200, 201, 204, 304]}}]}`)
			r := httptest.NewRequest(tt.method, "http://api.example.com/orders/42", nil)

			w := &anyBodyWriter{header: make(http.Header)}
			if err := h.ServeHTTP(w, withReplacer(r), respondEncoded(tt.status, "gzip", compressed)); err != nil {
				t.Fatalf("ServeHTTP: %v", err)
			}
			if !bytes.Equal(w.body.Bytes(), compressed) {
				t.Errorf("client got %q, want the compressed bytes unchanged", w.body.Bytes())
			}
			if got := w.Header().Get("Content-Encoding"); got != "gzip" {
				t.Errorf("client Content-Encoding = %q, want gzip", got)
			}

			events := sink.list()
			if len(events) != 1 {
				t.Fatalf("got %d events, want 1", len(events))
			}
			want := fmt.Sprintf(`"response":{"status":%d,"body":%s}`, tt.status, tt.wantBody)
			if !strings.Contains(string(events[0].Payload), want) {
				t.Errorf("payload does not contain %s\npayload: %s", want, events[0].Payload)
			}
		})
	}
}

func TestServeHTTPCorruptEncodingKeepsBody(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "order.read"}]}`)
	core, logs := observer.New(zapcore.DebugLevel)
	h.logger = zap.New(core)
	r := httptest.NewRequest("GET", "http://api.example.com/orders/42", nil)

	body := []byte("\x1f\x8b not really gzip")
	if _, err := serve(h, r, respondEncoded(200, "gzip", body)); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}

	events := sink.list()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	want := `"body":"` + base64.StdEncoding.EncodeToString(body) + `","body_encoding":"base64"`
	if !strings.Contains(string(events[0].Payload), want) {
		t.Errorf("payload does not contain %s\npayload: %s", want, events[0].Payload)
	}

	entries := logs.FilterMessageSnippet("decoding response body failed").All()
	if len(entries) != 1 {
		t.Fatalf("got %d decoding log entries, want 1", len(entries))
	}
	if entries[0].Level != zapcore.DebugLevel {
		t.Errorf("log level = %v, want debug", entries[0].Level)
	}
	fields := entries[0].ContextMap()
	if fields["content_encoding"] != "gzip" || fields["path"] != "/orders/42" || fields["error"] == nil {
		t.Errorf("log fields = %v, want content_encoding gzip, path /orders/42 and an error", fields)
	}
}
