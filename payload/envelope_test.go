package payload

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// referenceEnvelope builds the default envelope with encoding/json, the way
// Default documents it, as the reference for Default's own encoder.
func referenceEnvelope(t testing.TB, x *Exchange) []byte {
	t.Helper()
	body := func(b []byte, truncated bool) (any, string) {
		if len(b) == 0 {
			return nil, ""
		}
		if !truncated && utf8.Valid(b) && json.Valid(b) {
			return json.RawMessage(b), ""
		}
		text := b
		if truncated {
			text = trimPartialRune(b)
		}
		if utf8.Valid(text) {
			return string(text), ""
		}
		return base64.StdEncoding.EncodeToString(b), BodyEncodingBase64
	}

	query := x.Request.Query
	if query == nil {
		query = url.Values{}
	}
	request := map[string]any{
		"method": x.Request.Method,
		"host":   x.Request.Host,
		"path":   x.Request.Path,
		"query":  map[string][]string(query),
	}
	if h := headerObject(x.Request.Header); len(h) > 0 {
		request["headers"] = h
	}
	if x.Request.BodyCaptured {
		b, encoding := body(x.Request.Body, x.Request.BodyTruncated)
		if b != nil {
			request["body"] = b
		}
		if encoding != "" {
			request["body_encoding"] = encoding
		}
		if x.Request.BodyTruncated {
			request["body_truncated"] = true
		}
	}
	response := map[string]any{"status": x.Response.Status}
	if h := headerObject(x.Response.Header); len(h) > 0 {
		response["headers"] = h
	}
	b, encoding := body(x.Response.Body, x.Response.BodyTruncated)
	if b != nil {
		response["body"] = b
	}
	if encoding != "" {
		response["body_encoding"] = encoding
	}
	if x.Response.BodyTruncated {
		response["body_truncated"] = true
	}

	// Maps sort their keys, so the members are written in Default's order
	// one by one.
	out := []byte(`{"type":`)
	out = append(out, mustMarshal(t, x.EventType)...)
	out = append(out, `,"timestamp":`...)
	out = append(out, mustMarshal(t, x.Timestamp.UTC().Format(TimestampLayout))...)
	out = append(out, `,"data":{"request":`...)
	out = appendMembers(t, out, request, "method", "host", "path", "query", "headers", "body", "body_encoding", "body_truncated")
	out = append(out, `,"response":`...)
	out = appendMembers(t, out, response, "status", "headers", "body", "body_encoding", "body_truncated")
	return append(out, "}}"...)
}

func appendMembers(t testing.TB, out []byte, members map[string]any, order ...string) []byte {
	out = append(out, '{')
	first := true
	for _, name := range order {
		value, ok := members[name]
		if !ok {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, mustMarshal(t, name)...)
		out = append(out, ':')
		out = append(out, mustMarshal(t, value)...)
	}
	return append(out, '}')
}

// mustMarshal encodes v with encoding/json and HTML escaping off.
func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	out, err := marshal(v)
	if err != nil {
		t.Fatalf("encoding %#v: %v", v, err)
	}
	return out
}

