package payload

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

// templateExchange returns the exchange that the template tests render.
func templateExchange() *Exchange {
	return &Exchange{
		EventID:   "01JEXAMPLE",
		EventType: "order.created",
		Timestamp: time.Date(2026, 12, 4, 19, 20, 0, 123000000, time.UTC),
		Request: Request{
			Method: "POST",
			Host:   "api.example.com",
			Path:   "/orders",
			Query:  url.Values{"tag": {"a", "b"}, "empty": {""}},
			Header: http.Header{"X-Tenant": {"acme"}, "X-Multi": {"a", "b"}},
			Body: []byte(`{"customer": {"name": "Ada \"the\" Countess", "path": "C:\\orders"},` +
				` "note": "line1\nline2\u2028end", "lang": "Grüße 🌍"}`),
			BodyCaptured: true,
		},
		Response: Response{
			Status: 201,
			Header: http.Header{"Location": {"/orders/42"}},
			Body: []byte(`{"id": 42, "total": 12345678901234567890.123456789012,` +
				` "items": [{"sku": "A-1"}, {"sku": "B-2", "qty": 3}], "paid": false, "coupon": null,` +
				` "meta": {"z": 1, "a": "<b>&"}}`),
		},
	}
}

// templateFallback replaces Caddy's request replacer in these tests.
var templateFallback = placeholder.ResolverFunc(func(name string) (any, bool) {
	switch name {
	case "http.request.remote.host":
		return "203.0.113.7", true
	case "time.now":
		return time.Date(2026, 12, 4, 20, 20, 0, 0, time.FixedZone("CET", 3600)), true
	case "http.request.duration_ms":
		return 12.5, true
	case "env.EMPTY":
		return "", true
	}
	return nil, false
})

