package reference

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"          // reverse_proxy and the request matchers

	_ "github.com/caddy-webhooks/caddy-webhooks" // the webhooks directive and global option
)

// examplePair is a Caddyfile example of the reference and the JSON shown
// after it.
type examplePair struct {
	line            int // line of the Caddyfile's opening fence
	caddyfile, json string
}

// examplePairs returns every caddyfile block of the document with the json
// block that follows it. A caddyfile block that another kind of block
// follows is an error, so every example shows its JSON.
func examplePairs(doc string) ([]examplePair, error) {
	blocks := codeBlocks(doc)
	var pairs []examplePair
	for i, block := range blocks {
		if block.lang != "caddyfile" {
			continue
		}
		if i+1 == len(blocks) || blocks[i+1].lang != "json" {
			return nil, fmt.Errorf("the caddyfile example on line %d is not followed by a json block with what it adapts to", block.line)
		}
		pairs = append(pairs, examplePair{line: block.line, caddyfile: block.text, json: blocks[i+1].text})
	}
	return pairs, nil
}

// adaptCaddyfile adapts a Caddyfile to JSON with Caddy's caddyfile
// adapter, which also runs the webhooks parsers and their checks.
func adaptCaddyfile(body string) (any, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, fmt.Errorf("the caddyfile adapter is not registered")
	}
	out, warnings, err := adapter.Adapt([]byte(body), nil)
	if err != nil {
		return nil, err
	}
	if len(warnings) > 0 {
		return nil, fmt.Errorf("adapting gave warnings: %v", warnings)
	}
	var config any
	if err := json.Unmarshal(out, &config); err != nil {
		return nil, fmt.Errorf("decoding the adapted JSON: %w", err)
	}
	return config, nil
}

// sameJSON reports whether the documented value doc equals the adapted
// value got. A documented string such as "15s" equals the number of
// nanoseconds that caddy adapt prints for a duration.
func sameJSON(doc, got any) bool {
	switch doc := doc.(type) {
	case map[string]any:
		gotMap, ok := got.(map[string]any)
		if !ok || len(gotMap) != len(doc) {
			return false
		}
		for key, value := range doc {
			gotValue, ok := gotMap[key]
			if !ok || !sameJSON(value, gotValue) {
				return false
			}
		}
		return true
	case []any:
		gotList, ok := got.([]any)
		if !ok || len(gotList) != len(doc) {
			return false
		}
		for i := range doc {
			if !sameJSON(doc[i], gotList[i]) {
				return false
			}
		}
		return true
	case string:
		if number, ok := got.(float64); ok {
			d, err := caddy.ParseDuration(doc)
			return err == nil && float64(d) == number
		}
	}
	return reflect.DeepEqual(doc, got)
}

// containsJSON reports whether want equals got or one of the values
// nested in it.
func containsJSON(got, want any) bool {
	if sameJSON(want, got) {
		return true
	}
	switch got := got.(type) {
	case map[string]any:
		for _, value := range got {
			if containsJSON(value, want) {
				return true
			}
		}
	case []any:
		for _, value := range got {
			if containsJSON(value, want) {
				return true
			}
		}
	}
	return false
}

func TestReferenceExamplesAdapt(t *testing.T) {
	pairs, err := examplePairs(readRepoFile(t, referencePath))
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) < 10 {
		t.Fatalf("found %d examples in %s, want one per section", len(pairs), referencePath)
	}
	for _, pair := range pairs {
		t.Run(fmt.Sprintf("line_%d", pair.line), func(t *testing.T) {
			got, err := adaptCaddyfile(pair.caddyfile)
			if err != nil {
				t.Fatalf("adapting the example: %v", err)
			}
			var want any
			if err := json.Unmarshal([]byte(pair.json), &want); err != nil {
				t.Fatalf("the JSON after the example is invalid: %v", err)
			}
			if !containsJSON(got, want) {
				adapted, _ := json.MarshalIndent(got, "", "  ")
				t.Errorf("the JSON after the example is not part of what it adapts to:\n%s", adapted)
			}
		})
	}
}

func TestContainsJSON(t *testing.T) {
	adapted := `{"apps": {"webhooks": {"endpoints": [{"name": "a", "timeout": 15000000000, "events": ["x.*"]}]}}}`
	tests := []struct {
		want string
		ok   bool
	}{
		{`{"name": "a", "timeout": "15s", "events": ["x.*"]}`, true},
		{`{"name": "a", "timeout": 15000000000, "events": ["x.*"]}`, true},
		{`{"endpoints": [{"name": "a", "timeout": "15s", "events": ["x.*"]}]}`, true},
		{`{"name": "a", "timeout": "10s", "events": ["x.*"]}`, false},
		{`{"name": "a", "events": ["x.*"]}`, false},
		{`{"name": "a", "timeout": "15s", "events": ["x.*"], "rate": 1}`, false},
		{`{"name": "a", "timeout": "15s", "events": ["y.*"]}`, false},
	}
	var got any
	if err := json.Unmarshal([]byte(adapted), &got); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		var want any
		if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
			t.Fatal(err)
		}
		if ok := containsJSON(got, want); ok != tt.ok {
			t.Errorf("containsJSON(%s) = %v, want %v", tt.want, ok, tt.ok)
		}
	}
}

func TestExamplePairsRequiresJSON(t *testing.T) {
	doc := "```caddyfile\n{\n}\n```\n\ntext\n\n```sh\nls\n```\n"
	if _, err := examplePairs(doc); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("examplePairs accepted a caddyfile block without JSON after it, or did not name its line: %v", err)
	}
}
