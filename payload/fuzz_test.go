package payload

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDefault renders envelopes from arbitrary exchanges. Every envelope
// must be valid JSON, and its body must be the captured body in the
// encoding that Default documents.
func FuzzDefault(f *testing.F) {
	f.Add("POST", "api.example.com", "/orders", "a=1&b=2", 201, []byte(`{"id":42}`), false, int64(1796410800123))
	f.Add("GET", "", "/", "", 200, []byte("plain text"), false, int64(0))
	f.Add("PUT", "h", "/x", "q=%ff", 500, []byte{0xff, 0xfe, 0x00}, false, int64(-1))
	f.Add("POST", "h", "/x", "", 200, []byte(`{"long":"é`), true, int64(1))
	f.Add("POST", "h", "/x", "", 200, []byte(`{"n":1e400}`), false, int64(1))
	f.Add("\xff", "\xfe", "/\x00", "\x01=\x02", 0, []byte(""), true, int64(253402300800000))
	f.Add("POST", "h", "/x", "", 200, []byte("\u2028<&>\u2029"), false, int64(1))
	f.Add("POST", "h", "/x", "", 200, []byte(`"<script>\u2028"`), false, int64(1))

	f.Fuzz(func(t *testing.T, method, host, path, rawQuery string, status int, body []byte, truncated bool, unixMilli int64) {
		query, _ := url.ParseQuery(rawQuery)
		x := &Exchange{
			EventID:   "01J00000000000000000000000",
			EventType: "order.created",
			Timestamp: time.UnixMilli(unixMilli),
			Request:   Request{Method: method, Host: host, Path: path, Query: query},
			Response:  Response{Status: status, Body: body, BodyTruncated: truncated},
		}
		out, err := Default(x)
		if err != nil {
			t.Fatalf("Default: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("Default returned invalid JSON: %q", out)
		}

		var env struct {
			Type string `json:"type"`
			Data struct {
				Request struct {
					Method string `json:"method"`
				} `json:"request"`
				Response struct {
					Status        int             `json:"status"`
					Body          json.RawMessage `json:"body"`
					BodyEncoding  string          `json:"body_encoding"`
					BodyTruncated bool            `json:"body_truncated"`
				} `json:"response"`
			} `json:"data"`
		}
		if err := json.Unmarshal(out, &env); err != nil {
			t.Fatalf("decoding envelope %q: %v", out, err)
		}
		resp := env.Data.Response
		if env.Type != x.EventType || resp.Status != status || resp.BodyTruncated != truncated {
			t.Fatalf("envelope %q does not carry type %q, status %d and truncated %v", out, x.EventType, status, truncated)
		}
		if utf8.ValidString(method) && env.Data.Request.Method != method {
			t.Fatalf("method = %q, want %q", env.Data.Request.Method, method)
		}
		checkBody(t, body, truncated, resp.Body, resp.BodyEncoding)
	})
}

// checkBody checks that the envelope's body field is the captured body in
// the encoding that Default documents.
func checkBody(t *testing.T, body []byte, truncated bool, field json.RawMessage, encoding string) {
	t.Helper()
	if len(body) == 0 {
		if field != nil || encoding != "" {
			t.Fatalf("empty body rendered as %s with encoding %q, want no body field", field, encoding)
		}
		return
	}

	if !truncated && utf8.Valid(body) && json.Valid(body) {
		if encoding != "" {
			t.Fatalf("JSON body has encoding %q, want none", encoding)
		}
		if !reflect.DeepEqual(decodeJSON(t, body), decodeJSON(t, field)) {
			t.Fatalf("embedded body %s differs from the captured %s", field, body)
		}
		return
	}

	var value string
	if err := json.Unmarshal(field, &value); err != nil {
		t.Fatalf("body field %s is not a string: %v", field, err)
	}
	if encoding == BodyEncodingBase64 {
		decoded, err := base64.StdEncoding.DecodeString(value)
		if err != nil || !bytes.Equal(decoded, body) {
			t.Fatalf("base64 body %q does not decode to the captured %q", value, body)
		}
		text := body
		if truncated {
			text = trimPartialRune(body)
		}
		if utf8.Valid(text) {
			t.Fatalf("valid UTF-8 text %q was sent as base64", body)
		}
		return
	}
	if encoding != "" {
		t.Fatalf("unknown body encoding %q", encoding)
	}
	want := body
	if truncated {
		want = trimPartialRune(body)
	}
	if value != string(want) {
		t.Fatalf("text body %q, want %q", value, want)
	}
}

func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
}
