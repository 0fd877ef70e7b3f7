package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestRuleMatchResponse(t *testing.T) {
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name     string
		response string // JSON of the rule's "response", or "" for none
		status   int
		header   http.Header
		want     bool
	}{
		{"default matches 200", "", 200, nil, true},
		{"default matches 299", "", 299, nil, true},
		{"default skips 101", "", 101, nil, false},
		{"default skips 304", "", 304, nil, false},
		{"default skips 500", "", 500, nil, false},
		{"exact code", `{"status_code": [201]}`, 201, nil, true},
		{"exact code skips other 2xx", `{"status_code": [201]}`, 200, nil, false},
		{"class 4", `{"status_code": [4]}`, 404, nil, true},
		{"class 4 skips 500", `{"status_code": [4]}`, 500, nil, false},
		{"several codes", `{"status_code": [201, 5]}`, 503, nil, true},
		{"switching protocols", `{"status_code": [101]}`, 101, nil, true},
		{"empty status list means 2xx", `{"status_code": []}`, 500, nil, false},
		{"header only means 2xx", `{"headers": {"Content-Type": ["application/json"]}}`, 200, jsonHeader, true},
		{"header only skips 500", `{"headers": {"Content-Type": ["application/json"]}}`, 500, jsonHeader, false},
		{"header mismatch", `{"headers": {"Content-Type": ["text/html"]}}`, 200, jsonHeader, false},
		{"header wildcard", `{"headers": {"Content-Type": ["application/*"]}}`, 200, jsonHeader, true},
		{"header must be absent", `{"headers": {"Location": null}}`, 200, jsonHeader, true},
		{"header present but must be absent", `{"headers": {"Content-Type": null}}`, 200, jsonHeader, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := `{"event": "test.event"}`
			if tt.response != "" {
				config = `{"event": "test.event", "response": ` + tt.response + `}`
			}
			rule := provisionRule(t, config)
			if got := rule.matchResponse(tt.status, tt.header); got != tt.want {
				t.Errorf("matchResponse(%d, %v) = %v, want %v", tt.status, tt.header, got, tt.want)
			}
		})
	}
}

func TestRuleDefaultKeepsConfig(t *testing.T) {
	rule := provisionRule(t, `{"event": "test.event", "response": {"headers": {"X-Id": ["1"]}}}`)
	out, err := json.Marshal(rule)
	if err != nil {
		t.Fatal(err)
	}
	// The 2xx default applies at run time only, so the config still
	// reads as the user wrote it.
	want := `{"event":"test.event","response":{"headers":{"X-Id":["1"]}}}`
	if string(out) != want {
		t.Errorf("rule JSON = %s, want %s", out, want)
	}
}

func TestRuleMatchRequest(t *testing.T) {
	tests := []struct {
		name   string
		match  string
		method string
		target string
		want   bool
	}{
		{"no matchers match everything", ``, "DELETE", "/anything", true},
		{"one set, all must match", `[{"method": ["POST"], "path": ["/orders"]}]`, "POST", "/orders", true},
		{"one set, one fails", `[{"method": ["POST"], "path": ["/orders"]}]`, "POST", "/invoices", false},
		{"any set matches", `[{"method": ["PUT"]}, {"path": ["/orders/*"]}]`, "GET", "/orders/42", true},
		{"no set matches", `[{"method": ["PUT"]}, {"path": ["/orders/*"]}]`, "GET", "/invoices/42", false},
		{"query", `[{"query": {"dry_run": ["true"]}}]`, "POST", "/orders?dry_run=true", true},
		{"not", `[{"not": [{"method": ["GET"]}]}]`, "GET", "/orders", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := `{"event": "test.event"}`
			if tt.match != "" {
				config = `{"event": "test.event", "match": ` + tt.match + `}`
			}
			rule := provisionRule(t, config)
			r := withReplacer(httptest.NewRequest(tt.method, "http://api.example.com"+tt.target, nil))
			got, err := rule.matchRequest(r)
			if err != nil {
				t.Fatalf("matchRequest: %v", err)
			}
			if got != tt.want {
				t.Errorf("matchRequest(%s %s) = %v, want %v", tt.method, tt.target, got, tt.want)
			}
		})
	}
}

func TestRuleProvisionUnknownMatcher(t *testing.T) {
	h := new(Handler)
	if err := json.Unmarshal([]byte(`{"rules": [{"event": "a.b"}, {"event": "c.d", "match": [{"no_such_matcher": {}}]}]}`), h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	err := h.provisionRules(ctx)
	if err == nil {
		t.Fatal("provisionRules succeeded with an unknown matcher")
	}
	want := `provisioning rule 1 (event "c.d"): loading request matchers`
	if got := err.Error(); !strings.HasPrefix(got, want) {
		t.Errorf("error = %q, want it to start with %q", got, want)
	}
}

func TestValidateStatus(t *testing.T) {
	tests := []struct {
		code  int
		valid bool
	}{
		{1, true}, {5, true}, {100, true}, {101, true}, {201, true}, {599, true},
		{0, false}, {6, false}, {10, false}, {99, false}, {600, false}, {-2, false},
	}
	for _, tt := range tests {
		err := validateStatus(tt.code)
		if (err == nil) != tt.valid {
			t.Errorf("validateStatus(%d) = %v, want valid %v", tt.code, err, tt.valid)
		}
	}
}

// provisionRule decodes one rule and provisions it.
func provisionRule(t *testing.T, config string) *Rule {
	t.Helper()
	rule := new(Rule)
	if err := json.Unmarshal([]byte(config), rule); err != nil {
		t.Fatalf("decoding rule: %v", err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := rule.provision(ctx); err != nil {
		t.Fatalf("provisioning rule: %v", err)
	}
	if err := rule.validate(); err != nil {
		t.Fatalf("validating rule: %v", err)
	}
	return rule
}
