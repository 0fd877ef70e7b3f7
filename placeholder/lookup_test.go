package placeholder

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestLookup(t *testing.T) {
	doc := decodeForTest(t, `{
		"id": 42,
		"big": 123456789012345678901234567890,
		"customer": {"name": "Ada", "tags": ["vip", "eu"]},
		"items": [{"sku": "A-1"}, {"sku": "B-2", "dims": [[1, 2], [3, 4]]}],
		"0": "key zero",
		"": "empty key",
		"a.b": "dotted key",
		"a[x]": "bracket key",
		"nothing": null
	}`)
	tests := []struct {
		name   string
		path   string
		want   any
		wantOK bool
	}{
		{name: "empty path is whole value", path: "", want: doc, wantOK: true},
		{name: "top-level number", path: "id", want: json.Number("42"), wantOK: true},
		{name: "number keeps precision", path: "big", want: json.Number("123456789012345678901234567890"), wantOK: true},
		{name: "nested key", path: "customer.name", want: "Ada", wantOK: true},
		{name: "object value", path: "customer", want: doc.(map[string]any)["customer"], wantOK: true},
		{name: "dot index", path: "items.1.sku", want: "B-2", wantOK: true},
		{name: "bracket index", path: "items[1].sku", want: "B-2", wantOK: true},
		{name: "nested brackets", path: "items[1].dims[1][0]", want: json.Number("3"), wantOK: true},
		{name: "mixed index forms", path: "items.1.dims[0].1", want: json.Number("2"), wantOK: true},
		{name: "digit key in object", path: "0", want: "key zero", wantOK: true},
		{name: "bracket key in object", path: "[0]", want: "key zero", wantOK: true},
		{name: "non-digit brackets are a key", path: "a[x]", want: "bracket key", wantOK: true},
		{name: "null value is present", path: "nothing", want: nil, wantOK: true},
		{name: "unknown key", path: "customer.email"},
		{name: "index out of range", path: "items.2"},
		{name: "negative index", path: "items.-1"},
		{name: "index overflow", path: "items.99999999999999999999999"},
		{name: "signed index", path: "items.+1"},
		{name: "step into string", path: "customer.name.first"},
		{name: "step into number", path: "id.0"},
		{name: "step into null", path: "nothing.x"},
		{name: "key on array", path: "items.sku"},
		{name: "empty part", path: "customer..name"},
		{name: "trailing dot", path: "customer."},
		{name: "leading dot", path: ".id"},
		{name: "dotted key unreachable", path: "a.b"},
		{name: "empty brackets", path: "items[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Lookup(doc, tt.path)
			if ok != tt.wantOK {
				t.Fatalf("Lookup(%q) reports %v, want %v (value %v)", tt.path, ok, tt.wantOK, got)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Lookup(%q) = %#v, want %#v", tt.path, got, tt.want)
			}
		})
	}
}

func TestLookupTopLevelArray(t *testing.T) {
	doc := decodeForTest(t, `[{"id": "first"}, {"id": "second"}]`)
	for _, path := range []string{"[1].id", "1.id"} {
		got, ok := Lookup(doc, path)
		if !ok || got != "second" {
			t.Errorf("Lookup(%q) = %v, %v, want second", path, got, ok)
		}
	}
}

func decodeForTest(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return v
}
