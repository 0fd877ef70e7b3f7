package payload

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

func TestExchangeResolver(t *testing.T) {
	x := templateExchange()
	x.Request.Header["lower-case"] = []string{"stored as is"}
	x.Response.Header["X-Empty"] = []string{""}
	x.Response.Header["X-None"] = []string{}
	r := x.Resolver(templateFallback)

	tests := []struct {
		name   string
		want   any
		wantOK bool
	}{
		{name: "webhook.event.id", want: "01JEXAMPLE", wantOK: true},
		{name: "webhook.event.type", want: "order.created", wantOK: true},
		{name: "webhook.request.method", want: "POST", wantOK: true},
		{name: "webhook.request.host", want: "api.example.com", wantOK: true},
		{name: "webhook.request.path", want: "/orders", wantOK: true},
		{name: "webhook.response.status", want: 201, wantOK: true},
		{name: "webhook.request.query.tag", want: "a", wantOK: true},
		{name: "webhook.request.query.empty", want: "", wantOK: true},
		{name: "webhook.request.query.Tag"},
		{name: "webhook.request.header.X-Tenant", want: "acme", wantOK: true},
		{name: "webhook.request.header.x-tenant", want: "acme", wantOK: true},
		{name: "webhook.request.header.X-Multi", want: "a, b", wantOK: true},
		{name: "webhook.request.header.lower-case", want: "stored as is", wantOK: true},
		{name: "webhook.request.header.Location"},
		{name: "webhook.response.header.Location", want: "/orders/42", wantOK: true},
		{name: "webhook.response.header.X-Empty", want: "", wantOK: true},
		{name: "webhook.response.header.X-None"},
		{name: "webhook.response.body.id", want: json.Number("42"), wantOK: true},
		{name: "webhook.response.body.items[1].qty", want: json.Number("3"), wantOK: true},
		{name: "webhook.response.body.items.1.qty", want: json.Number("3"), wantOK: true},
		{name: "webhook.response.body.coupon", want: nil, wantOK: true},
		{name: "webhook.response.body.items.2"},
		{name: "webhook.request.body.customer.name", want: `Ada "the" Countess`, wantOK: true},
		{name: "http.request.remote.host", want: "203.0.113.7", wantOK: true},
		{name: "http.request.unknown"},
		{name: "webhook.unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := r.Resolve(tt.name)
			if ok != tt.wantOK {
				t.Fatalf("Resolve(%q) reports %v, want %v (value %#v)", tt.name, ok, tt.wantOK, got)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve(%q) = %#v, want %#v", tt.name, got, tt.want)
			}
		})
	}
}

func TestExchangeResolverFallback(t *testing.T) {
	var requested []string
	fallback := placeholder.ResolverFunc(func(name string) (any, bool) {
		requested = append(requested, name)
		return "from fallback", true
	})
	r := templateExchange().Resolver(fallback)
	for _, name := range []string{"webhook.event.id", "webhook.response.body.id", "webhook.request.header.X-Absent", "http.request.uri", "webhook.typo"} {
		r.Resolve(name)
	}
	want := []string{"http.request.uri", "webhook.typo"}
	if !reflect.DeepEqual(requested, want) {
		t.Errorf("fallback requested for %q, want %q", requested, want)
	}

	if v, ok := templateExchange().Resolver(nil).Resolve("http.request.uri"); ok {
		t.Errorf("resolver without fallback resolved http.request.uri to %v", v)
	}
}

func TestExchangeResolverDecodesBodiesLazily(t *testing.T) {
	x := templateExchange()
	r := x.Resolver(nil).(*exchangeResolver)

	r.Resolve("webhook.event.id")
	r.Resolve("webhook.request.header.X-Tenant")
	if r.response.present || r.request.present {
		t.Fatal("a body was decoded although no placeholder read it")
	}

	first, _ := r.Resolve("webhook.response.body")
	if r.request.present {
		t.Error("the request body was decoded for a response body placeholder")
	}
	r.Resolve("webhook.response.body.id")
	second, _ := r.Resolve("webhook.response.body")
	if reflect.ValueOf(first).Pointer() != reflect.ValueOf(second).Pointer() {
		t.Error("the response body was decoded twice")
	}
}

