package payload

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

// FuzzTemplateRender compiles templates and renders them with an exchange
// whose bodies, header fields and query come from the fuzz input. A
// compiled template must render without error to valid JSON in UTF-8, the
// same bytes every time, and the value that referenceRender computes.
func FuzzTemplateRender(f *testing.F) {
	f.Add(`{"id": "{webhook.response.body.id}", "text": "Order {webhook.response.body.id}"}`, `{"id": 42}`)
	f.Add(`{"{webhook.request.header.X-Body}": "{webhook.request.body}", "x": 1}`, `x`)
	f.Add(`["{webhook.response.body.items[0]}", "{webhook.response.body.items.1.sku}", "{fuzz.raw}"]`, `{"items": [1, {"sku": "\u2028"}]}`)
	f.Add(`{"a": "{fuzz.number}", "b": "n={fuzz.number}", "c": "{fuzz.float}"}`, `1e999`)
	f.Add(`"{webhook.request.query.q} {fuzz.bytes} \\{x\\}"`, "\xff\"\\\n")
	f.Add(`{"{fuzz.text}": 1, "{fuzz.bytes}": 2, "": 3}`, "")

	f.Fuzz(func(t *testing.T, template, body string) {
		tmpl, err := CompileTemplate(json.RawMessage(template))
		if err != nil {
			return
		}
		x := fuzzExchange(body)
		r := x.Resolver(fuzzFallback(body))

		out, err := tmpl.Render(r)
		if err != nil {
			t.Fatalf("Render of compiled template %q: %v", template, err)
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("Render of %q with body %q returned invalid JSON or UTF-8: %q", template, body, out)
		}
		again, _ := tmpl.Render(r)
		if !bytes.Equal(out, again) {
			t.Fatalf("Render of %q is not deterministic:\n%s\n%s", template, out, again)
		}

		got := decodeForFuzz(t, out)
		want := referenceRender(t, template, r)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Render of %q with body %q:\n got %#v\nwant %#v", template, body, got, want)
		}

		env, err := WithTemplate(x, out)
		if err != nil {
			t.Fatalf("WithTemplate(%s): %v", out, err)
		}
		if !json.Valid(env) {
			t.Fatalf("WithTemplate returned invalid JSON: %q", env)
		}
	})
}

// fuzzExchange builds an exchange whose request and response carry body
// in several places. The request body is cut in half and marked truncated
// when body has an odd length.
func fuzzExchange(body string) *Exchange {
	requestBody, truncated := []byte(body), len(body)%2 == 1
	if truncated {
		requestBody = requestBody[:len(body)/2]
	}
	return &Exchange{
		EventID:   "01J00000000000000000000000",
		EventType: "order.created",
		Timestamp: time.UnixMilli(1796410800123),
		Request: Request{
			Method:        "POST",
			Host:          "api.example.com",
			Path:          "/orders/" + body,
			Query:         url.Values{"q": {body}},
			Header:        http.Header{"X-Body": {body}, "X-Split": strings.Split(body, ",")},
			Body:          requestBody,
			BodyTruncated: truncated,
			BodyCaptured:  true,
		},
		Response: Response{
			Status: 201,
			Header: http.Header{"X-Body": {body}},
			Body:   []byte(body),
		},
	}
}

// fuzzFallback resolves fuzz.* names to values of many Go types made from
// body, as a fallback resolver such as Caddy's may return them.
func fuzzFallback(body string) placeholder.Resolver {
	return placeholder.ResolverFunc(func(name string) (any, bool) {
		switch name {
		case "fuzz.text":
			return body, true
		case "fuzz.bytes":
			return []byte(body), true
		case "fuzz.raw":
			return json.RawMessage(body), true
		case "fuzz.number":
			return json.Number(body), true
		case "fuzz.float":
			if body == "" {
				return math.NaN(), true
			}
			return float64(len(body)) / 3, true
		case "fuzz.list":
			return []string{body, body}, true
		case "fuzz.null":
			return nil, true
		}
		return nil, false
	})
}

// referenceRender computes the rendered template as a decoded JSON value.
// It walks the template's tokens without the compiler. A single
// placeholder becomes its value as encoding/json encodes it, other strings
// become their rendered text, and the last of object members with equal
// keys stays.
func referenceRender(t *testing.T, template string, r placeholder.Resolver) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(template))
	dec.UseNumber()
	return referenceValue(t, dec, r)
}

func referenceValue(t *testing.T, dec *json.Decoder, r placeholder.Resolver) any {
	t.Helper()
	tok, err := dec.Token()
	if err != nil {
		t.Fatalf("reading a compiled template: %v", err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			items := []any{}
			for dec.More() {
				items = append(items, referenceValue(t, dec, r))
			}
			dec.Token()
			return items
		}
		members := map[string]any{}
		for dec.More() {
			keyTok, _ := dec.Token()
			key := referenceText(t, keyTok.(string), r)
			members[key] = referenceValue(t, dec, r)
		}
		dec.Token()
		return members
	case string:
		text, err := placeholder.Parse(tok)
		if err != nil {
			t.Fatalf("parsing %q of a compiled template: %v", tok, err)
		}
		if name, ok := text.Single(); ok {
			v, ok := r.Resolve(name)
			if !ok {
				return nil
			}
			return referenceJSON(t, v)
		}
		return referenceText(t, tok, r)
	}
	return tok // json.Number, bool or nil
}

// referenceText renders s as text, with invalid UTF-8 replaced as JSON
// encoding replaces it.
func referenceText(t *testing.T, s string, r placeholder.Resolver) string {
	t.Helper()
	text, err := placeholder.Parse(s)
	if err != nil {
		t.Fatalf("parsing %q of a compiled template: %v", s, err)
	}
	var b strings.Builder
	for _, c := range text.Render(r) { // a range over a string yields U+FFFD for each invalid byte
		b.WriteRune(c)
	}
	return b.String()
}

// referenceJSON returns v as encoding/json encodes it and decodes it again,
// with the documented exceptions of placeholder.AppendJSON for values that
// encoding/json rejects.
func referenceJSON(t *testing.T, v any) any {
	t.Helper()
	switch v := v.(type) {
	case []byte:
		return referenceJSON(t, string(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
	case json.Number:
		// encoding/json writes an empty json.Number as 0, AppendJSON as "".
		if _, err := json.Marshal(v); err != nil || v == "" {
			return referenceJSON(t, string(v))
		}
	case json.RawMessage:
		if !json.Valid(v) {
			return referenceJSON(t, string(v))
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %#v: %v", v, err)
	}
	return decodeForFuzz(t, data)
}

func decodeForFuzz(t *testing.T, data []byte) any {
	t.Helper()
	v, err := decodeValue(data)
	if err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
	return v
}