func TestDefaultMatchesEncodingJSON(t *testing.T) {
	observed := time.Date(2026, 12, 4, 19, 20, 0, 123_000_000, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		x    Exchange
	}{
		{"empty", Exchange{}},
		{"json body with spaces", Exchange{Response: Response{Status: 201, Body: []byte(" {\"id\" : 42,\n \"tags\": [ \"a\" ] } ")}}},
		{"html characters", Exchange{EventType: "a<b>&c", Response: Response{Body: []byte(`{"html":"<b>&amp;</b>"}`)}}},
		{"line separators", Exchange{Request: Request{Path: "/\u2028\u2029"}, Response: Response{Body: []byte("\u2028 text \u2029")}}},
		{"control characters", Exchange{Request: Request{Host: "\x00\x01\b\f\n\r\t\x1f\x7f\"\\"}}},
		{"invalid utf-8 in strings", Exchange{Request: Request{Method: "\xff", Query: url.Values{"\xfe": {"\xc3"}}}}},
		{"binary body", Exchange{Response: Response{Body: []byte{0x89, 'P', 'N', 'G', 0, 0xff}}}},
		{"json with invalid utf-8", Exchange{Response: Response{Body: []byte("{\"a\":\"\xff\"}")}}},
		{"invalid json", Exchange{Response: Response{Body: []byte(`{"a":`)}}},
		{"truncated json", Exchange{Response: Response{Body: []byte(`{"a":"é`[:8]), BodyTruncated: true}}},
		{"truncated to nothing", Exchange{Response: Response{Body: []byte("é")[:1], BodyTruncated: true}}},
		{"truncated empty", Exchange{Response: Response{BodyTruncated: true}}},
		{"query with nil and empty values", Exchange{Request: Request{Query: url.Values{"b": nil, "a": {}, "c": {"1", "2"}}}}},
		{"headers merged and sorted", Exchange{
			Request:  Request{Header: http.Header{"x-b": {"1"}, "X-B": {"2"}, "X-A": {"3"}, "X-Empty": {}}},
			Response: Response{Status: 500, Header: http.Header{"Content-Type": {"application/json"}}},
		}},
		{"request body captured", Exchange{Request: Request{BodyCaptured: true, Body: []byte(`[1, 2]`)}}},
		{"request body captured, empty and truncated", Exchange{Request: Request{BodyCaptured: true, BodyTruncated: true}}},
		{"request body not captured", Exchange{Request: Request{Body: []byte(`ignored`), BodyTruncated: true}}},
		{"negative status", Exchange{Response: Response{Status: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := tt.x
			if x.EventType == "" {
				x.EventType = "order.created"
			}
			x.Timestamp = observed
			got, err := Default(&x)
			if err != nil {
				t.Fatalf("Default: %v", err)
			}
			if want := referenceEnvelope(t, &x); string(got) != string(want) {
				t.Errorf("Default =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// FuzzDefaultMatchesEncodingJSON checks that Default writes the same bytes
// as encoding/json for arbitrary exchanges.
func FuzzDefaultMatchesEncodingJSON(f *testing.F) {
	f.Add("POST", "/orders", "a=1&b=2", "X-Id", "7", 201, []byte(`{"id":42}`), false, []byte(nil), true)
	f.Add("\xff", "/\x00", "\x01=\x02", "x\u2028", "\x7f", 0, []byte("\u2028<&>\u2029"), true, []byte(`{"a": 1}`), false)
	f.Add("GET", "/", "", "", "", 200, []byte{0xff, 0xfe}, false, []byte("é"), true)
	f.Fuzz(func(t *testing.T, method, path, rawQuery, headerName, headerValue string, status int, body []byte, truncated bool, requestBody []byte, captured bool) {
		query, _ := url.ParseQuery(rawQuery)
		x := &Exchange{
			EventType: "order.created",
			Timestamp: time.UnixMilli(1796410800123),
			Request: Request{
				Method: method, Path: path, Query: query,
				Header:       http.Header{headerName: {headerValue}},
				Body:         requestBody,
				BodyCaptured: captured,
			},
			Response: Response{Status: status, Body: body, BodyTruncated: truncated},
		}
		got, err := Default(x)
		if err != nil {
			t.Fatalf("Default: %v", err)
		}
		if want := referenceEnvelope(t, x); string(got) != string(want) {
			t.Errorf("Default =\n%q\nwant\n%q", got, want)
		}
	})
}

func TestHeaderObjectMergeOrder(t *testing.T) {
	h := http.Header{"x-b": {"1"}, "X-B": {"2"}, "X-b": {"3"}, "X-A": {"4"}}
	// Map iteration order varies from run to run, so several runs would
	// show a result that depends on it.
	for range 20 {
		got := headerObject(h)
		if want := []string{"2", "3", "1"}; !slices.Equal(got["X-B"], want) {
			t.Fatalf("X-B = %q, want %q in the byte order of the field names", got["X-B"], want)
		}
		if want := []string{"4"}; !slices.Equal(got["X-A"], want) {
			t.Fatalf("X-A = %q, want %q", got["X-A"], want)
		}
	}
}
