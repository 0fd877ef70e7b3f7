package placeholder

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"
)

func nanValue() float64 { return math.NaN() }

type tenant struct{ ID int }

type stringer struct{}

func (stringer) String() string { return "from String" }

func TestAppendJSONAndFormatText(t *testing.T) {
	at := time.Date(2026, 12, 4, 19, 20, 0, 123000000, time.UTC)
	tests := []struct {
		name string
		in   any
		json string
		text string
	}{
		{name: "nil", in: nil, json: `null`, text: ``},
		{name: "string", in: "a\"b", json: `"a\"b"`, text: `a"b`},
		{name: "bytes", in: []byte("raw"), json: `"raw"`, text: `raw`},
		{name: "true", in: true, json: `true`, text: `true`},
		{name: "int", in: -42, json: `-42`, text: `-42`},
		{name: "uint64 max", in: uint64(math.MaxUint64), json: `18446744073709551615`, text: `18446744073709551615`},
		{name: "float", in: 1.5, json: `1.5`, text: `1.5`},
		{name: "float without fraction", in: 3.0, json: `3`, text: `3`},
		{name: "large float", in: 1e21, json: `1e+21`, text: `1e+21`},
		{name: "small float", in: 1e-7, json: `1e-7`, text: `1e-7`},
		{name: "float32", in: float32(0.1), json: `0.1`, text: `0.1`},
		{name: "NaN", in: math.NaN(), json: `null`, text: ``},
		{name: "infinity", in: math.Inf(-1), json: `null`, text: ``},
		{name: "json number beyond float64", in: json.Number("123456789012345678901234567890.000000000000001"), json: `123456789012345678901234567890.000000000000001`, text: `123456789012345678901234567890.000000000000001`},
		{name: "invalid json number", in: json.Number(`1"}`), json: `"1\"}"`, text: `1"}`},
		{name: "raw object", in: json.RawMessage(`{ "b": 1, "a": [ true ] }`), json: `{"b":1,"a":[true]}`, text: `{"b":1,"a":[true]}`},
		{name: "raw string", in: json.RawMessage(`"x\ny"`), json: `"x\ny"`, text: "x\ny"},
		{name: "raw null", in: json.RawMessage(`null`), json: `null`, text: ``},
		{name: "raw invalid", in: json.RawMessage(`{"a":`), json: `"{\"a\":"`, text: `{"a":`},
		{name: "raw invalid UTF-8", in: json.RawMessage("[\"\xff\"]"), json: "[\"\uFFFD\"]", text: "[\"\uFFFD\"]"},
		{name: "decoded object sorted", in: map[string]any{"b": json.Number("2"), "a": []any{"x", nil}}, json: `{"a":["x",null],"b":2}`, text: `{"a":["x",null],"b":2}`},
		{name: "string slice", in: []string{"a", "b"}, json: `["a","b"]`, text: `["a","b"]`},
		{name: "header map", in: http.Header{"X-A": {"1", "2"}}, json: `{"X-A":["1","2"]}`, text: `{"X-A":["1","2"]}`},
		{name: "int array", in: [2]int{1, 2}, json: `[1,2]`, text: `[1,2]`},
		{name: "unencodable map", in: map[string]chan int{"c": nil}, json: `"map[c:<nil>]"`, text: `map[c:<nil>]`},
		{name: "time", in: at, json: `"2026-12-04T19:20:00.123Z"`, text: `2026-12-04T19:20:00.123Z`},
		{name: "duration", in: 1500 * time.Millisecond, json: `"1.5s"`, text: `1.5s`},
		{name: "error", in: errors.New("boom"), json: `"boom"`, text: `boom`},
		{name: "stringer", in: stringer{}, json: `"from String"`, text: `from String`},
		{name: "struct", in: tenant{ID: 3}, json: `"{3}"`, text: `{3}`},
		{name: "line separators", in: "a\u2028b\u2029", json: `"a\u2028b\u2029"`, text: "a\u2028b\u2029"},
		{name: "control characters", in: "\x00\x1f\t\b\f\r", json: `"\u0000\u001f\t\b\f\r"`, text: "\x00\x1f\t\b\f\r"},
		{name: "HTML characters", in: "<&>", json: `"<&>"`, text: "<&>"},
		{name: "non-ASCII", in: "Grüße 🌍", json: `"Grüße 🌍"`, text: "Grüße 🌍"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendJSON(nil, tt.in)
			if string(got) != tt.json {
				t.Errorf("AppendJSON = %s, want %s", got, tt.json)
			}
			if !json.Valid(got) || !utf8.Valid(got) {
				t.Errorf("AppendJSON = %q is not valid JSON in UTF-8", got)
			}
			if got := FormatText(tt.in); got != tt.text {
				t.Errorf("FormatText = %q, want %q", got, tt.text)
			}
		})
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		"plain", "quote\" backslash\\ tab\t nul\x00 del\x7f", "\xff\xfe invalid", "a\u2028b",
		0.0, -0.0, 1e20, 1e21, 123456789.125, 1e-6, 9.999e-7, -2.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64,
		float32(1e21), float32(3.4e38), float32(1e-7),
		math.MinInt64, int8(-8), uint16(65535),
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%#v): %v", v, err)
		}
		// encoding/json escapes <, > and & by default, AppendJSON does not,
		// and no value here contains them.
		if got := AppendJSON(nil, v); string(got) != string(want) {
			t.Errorf("AppendJSON(%#v) = %s, encoding/json writes %s", v, got, want)
		}
	}
}

func TestValidNumber(t *testing.T) {
	valid := []string{"0", "-0", "1", "-12", "1.5", "0.0", "1e9", "1E+9", "1e-09", "-0.5e10"}
	invalid := []string{"", "-", "+1", "01", "1.", ".5", "1e", "1e+", "0x10", "1_000", "NaN", " 1", "1 "}
	for _, s := range valid {
		if !validNumber(s) {
			t.Errorf("validNumber(%q) = false, want true", s)
		}
		if !json.Valid([]byte(s)) {
			t.Errorf("test case %q is not valid JSON", s)
		}
	}
	for _, s := range invalid {
		if validNumber(s) {
			t.Errorf("validNumber(%q) = true, want false", s)
		}
	}
}
