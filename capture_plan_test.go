package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// discardWriter is a response writer that throws the body away, so that
// only the handler's own memory is measured.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

func TestCaptureHoldsAtMostMaxBody(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [{"event": "export.read", "capture": {"request_body": true, "max_body": 4096}}]}`)

	const size = 100 << 20
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	next := func(w http.ResponseWriter, r *http.Request) error {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return err
		}
		for written := 0; written < size; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	}
	body := io.LimitReader(strings.NewReader(strings.Repeat("y", size)), size)
	r := withReplacer(httptest.NewRequest(http.MethodPost, "/export", body))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := h.ServeHTTP(&discardWriter{header: make(http.Header)}, r, caddyhttp.HandlerFunc(next)); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	runtime.ReadMemStats(&after)

	// 100 MiB went each way; the handler may allocate its two 4 KiB
	// captures, the event and bookkeeping, but nothing that grows with
	// the bodies.
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 1<<20 {
		t.Errorf("handler allocated %d bytes for 100 MiB request and response bodies with max_body 4096", allocated)
	}

	events := sink.waitForEvents(t, 1)
	var env struct {
		Data struct {
			Request struct {
				Body          string `json:"body"`
				BodyTruncated bool   `json:"body_truncated"`
			} `json:"request"`
			Response struct {
				Body          string `json:"body"`
				BodyTruncated bool   `json:"body_truncated"`
			} `json:"response"`
		} `json:"data"`
	}
	if err := json.Unmarshal(events[0].Payload, &env); err != nil {
		t.Fatal(err)
	}
	if len(env.Data.Request.Body) != 4096 || !env.Data.Request.BodyTruncated {
		t.Errorf("request body kept %d bytes, truncated %v; want 4096 and true", len(env.Data.Request.Body), env.Data.Request.BodyTruncated)
	}
	if len(env.Data.Response.Body) != 4096 || !env.Data.Response.BodyTruncated {
		t.Errorf("response body kept %d bytes, truncated %v; want 4096 and true", len(env.Data.Response.Body), env.Data.Response.BodyTruncated)
	}
}

func TestCaptureHeaders(t *testing.T) {
	h, sink := newTestHandler(t, `{"rules": [
		{"event": "every.header", "capture": {"request_headers": ["*"], "response_headers": ["*"]}},
		{"event": "named.header", "capture": {"request_headers": ["authorization", "X-Missing"], "response_headers": ["Set-Cookie"], "response_body": false}}
	]}`)

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer secret-token")
	r.Header.Set("Cookie", "session=1")
	r.Header.Set("Proxy-Authorization", "Basic abc")
	r.Header.Set("X-Tenant", "acme")
	next := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Set-Cookie", "session=2")
		w.Header().Set("Location", "/orders/1")
		_, err := w.Write([]byte(`{"ok":true}`))
		return err
	}
	if _, err := serve(h, r, next); err != nil {
		t.Fatal(err)
	}

	type headers struct {
		Data struct {
			Request struct {
				Headers map[string][]string `json:"headers"`
			} `json:"request"`
			Response struct {
				Headers map[string][]string `json:"headers"`
				Body    json.RawMessage     `json:"body"`
			} `json:"response"`
		} `json:"data"`
	}
	events := sink.waitForEvents(t, 2)
	var every, named headers
	if err := json.Unmarshal(events[0].Payload, &every); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(events[1].Payload, &named); err != nil {
		t.Fatal(err)
	}

	for _, field := range []string{"Authorization", "Cookie", "Proxy-Authorization"} {
		if _, ok := every.Data.Request.Headers[field]; ok {
			t.Errorf("request_headers * kept the credential field %s", field)
		}
	}
	if got := every.Data.Request.Headers["X-Tenant"]; len(got) != 1 || got[0] != "acme" {
		t.Errorf("request_headers * kept X-Tenant %v, want [acme]", got)
	}
	if _, ok := every.Data.Response.Headers["Set-Cookie"]; ok {
		t.Error("response_headers * kept Set-Cookie")
	}
	if got := every.Data.Response.Headers["Location"]; len(got) != 1 || got[0] != "/orders/1" {
		t.Errorf("response_headers * kept Location %v, want [/orders/1]", got)
	}

	if got := named.Data.Request.Headers["Authorization"]; len(got) != 1 || got[0] != "Bearer secret-token" {
		t.Errorf("Authorization named explicitly was kept as %v", got)
	}
	if len(named.Data.Request.Headers) != 1 {
		t.Errorf("named rule kept request headers %v, want only Authorization", named.Data.Request.Headers)
	}
	if got := named.Data.Response.Headers["Set-Cookie"]; len(got) != 1 || got[0] != "session=2" {
		t.Errorf("Set-Cookie named explicitly was kept as %v", got)
	}
	if named.Data.Response.Body != nil {
		t.Errorf("rule with response_body false kept the response body %s", named.Data.Response.Body)
	}
}

func TestCapturePlanTemplateNeeds(t *testing.T) {
	_, err := newTestHandlerError(`{"rules": [{"event": "a.b", "capture": {"response_body": false}, "payload": {"id": "{webhook.response.body.id}"}}]}`)
	if err == nil || !strings.Contains(err.Error(), "capture turns the response body off") {
		t.Errorf("error = %v, want one saying capture turns the response body off", err)
	}

	h, sink := newTestHandler(t, `{"rules": [{"event": "a.b", "payload": {"sku": "{webhook.request.body.sku}", "tenant": "{webhook.request.header.X-Tenant}"}}]}`)
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"sku":"A-1"}`))
	r.Header.Set("X-Tenant", "acme")
	next := func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.Copy(io.Discard, r.Body)
		return err
	}
	if _, err := serve(h, r, next); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(sink.waitForEvents(t, 1)[0].Payload, &env); err != nil {
		t.Fatal(err)
	}
	if env.Data["sku"] != "A-1" || env.Data["tenant"] != "acme" {
		t.Errorf("data = %v, want the request body's sku and the X-Tenant header, captured for the template", env.Data)
	}
}

func TestRuleInvalidConfig(t *testing.T) {
	tests := []struct {
		name, config, wantErr string
	}{
		{"max_body too large", `{"event": "a.b", "capture": {"max_body": 262145}}`, "invalid capture max_body 262145"},
		{"max_body negative", `{"event": "a.b", "capture": {"max_body": -1}}`, "invalid capture max_body -1"},
		{"bad header name", `{"event": "a.b", "capture": {"request_headers": ["X Tenant"]}}`, `invalid header field name "X Tenant"`},
		{"bad template", `{"event": "a.b", "payload": "{webhook.response.body.id"}`, ""},
		{"reserved event type", `{"event": "webhooks.endpoint.disabled"}`, `event type "webhooks.endpoint.disabled" starts with webhooks., which is reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTestHandlerError(`{"rules": [` + tt.config + `]}`)
			if tt.wantErr == "" {
				// An unclosed brace is literal text in Caddy's placeholder
				// syntax, so this template is valid.
				if err != nil {
					t.Errorf("error = %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// newTestHandlerError decodes and provisions a handler config and returns
// the first error.
func newTestHandlerError(config string) (*Handler, error) {
	h := new(Handler)
	if err := json.Unmarshal([]byte(config), h); err != nil {
		return nil, err
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.provisionRules(ctx); err != nil {
		return nil, err
	}
	return h, h.Validate()
}
