package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// benchRules is the handler config of the benchmarks: two rules with
// request matchers, as a typical API site has.
const benchRules = `{"rules": [
	{"event": "order.created", "match": [{"method": ["POST"], "path": ["/orders"]}], "response": {"status_code": [201]}},
	{"event": "order.updated", "match": [{"method": ["PUT", "PATCH"]}, {"path": ["/orders/*/items"]}]}
]}`

// countingSink replaces the webhooks app in the benchmarks and only counts
// the events, so a benchmark measures the handler up to the enqueue.
type countingSink struct {
	events atomic.Int64
}

func (s *countingSink) Emit(*emitter.Event) { s.events.Add(1) }
func (s *countingSink) observationStarted() {}
func (s *countingSink) observationEnded()   {}

// discardResponseWriter is a response writer that keeps its header map and
// drops the body, so that the iterations of a benchmark do not accumulate
// memory as httptest.ResponseRecorder would.
type discardResponseWriter struct {
	header http.Header
}

func (w *discardResponseWriter) Header() http.Header         { return w.header }
func (w *discardResponseWriter) WriteHeader(int)             {}
func (w *discardResponseWriter) Write(p []byte) (int, error) { return len(p), nil }

// newBenchHandler provisions a handler from its JSON config with sink in
// place of the webhooks app.
func newBenchHandler(b *testing.B, config string, sink eventSink) *Handler {
	b.Helper()
	h := new(Handler)
	if err := json.Unmarshal([]byte(config), h); err != nil {
		b.Fatalf("decoding handler config: %v", err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	if err := h.provisionRules(ctx); err != nil {
		b.Fatalf("provisioning rules: %v", err)
	}
	if err := h.Validate(); err != nil {
		b.Fatalf("validating handler: %v", err)
	}
	h.sink = sink
	h.logger = zap.NewNop()
	h.now = time.Now
	return h
}

// newBenchRequest returns a request with a Caddy replacer in its context,
// as Caddy's server prepares it before any handler runs.
func newBenchRequest(method, target, body string) *http.Request {
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, reader)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	return r.WithContext(ctx)
}

func BenchmarkServeHTTPNoRuleMatches(b *testing.B) {
	h := newBenchHandler(b, benchRules, new(countingSink))
	r := newBenchRequest(http.MethodGet, "http://api.example.com/health", "")
	w := &discardResponseWriter{header: make(http.Header)}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

	b.ReportAllocs()
	for b.Loop() {
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServeHTTPMatched(b *testing.B) {
	largeBody := `{"id":42,"items":[` + strings.Repeat(`{"sku":"A-1","quantity":1,"price":12.5},`, 400) + `{"sku":"B-2","quantity":2,"price":3}]}`
	cases := []struct {
		name       string
		status     int
		body       string
		wantEvents bool
	}{
		{"small JSON body emits", http.StatusCreated, `{"id":42,"status":"created"}`, true},
		{"16 KiB JSON body emits", http.StatusCreated, largeBody, true},
		{"response not matched", http.StatusBadRequest, `{"error":"invalid item"}`, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			sink := new(countingSink)
			h := newBenchHandler(b, benchRules, sink)
			r := newBenchRequest(http.MethodPost, "http://api.example.com/orders?source=web", "")
			w := &discardResponseWriter{header: make(http.Header)}
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, err := io.WriteString(w, tc.body)
				return err
			})
			b.SetBytes(int64(len(tc.body)))

			b.ReportAllocs()
			for b.Loop() {
				if err := h.ServeHTTP(w, r, next); err != nil {
					b.Fatal(err)
				}
			}

			emitted := sink.events.Load()
			if tc.wantEvents && emitted == 0 {
				b.Fatal("no event emitted: the rule no longer matches the benchmark request")
			}
			if !tc.wantEvents && emitted != 0 {
				b.Fatalf("%d events emitted for a response the rule must not match", emitted)
			}
		})
	}
}
