package payload

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestDefaultEnvelope(t *testing.T) {
	observed := time.Date(2026, 12, 4, 20, 20, 0, 123456789, time.FixedZone("CET", 3600))
	x := &Exchange{
		EventID:   "01JEXAMPLE",
		EventType: "order.created",
		Timestamp: observed,
		Request: Request{
			Method: "POST",
			Host:   "api.example.com",
			Path:   "/orders",
		},
		Response: Response{Status: 201, Body: []byte(`{"id": 42}`)},
	}

	got, err := Default(x)
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	want := `{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z",` +
		`"data":{"request":{"method":"POST","host":"api.example.com","path":"/orders","query":{}},` +
		`"response":{"status":201,"body":{"id":42}}}}`
	if string(got) != want {
		t.Errorf("envelope:\n got %s\nwant %s", got, want)
	}
}

func TestDefaultQuery(t *testing.T) {
	query, err := url.ParseQuery("tag=a&tag=b&page=2&empty=")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Default(&Exchange{
		EventType: "order.listed",
		Request:   Request{Method: "GET", Path: "/orders", Query: query},
		Response:  Response{Status: 200},
	})
	if err != nil {
		t.Fatalf("Default: %v", err)
	}

	var env struct {
		Data struct {
			Request struct {
				Query map[string][]string `json:"query"`
			} `json:"request"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got, &env); err != nil {
		t.Fatalf("decoding %s: %v", got, err)
	}
	want := map[string][]string{"tag": {"a", "b"}, "page": {"2"}, "empty": {""}}
	if len(env.Data.Request.Query) != len(want) {
		t.Fatalf("query = %v, want %v", env.Data.Request.Query, want)
	}
	for k, v := range want {
		if strings.Join(env.Data.Request.Query[k], ",") != strings.Join(v, ",") {
			t.Errorf("query[%q] = %q, want %q", k, env.Data.Request.Query[k], v)
		}
	}
}

func TestDefaultValuesAreEncoded(t *testing.T) {
	got, err := Default(&Exchange{
		EventType: "order.created",
		Request:   Request{Method: "POST", Host: `evil"}`, Path: "/a\"b<c>"},
		Response:  Response{Status: 201, Body: []byte(`not json", "injected": true`)},
	})
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	var env map[string]any
	if err := json.Unmarshal(got, &env); err != nil {
		t.Fatalf("envelope is not valid JSON: %v\n%s", err, got)
	}
	if len(env) != 3 {
		t.Errorf("envelope has keys %v, want type, timestamp and data", env)
	}
	if !bytes.Contains(got, []byte(`"path":"/a\"b<c>"`)) {
		t.Errorf("path not encoded as a JSON string without HTML escaping: %s", got)
	}
}