func TestTemplateRender(t *testing.T) {
	tests := []struct {
		name     string
		template string
		want     string
	}{
		{
			name:     "typed single placeholders",
			template: `{"id": "{webhook.response.body.id}", "status": "{webhook.response.status}", "paid": "{webhook.response.body.paid}"}`,
			want:     `{"id":42,"status":201,"paid":false}`,
		},
		{
			name:     "object and array values",
			template: `{"meta": "{webhook.response.body.meta}", "items": "{webhook.response.body.items}"}`,
			want:     `{"meta":{"a":"<b>&","z":1},"items":[{"sku":"A-1"},{"qty":3,"sku":"B-2"}]}`,
		},
		{
			name:     "event and request fields",
			template: `["{webhook.event.id}", "{webhook.event.type}", "{webhook.request.method}", "{webhook.request.host}", "{webhook.request.path}"]`,
			want:     `["01JEXAMPLE","order.created","POST","api.example.com","/orders"]`,
		},
		{
			name:     "interpolation",
			template: `{"summary": "Order {webhook.response.body.id} by {http.request.remote.host} ({webhook.response.status})"}`,
			want:     `{"summary":"Order 42 by 203.0.113.7 (201)"}`,
		},
		{
			name:     "interpolated object is compact JSON",
			template: `{"text": "items={webhook.response.body.items.1}"}`,
			want:     `{"text":"items={\"qty\":3,\"sku\":\"B-2\"}"}`,
		},
		{
			name:     "interpolated booleans",
			template: `{"text": "paid: {webhook.response.body.paid}"}`,
			want:     `{"text":"paid: false"}`,
		},
		{
			name:     "missing single value is null",
			template: `{"a": "{webhook.response.body.nope}", "b": "{http.request.unknown}", "c": "{webhook.request.header.X-Absent}", "d": "{webhook.request.query.absent}"}`,
			want:     `{"a":null,"b":null,"c":null,"d":null}`,
		},
		{
			name:     "null value is null",
			template: `{"coupon": "{webhook.response.body.coupon}"}`,
			want:     `{"coupon":null}`,
		},
		{
			name:     "missing and null values interpolate as empty",
			template: `{"text": "[{webhook.response.body.nope}|{webhook.response.body.coupon}|{http.request.unknown}]"}`,
			want:     `{"text":"[||]"}`,
		},
		{
			name:     "empty string stays a string",
			template: `{"a": "{env.EMPTY}", "b": "{webhook.request.query.empty}"}`,
			want:     `{"a":"","b":""}`,
		},
		{
			name:     "array with both index forms",
			template: `{"items": ["{webhook.response.body.items.0.sku}", "{webhook.response.body.items[1].sku}", "{webhook.response.body.items[1].qty}"]}`,
			want:     `{"items":["A-1","B-2",3]}`,
		},
		{
			name:     "nested objects",
			template: `{"order": {"id": "{webhook.response.body.id}", "static": {"v": 1, "list": [true, null, "x"]}, "who": {"tenant": "{webhook.request.header.X-Tenant}"}}}`,
			want:     `{"order":{"id":42,"static":{"v":1,"list":[true,null,"x"]},"who":{"tenant":"acme"}}}`,
		},
		{
			name:     "strings with quotes and backslashes",
			template: `{"name": "{webhook.request.body.customer.name}", "text": "Name: {webhook.request.body.customer.name} at {webhook.request.body.customer.path}"}`,
			want:     `{"name":"Ada \"the\" Countess","text":"Name: Ada \"the\" Countess at C:\\orders"}`,
		},
		{
			name:     "newlines and line separators",
			template: `{"note": "{webhook.request.body.note}", "text": "> {webhook.request.body.note}"}`,
			want:     `{"note":"line1\nline2\u2028end","text":"> line1\nline2\u2028end"}`,
		},
		{
			name:     "non-ASCII text",
			template: `{"lang": "{webhook.request.body.lang}", "text": "Ünïcode {webhook.request.body.lang}"}`,
			want:     `{"lang":"Grüße 🌍","text":"Ünïcode Grüße 🌍"}`,
		},
		{
			name:     "numbers beyond float64 precision",
			template: `{"total": "{webhook.response.body.total}", "text": "total {webhook.response.body.total}", "literal": 1.000000000000000000000001}`,
			want:     `{"total":12345678901234567890.123456789012,"text":"total 12345678901234567890.123456789012","literal":1.000000000000000000000001}`,
		},
		{
			name:     "keys with placeholders",
			template: `{"{webhook.request.header.X-Tenant}": "{webhook.response.body.id}", "order-{webhook.response.body.id}": true}`,
			want:     `{"acme":42,"order-42":true}`,
		},
		{
			name:     "key rendering equal to a later key is dropped",
			template: `{"{webhook.request.header.X-Tenant}": 1, "x": 2, "acme": 3}`,
			want:     `{"x":2,"acme":3}`,
		},
		{
			name:     "later key rendering equal wins",
			template: `{"acme": 1, "x": 2, "{webhook.request.header.X-Tenant}": 3}`,
			want:     `{"x":2,"acme":3}`,
		},
		{
			name:     "missing key placeholders render equal",
			template: `{"{http.request.a}": 1, "{http.request.b}": 2}`,
			want:     `{"":2}`,
		},
		{
			name:     "escaped braces are literal",
			template: `{"literal": "\\{webhook.event.id\\}", "mixed": "\\{ {webhook.event.type} \\}", "\\{key\\}": 1}`,
			want:     `{"literal":"{webhook.event.id}","mixed":"{ order.created }","{key}":1}`,
		},
		{
			name:     "unclosed brace is literal",
			template: `{"text": "{webhook.event.type"}`,
			want:     `{"text":"{webhook.event.type"}`,
		},
		{
			name:     "JSON escapes in the template",
			template: `{"text": "tab\there \u00e9 \"q\" \u2029 {webhook.event.type}"}`,
			want:     `{"text":"tab\there é \"q\" \u2029 order.created"}`,
		},
		{
			name:     "HTML characters unescaped",
			template: `{"html": "<a href=\"x\">&</a> {webhook.response.body.meta.a}"}`,
			want:     `{"html":"<a href=\"x\">&</a> <b>&"}`,
		},
		{
			name:     "header fields",
			template: `{"tenant": "{webhook.request.header.x-tenant}", "multi": "{webhook.request.header.X-Multi}", "location": "{webhook.response.header.Location}"}`,
			want:     `{"tenant":"acme","multi":"a, b","location":"/orders/42"}`,
		},
		{
			name:     "query parameter first value",
			template: `{"tag": "{webhook.request.query.tag}"}`,
			want:     `{"tag":"a"}`,
		},
		{
			name:     "fallback values",
			template: `{"at": "{time.now}", "ms": "{http.request.duration_ms}", "text": "at {time.now}"}`,
			want:     `{"at":"2026-12-04T20:20:00+01:00","ms":12.5,"text":"at 2026-12-04T20:20:00+01:00"}`,
		},
		{
			name:     "whole body",
			template: `"{webhook.response.body}"`,
			want:     `{"coupon":null,"id":42,"items":[{"sku":"A-1"},{"qty":3,"sku":"B-2"}],"meta":{"a":"<b>&","z":1},"paid":false,"total":12345678901234567890.123456789012}`,
		},
		{
			name:     "literal template",
			template: "{\n  \"static\": [1, 2.50, \"x\"],\n  \"empty\": {}\n}",
			want:     `{"static":[1,2.50,"x"],"empty":{}}`,
		},
		{
			name:     "literal scalar template",
			template: ` 42 `,
			want:     `42`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := CompileTemplate(json.RawMessage(tt.template))
			if err != nil {
				t.Fatalf("CompileTemplate: %v", err)
			}
			got, err := tmpl.Render(templateExchange().Resolver(templateFallback))
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Render:\n got %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("Render returned invalid JSON: %s", got)
			}
		})
	}
}

