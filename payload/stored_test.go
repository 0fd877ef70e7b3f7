package payload

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

func TestStoredResolverDefaultEnvelope(t *testing.T) {
	stored, err := Default(&Exchange{
		EventType: "order.created",
		Timestamp: time.Date(2026, 12, 4, 19, 20, 0, 123e6, time.UTC),
		Request: Request{
			Method: "POST", Host: "api.example.com", Path: "/orders",
			Query:        url.Values{"ref": {"mail", "web"}},
			Header:       http.Header{"X-Tenant": {"acme", "north"}},
			Body:         []byte(`{"items":[{"sku":"A-1"}]}`),
			BodyCaptured: true,
		},
		Response: Response{
			Status: 201,
			Header: http.Header{"Location": {"/orders/42"}},
			Body:   []byte(`{"id":42,"customer":{"name":"Zoë"}}`),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fallback := placeholder.ResolverFunc(func(name string) (any, bool) {
		if name == "env.REGION" {
			return "eu", true
		}
		return nil, false
	})
	r := StoredResolver("01EVENT", stored, fallback)

	tests := []struct {
		name string
		want string // the value as text; "<none>" for no value
	}{
		{"webhook.event.id", "01EVENT"},
		{"webhook.event.type", "order.created"},
		{"webhook.event.timestamp", "2026-12-04T19:20:00.123Z"},
		{"webhook.request.method", "POST"},
		{"webhook.request.host", "api.example.com"},
		{"webhook.request.path", "/orders"},
		{"webhook.request.query.ref", "mail"},
		{"webhook.request.query.missing", "<none>"},
		{"webhook.request.header.x-tenant", "acme, north"},
		{"webhook.request.header.X-Missing", "<none>"},
		{"webhook.request.body.items.0.sku", "A-1"},
		{"webhook.request.body.items[0].sku", "A-1"},
		{"webhook.response.status", "201"},
		{"webhook.response.header.Location", "/orders/42"},
		{"webhook.response.body.id", "42"},
		{"webhook.response.body.customer.name", "Zoë"},
		{"webhook.response.body", `{"customer":{"name":"Zoë"},"id":42}`},
		{"webhook.data.response.status", "201"},
		{"webhook.data.nope", "<none>"},
		{"env.REGION", "eu"},
		{"env.OTHER", "<none>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := r.Resolve(tt.name)
			got := "<none>"
			if ok {
				got = placeholder.FormatText(v)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestStoredResolverTemplatePayload(t *testing.T) {
	stored := []byte(`{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z","data":{"order_id":42,"lines":[{"sku":"A-1"}]}}`)
	r := StoredResolver("01EVENT", stored, nil)

	if v, ok := r.Resolve("webhook.data.order_id"); !ok || placeholder.FormatText(v) != "42" {
		t.Errorf("webhook.data.order_id = %v, %v; want 42", v, ok)
	}
	if v, ok := r.Resolve("webhook.data.lines[0].sku"); !ok || v != "A-1" {
		t.Errorf("webhook.data.lines[0].sku = %v, %v; want A-1", v, ok)
	}
	if v, ok := r.Resolve("webhook.response.status"); ok {
		t.Errorf("webhook.response.status = %v in an event without the default data, want no value", v)
	}
}

func TestStoredResolverBase64Body(t *testing.T) {
	stored, err := Default(&Exchange{
		EventType: "file.uploaded",
		Response:  Response{Status: 200, Body: []byte{0xff, 0xfe, 0x00}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := StoredResolver("01EVENT", stored, nil)
	if v, ok := r.Resolve("webhook.response.body"); ok {
		t.Errorf("webhook.response.body = %v for a base64 body, want no value", v)
	}
}

func TestStoredResolverNotEnvelope(t *testing.T) {
	r := StoredResolver("01EVENT", []byte("not json"), nil)
	if v, ok := r.Resolve("webhook.event.id"); !ok || v != "01EVENT" {
		t.Errorf("webhook.event.id = %v, %v; want 01EVENT", v, ok)
	}
	for _, name := range []string{"webhook.event.type", "webhook.data", "webhook.request.path"} {
		if v, ok := r.Resolve(name); ok {
			t.Errorf("%s = %v for a payload that is not JSON, want no value", name, v)
		}
	}
}

func TestCheckStoredName(t *testing.T) {
	for _, name := range []string{"webhook.event.timestamp", "webhook.data", "webhook.data.a.b", "webhook.response.body.id", "env.X", "time.now"} {
		if err := CheckStoredName(name); err != nil {
			t.Errorf("CheckStoredName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"webhook.dta.x", "webhook.data.", "webhook.event"} {
		if err := CheckStoredName(name); err == nil {
			t.Errorf("CheckStoredName(%q) = nil, want an error", name)
		}
	}
}