func TestDefaultBody(t *testing.T) {
	binary := []byte{0xff, 0xfe, 0x00, 0x01}
	tests := []struct {
		name      string
		body      []byte
		truncated bool
		want      string // the "response" object
	}{
		{
			name: "empty",
			want: `{"status":200}`,
		},
		{
			name: "json object",
			body: []byte("{\n  \"id\": 42,\n  \"tags\": [\"a\"]\n}\n"),
			want: `{"status":200,"body":{"id":42,"tags":["a"]}}`,
		},
		{
			name: "json number",
			body: []byte(`42`),
			want: `{"status":200,"body":42}`,
		},
		{
			name: "text",
			body: []byte("created <order> & done\n"),
			want: `{"status":200,"body":"created <order> & done\n"}`,
		},
		{
			name: "invalid json is text",
			body: []byte(`{"id": 42`),
			want: `{"status":200,"body":"{\"id\": 42"}`,
		},
		{
			name: "json with invalid utf-8 is base64",
			body: []byte("\"\xff\""),
			want: `{"status":200,"body":"` + base64.StdEncoding.EncodeToString([]byte("\"\xff\"")) + `","body_encoding":"base64"}`,
		},
		{
			name: "binary",
			body: binary,
			want: `{"status":200,"body":"` + base64.StdEncoding.EncodeToString(binary) + `","body_encoding":"base64"}`,
		},
		{
			name:      "truncated json is text",
			body:      []byte(`{"id": 42, "na`),
			truncated: true,
			want:      `{"status":200,"body":"{\"id\": 42, \"na","body_truncated":true}`,
		},
		{
			name:      "truncated text cut at rune boundary",
			body:      []byte("prix 5 \xe2\x82"), // "€" cut after two of its three bytes
			truncated: true,
			want:      `{"status":200,"body":"prix 5 ","body_truncated":true}`,
		},
		{
			name:      "truncated text ending in full rune",
			body:      []byte("prix 5 €"),
			truncated: true,
			want:      `{"status":200,"body":"prix 5 €","body_truncated":true}`,
		},
		{
			name:      "truncated binary",
			body:      binary,
			truncated: true,
			want:      `{"status":200,"body":"` + base64.StdEncoding.EncodeToString(binary) + `","body_encoding":"base64","body_truncated":true}`,
		},
		{
			name:      "truncated with nothing captured",
			truncated: true,
			want:      `{"status":200,"body_truncated":true}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Default(&Exchange{
				EventType: "test.body",
				Response:  Response{Status: 200, Body: tt.body, BodyTruncated: tt.truncated},
			})
			if err != nil {
				t.Fatalf("Default: %v", err)
			}
			var env struct {
				Data struct {
					Response json.RawMessage `json:"response"`
				} `json:"data"`
			}
			if err := json.Unmarshal(got, &env); err != nil {
				t.Fatalf("decoding %s: %v", got, err)
			}
			if string(env.Data.Response) != tt.want {
				t.Errorf("response:\n got %s\nwant %s", env.Data.Response, tt.want)
			}
		})
	}
}

func TestTrimPartialRune(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"ascii", "abc", "abc"},
		{"complete two-byte rune", "caf\xc3\xa9", "caf\xc3\xa9"},
		{"one byte of two", "caf\xc3", "caf"},
		{"two bytes of four", "ok \xf0\x9f", "ok "},
		{"three bytes of four", "ok \xf0\x9f\x98", "ok "},
		{"complete four-byte rune", "ok \xf0\x9f\x98\x80", "ok \xf0\x9f\x98\x80"},
		{"lone continuation bytes", "\x80\x80\x80\x80\x80", "\x80\x80\x80\x80\x80"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(trimPartialRune([]byte(tt.in))); got != tt.want {
				t.Errorf("trimPartialRune(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDefaultHeadersAndRequestBody(t *testing.T) {
	tests := []struct {
		name     string
		request  Request
		response Response
		want     string // the "data" object
	}{
		{
			name:     "nothing captured",
			request:  Request{Method: "POST", Path: "/orders"},
			response: Response{Status: 201},
			want:     `{"request":{"method":"POST","host":"","path":"/orders","query":{}},"response":{"status":201}}`,
		},
		{
			name:     "headers",
			request:  Request{Method: "POST", Header: http.Header{"X-Tenant": {"acme"}, "x-trace": {"1", "2"}}},
			response: Response{Status: 201, Header: http.Header{"Location": {"/orders/42"}}},
			want: `{"request":{"method":"POST","host":"","path":"","query":{},"headers":{"X-Tenant":["acme"],"X-Trace":["1","2"]}},` +
				`"response":{"status":201,"headers":{"Location":["/orders/42"]}}}`,
		},
		{
			name:     "header fields without values",
			request:  Request{Method: "GET", Header: http.Header{"X-Empty": {}}},
			response: Response{Status: 200, Header: http.Header{}},
			want:     `{"request":{"method":"GET","host":"","path":"","query":{}},"response":{"status":200}}`,
		},
		{
			name:     "JSON request body",
			request:  Request{Method: "POST", Body: []byte(`{"sku": "A-1"}`), BodyCaptured: true},
			response: Response{Status: 201, Body: []byte(`{"id":42}`)},
			want:     `{"request":{"method":"POST","host":"","path":"","query":{},"body":{"sku":"A-1"}},"response":{"status":201,"body":{"id":42}}}`,
		},
		{
			name:     "truncated request body",
			request:  Request{Method: "POST", Body: []byte(`{"sku": "A`), BodyTruncated: true, BodyCaptured: true},
			response: Response{Status: 201},
			want:     `{"request":{"method":"POST","host":"","path":"","query":{},"body":"{\"sku\": \"A","body_truncated":true},"response":{"status":201}}`,
		},
		{
			name:     "binary request body",
			request:  Request{Method: "PUT", Body: []byte{0xff, 0x00}, BodyCaptured: true},
			response: Response{Status: 204},
			want:     `{"request":{"method":"PUT","host":"","path":"","query":{},"body":"/wA=","body_encoding":"base64"},"response":{"status":204}}`,
		},
		{
			name:     "request body not captured is left out",
			request:  Request{Method: "POST", Body: []byte(`{"sku": "A-1"}`), BodyTruncated: true},
			response: Response{Status: 201},
			want:     `{"request":{"method":"POST","host":"","path":"","query":{}},"response":{"status":201}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Default(&Exchange{EventType: "order.created", Request: tt.request, Response: tt.response})
			if err != nil {
				t.Fatalf("Default: %v", err)
			}
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(got, &env); err != nil {
				t.Fatalf("decoding %s: %v", got, err)
			}
			if string(env.Data) != tt.want {
				t.Errorf("data:\n got %s\nwant %s", env.Data, tt.want)
			}
		})
	}
}