func TestTemplateBodies(t *testing.T) {
	const template = `{"whole": "{webhook.response.body}", "id": "{webhook.response.body.id}", "text": "[{webhook.response.body}]", "request": "{webhook.request.body}", "request_id": "{webhook.request.body.id}"}`
	tests := []struct {
		name     string
		request  Request
		response Response
		want     string
	}{
		{
			name:     "truncated JSON body is text and has no paths",
			response: Response{Body: []byte(`{"id": 42, "na`), BodyTruncated: true},
			want:     `{"whole":"{\"id\": 42, \"na","id":null,"text":"[{\"id\": 42, \"na]","request":null,"request_id":null}`,
		},
		{
			name:     "truncated body loses its partial character",
			response: Response{Body: []byte("prix 5 \xe2\x82"), BodyTruncated: true},
			want:     `{"whole":"prix 5 ","id":null,"text":"[prix 5 ]","request":null,"request_id":null}`,
		},
		{
			name:     "text body",
			response: Response{Body: []byte("created\n")},
			want:     `{"whole":"created\n","id":null,"text":"[created\n]","request":null,"request_id":null}`,
		},
		{
			name:     "invalid UTF-8 becomes replacement characters",
			response: Response{Body: []byte("{\"id\": \"\xff\"}")},
			want:     `{"whole":"{\"id\": \"\ufffd\"}","id":null,"text":"[{\"id\": \"\ufffd\"}]","request":null,"request_id":null}`,
		},
		{
			name:     "empty body has no value",
			response: Response{},
			want:     `{"whole":null,"id":null,"text":"[]","request":null,"request_id":null}`,
		},
		{
			name:     "JSON string body",
			response: Response{Body: []byte(`"done"`)},
			want:     `{"whole":"done","id":null,"text":"[done]","request":null,"request_id":null}`,
		},
		{
			name:     "request body not captured",
			request:  Request{Body: []byte(`{"id": 1}`)},
			response: Response{Body: []byte(`{"id": 2}`)},
			want:     `{"whole":{"id":2},"id":2,"text":"[{\"id\":2}]","request":null,"request_id":null}`,
		},
		{
			name:     "request body captured",
			request:  Request{Body: []byte(`{"id": 1}`), BodyCaptured: true},
			response: Response{Body: []byte(`[{"id": 2}]`)},
			want:     `{"whole":[{"id":2}],"id":null,"text":"[[{\"id\":2}]]","request":{"id":1},"request_id":1}`,
		},
	}
	tmpl, err := CompileTemplate(json.RawMessage(template))
	if err != nil {
		t.Fatalf("CompileTemplate: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &Exchange{Request: tt.request, Response: tt.response}
			got, err := tmpl.Render(x.Resolver(nil))
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Render:\n got %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) || !utf8.Valid(got) {
				t.Errorf("Render returned invalid JSON or UTF-8: %q", got)
			}
		})
	}
}