func TestExchangeResolverConcurrent(t *testing.T) {
	r := templateExchange().Resolver(nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, _ := r.Resolve("webhook.response.body.items[0].sku"); got != "A-1" {
				t.Errorf("items[0].sku = %v, want A-1", got)
			}
			if got, _ := r.Resolve("webhook.request.body.lang"); got != "Grüße 🌍" {
				t.Errorf("lang = %v, want Grüße 🌍", got)
			}
		})
	}
	wg.Wait()
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name string
		kind nameKind
		arg  string
	}{
		{"webhook.event.id", nameEventID, ""},
		{"webhook.request.query.page", nameRequestQuery, "page"},
		{"webhook.request.header.X-Tenant", nameRequestHeader, "X-Tenant"},
		{"webhook.response.header.Content-Type", nameResponseHeader, "Content-Type"},
		{"webhook.request.body", nameRequestBody, ""},
		{"webhook.request.body.items[0].sku", nameRequestBody, "items[0].sku"},
		{"webhook.response.body[0].id", nameResponseBody, "[0].id"},
		{"webhook.response.body.0", nameResponseBody, "0"},
		{"webhook.response.bodyx", nameUnknown, ""},
		{"webhook.response.body.", nameUnknown, ""},
		{"webhook.response.body..id", nameUnknown, ""},
		{"webhook.response.body.id.", nameUnknown, ""},
		{"webhook.request.header.", nameUnknown, ""},
		{"webhook.request.query.", nameUnknown, ""},
		{"webhook.request", nameUnknown, ""},
		{"webhook.response.status.code", nameUnknown, ""},
		{"http.request.uri", nameUnknown, ""},
		{"Webhook.event.id", nameUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, arg := parseName(tt.name)
			if kind != tt.kind || arg != tt.arg {
				t.Errorf("parseName(%q) = %v, %q, want %v, %q", tt.name, kind, arg, tt.kind, tt.arg)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"webhook.event.type", "webhook.response.body[2].id", "http.request.uri", "env.TOKEN", "", "webhooks.x"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"webhook.", "webhook.event", "webhook.response.header", "webhook.reponse.status"} {
		err := CheckName(name)
		if err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", name)
			continue
		}
		if !strings.Contains(err.Error(), "{"+name+"}") || !strings.Contains(err.Error(), "webhook.event.id") {
			t.Errorf("CheckName(%q) = %q, want the name and the known names", name, err)
		}
	}
}

func TestReadsBody(t *testing.T) {
	tests := []struct {
		name          string
		request, resp bool
	}{
		{"webhook.request.body", true, false},
		{"webhook.request.body.id", true, false},
		{"webhook.request.body[0].id", true, false},
		{"webhook.response.body", false, true},
		{"webhook.response.body[3]", false, true},
		{"webhook.response.bodyguard", false, false},
		{"webhook.request.header.Content-Length", false, false},
	}
	for _, tt := range tests {
		if got := ReadsRequestBody(tt.name); got != tt.request {
			t.Errorf("ReadsRequestBody(%q) = %v, want %v", tt.name, got, tt.request)
		}
		if got := ReadsResponseBody(tt.name); got != tt.resp {
			t.Errorf("ReadsResponseBody(%q) = %v, want %v", tt.name, got, tt.resp)
		}
	}
}

func TestHeaderObject(t *testing.T) {
	got := headerObject(http.Header{"x-tenant": {"a"}, "X-Tenant": {"b"}, "X-Empty": {}})
	if len(got) != 1 || len(got["X-Tenant"]) != 2 {
		t.Errorf("headerObject = %v, want X-Tenant with both values", got)
	}
	if headerObject(http.Header{"X-Empty": nil}) != nil {
		t.Error("headerObject of fields without values is not nil")
	}
}
