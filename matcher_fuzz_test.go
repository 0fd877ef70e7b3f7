package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// fuzzRules are rules with the request and response matchers that users
// write most, plus the regular expression matchers that set placeholders.
var fuzzRules = []string{
	`{"event": "any.request"}`,
	`{"event": "order.created", "match": [{"method": ["POST"], "path": ["/orders"]}], "response": {"status_code": [201]}}`,
	`{"event": "order.shipped", "match": [{"path": ["/orders/*/ship", "*.json"]}], "response": {"status_code": [2, 4]}}`,
	`{"event": "order.any", "match": [{"path_regexp": {"name": "id", "pattern": "^/orders/([0-9]+)$"}}, {"header": {"X-Tenant": ["acme*"]}}]}`,
	`{"event": "order.query", "match": [{"query": {"debug": ["1"]}, "header_regexp": {"Content-Type": {"pattern": "json"}}}]}`,
	`{"event": "order.not", "match": [{"not": [{"method": ["GET", "HEAD"]}]}], "response": {"headers": {"Location": ["/orders/*"], "X-Error": null}}}`,
	`{"event": "order.host", "match": [{"host": ["api.example.com", "*.example.org"], "protocol": "https"}]}`,
}

// FuzzRuleMatch matches arbitrary requests and responses against
// provisioned rules. Matching must not panic, and a rule with no request
// matchers must match every request.
func FuzzRuleMatch(f *testing.F) {
	f.Add("POST", "api.example.com", "/orders", "debug=1", "X-Tenant", "acme-1", 201, "Location", "/orders/1")
	f.Add("GET", "", "/orders/42", "", "Content-Type", "application/json", 404, "X-Error", "1")
	f.Add("DELETE", "x.example.org:8443", "//..%2f/ship", "a=%zz", "", "", 0, "", "")
	f.Add("\x00", "[::1]", "", "debug", "X-Tenant", "\xff", 999, "location", "\r\n")
	f.Add("POST", "api.example.com", "/orders/1/ship", ";;", "x-tenant", "ACME", -1, "Location", "")

	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	f.Cleanup(cancel)
	rules := make([]*Rule, len(fuzzRules))
	for i, config := range fuzzRules {
		rule := new(Rule)
		if err := json.Unmarshal([]byte(config), rule); err != nil {
			f.Fatalf("decoding rule %s: %v", config, err)
		}
		if err := rule.provision(ctx); err != nil {
			f.Fatalf("provisioning rule %s: %v", config, err)
		}
		rules[i] = rule
	}

	f.Fuzz(func(t *testing.T, method, host, path, rawQuery, headerName, headerValue string, status int, responseHeaderName, responseHeaderValue string) {
		req := &http.Request{
			Method:     method,
			Host:       host,
			URL:        &url.URL{Path: path, RawQuery: rawQuery},
			RequestURI: path,
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     http.Header{},
			RemoteAddr: "192.0.2.10:1234",
		}
		req.Header.Add(headerName, headerValue)
		req = caddyhttp.PrepareRequest(req.WithContext(ctx), caddy.NewReplacer(), nil, nil)
		responseHeader := http.Header{}
		responseHeader.Add(responseHeaderName, responseHeaderValue)

		for i, rule := range rules {
			matched, err := rule.matchRequest(req)
			if i == 0 && (!matched || err != nil) {
				t.Fatalf("rule without request matchers did not match %s %q: matched %v, error %v", method, path, matched, err)
			}
			_ = rule.matchResponse(status, responseHeader)
		}
		// net/http accepts only status codes from 100 to 999, and the
		// handler passes 0 for a hijacked connection. Caddy's response
		// matcher also matches a status equal to a class digit, such as 2,
		// which cannot occur.
		realStatus := status == 0 || status >= 100 && status <= 999
		if got := rules[0].matchResponse(status, responseHeader); realStatus && got != (status >= 200 && status <= 299) {
			t.Fatalf("default response matcher on status %d = %v, want a match exactly for 2xx", status, got)
		}

		h := &Handler{Rules: rules}
		candidates, err := h.matchingRules(req, 0)
		if err == nil && (len(candidates) == 0 || candidates[0] != rules[0]) {
			t.Fatalf("matchingRules did not return the first rule first: %v", candidates)
		}
	})
}