func TestTemplateTopLevelArrayBody(t *testing.T) {
	tmpl, err := CompileTemplate(json.RawMessage(`["{webhook.response.body[1].id}", "{webhook.response.body.0.id}"]`))
	if err != nil {
		t.Fatalf("CompileTemplate: %v", err)
	}
	x := &Exchange{Response: Response{Body: []byte(`[{"id": "first"}, {"id": "second"}]`)}}
	got, err := tmpl.Render(x.Resolver(nil))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if want := `["second","first"]`; string(got) != want {
		t.Errorf("Render = %s, want %s", got, want)
	}
}

func TestTemplateRenderNilResolver(t *testing.T) {
	tmpl, err := CompileTemplate(json.RawMessage(`{"a": "{webhook.event.id}", "b": "x{webhook.event.id}y", "{webhook.event.type}": 1}`))
	if err != nil {
		t.Fatalf("CompileTemplate: %v", err)
	}
	got, err := tmpl.Render(nil)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if want := `{"a":null,"b":"xy","":1}`; string(got) != want {
		t.Errorf("Render(nil) = %s, want %s", got, want)
	}
}

func TestTemplateManyDynamicKeys(t *testing.T) {
	// More members than lastIndexes searches directly, so that its map is
	// used: every key renders empty, and the last member wins.
	var members []string
	for i := range 40 {
		members = append(members, `"{http.request.k`+strings.Repeat("x", i)+`}": `+strings.Repeat("1", i+1))
	}
	tmpl, err := CompileTemplate(json.RawMessage("{" + strings.Join(members, ",") + `, "kept": true}`))
	if err != nil {
		t.Fatalf("CompileTemplate: %v", err)
	}
	got, err := tmpl.Render(nil)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if want := `{"":` + strings.Repeat("1", 40) + `,"kept":true}`; string(got) != want {
		t.Errorf("Render = %s, want %s", got, want)
	}
}

func TestTemplateNames(t *testing.T) {
	tmpl, err := CompileTemplate(json.RawMessage(`{
		"{webhook.request.header.X-Tenant}": "{webhook.response.body.id}",
		"summary": "{webhook.response.body.id} by {http.request.remote.host}",
		"items": ["{webhook.request.body[0].sku}", 1, "\\{not.a.placeholder\\}"]
	}`))
	if err != nil {
		t.Fatalf("CompileTemplate: %v", err)
	}
	want := []string{"webhook.request.header.X-Tenant", "webhook.response.body.id", "http.request.remote.host", "webhook.request.body[0].sku"}
	got := tmpl.Names()
	if !slices.Equal(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	got[0] = "changed"
	if tmpl.Names()[0] != want[0] {
		t.Error("changing the slice from Names changed the template")
	}
}

func TestCompileTemplateErrors(t *testing.T) {
	tests := []struct {
		name     string
		template string
		want     []string // substrings of the error
	}{
		{name: "empty", template: " \n", want: []string{"empty template"}},
		{name: "unquoted placeholder", template: "{\n  \"id\": {webhook.response.body.id}\n}", want: []string{"line 2, column 10", "offset 11", `write the placeholder as a JSON string in double quotes, such as "{webhook.response.body.id}"`}},
		{name: "unquoted key", template: `{id: 1}`, want: []string{"line 1, column 2", "write strings and keys in double quotes"}},
		{name: "single quotes", template: `{'id': 1}`, want: []string{"line 1, column 2", "double quotes"}},
		{name: "trailing comma", template: `{"a": 1,}`, want: []string{"column 9", "remove the comma before it"}},
		{name: "trailing comma in array", template: `[1, 2, ]`, want: []string{"column 8", "remove the comma before it"}},
		{name: "unclosed object", template: `{"a": 1`, want: []string{"line 1, column 8", "close every string, object and array"}},
		{name: "raw line break in string", template: "{\"a\": \"x\ny\"}", want: []string{"line 1, column 9", `write line breaks and tabs in strings as \n`}},
		{name: "Caddy escape not doubled", template: `{"a": "\{x\}"}`, want: []string{"column 9", `a literal brace for Caddy is written \\{`}},
		{name: "two values", template: `{"a": 1} {"b": 2}`, want: []string{"column 10", "the template must be one JSON value"}},
		{name: "missing colon", template: `{"a" 1}`, want: []string{"put a colon after each key"}},
		{name: "missing comma", template: `{"a": 1 "b": 2}`, want: []string{"separate members and elements with commas"}},
		{name: "duplicate key", template: "{\"a\": 1,\n \"b\": {\"c\": 1, \"c\": 2}}", want: []string{`duplicate key "c"`, "line 2, column 16", "remove one of the members"}},
		{name: "duplicate key after unescaping", template: `{"\\{a": 1, "\\{a": 2}`, want: []string{`duplicate key "{a"`}},
		{name: "misspelled placeholder", template: `{"id": "{webhook.respons.body.id}"}`, want: []string{"line 1, column 8", "unknown placeholder {webhook.respons.body.id}", "webhook.response.body.<path>"}},
		{name: "empty path part", template: `{"id": "x {webhook.response.body.items..id}"}`, want: []string{"unknown placeholder {webhook.response.body.items..id}"}},
		{name: "placeholder in key checked", template: `{"{webhook.request.header.}": 1}`, want: []string{"unknown placeholder {webhook.request.header.}"}},
		{name: "too many unclosed braces", template: `{"a": "` + strings.Repeat("{", 102) + `"}`, want: []string{"line 1, column 7", "too many unclosed placeholders", `escape literal braces as \\{`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileTemplate(json.RawMessage(tt.template))
			if err == nil {
				t.Fatalf("CompileTemplate(%q) succeeded, want an error", tt.template)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestCompileTemplateTooManyUnclosedIsParseError(t *testing.T) {
	_, err := CompileTemplate(json.RawMessage(`"` + strings.Repeat("{", 102) + `"`))
	if !errors.Is(err, placeholder.ErrTooManyUnclosed) {
		t.Errorf("CompileTemplate error %v, want placeholder.ErrTooManyUnclosed", err)
	}
}

func TestWithTemplate(t *testing.T) {
	x := &Exchange{
		EventType: "order.created",
		Timestamp: time.Date(2026, 12, 4, 20, 20, 0, 123456789, time.FixedZone("CET", 3600)),
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{name: "object", data: `{"id": 42}`, want: `{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z","data":{"id":42}}`},
		{name: "empty is null", data: ``, want: `{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z","data":null}`},
		{name: "HTML and separators kept", data: `"<&>\u2028"`, want: `{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z","data":"<&>\u2028"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WithTemplate(x, json.RawMessage(tt.data))
			if err != nil {
				t.Fatalf("WithTemplate: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("WithTemplate:\n got %s\nwant %s", got, tt.want)
			}
		})
	}

	if _, err := WithTemplate(x, json.RawMessage(`{"id":`)); err == nil {
		t.Error("WithTemplate accepted invalid data")
	}
}

func TestTemplateRenderConcurrent(t *testing.T) {
	tmpl, err := CompileTemplate(json.RawMessage(`{"{webhook.request.header.X-Tenant}": "{webhook.response.body.id}", "s": "a {webhook.response.body.items.0.sku}"}`))
	if err != nil {
		t.Fatalf("CompileTemplate: %v", err)
	}
	resolver := templateExchange().Resolver(nil)
	const want = `{"acme":42,"s":"a A-1"}`
	results := make(chan string, 8)
	for range cap(results) {
		go func() {
			got, _ := tmpl.Render(resolver)
			results <- string(got)
		}()
	}
	for range cap(results) {
		if got := <-results; got != want {
			t.Errorf("Render = %s, want %s", got, want)
		}
	}
}
