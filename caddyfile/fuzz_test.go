package caddyfile

import (
	"encoding/json"
	"testing"

	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

// FuzzParseOptions parses arbitrary text as the webhooks global option.
// ParseOptions must return an error or options whose endpoints validate,
// also after a JSON round trip.
func FuzzParseOptions(f *testing.F) {
	seeds := []string{
		"webhooks {\n\tnats embedded {\n\t\tstore_dir /var/lib/webhooks\n\t\tretention 3d\n\t\tqueue_size 100\n\t}\n}",
		"webhooks {\n\tendpoint orders https://hooks.example.com/orders {\n\t\tevents order.* payment.>\n\t\tsecret {env.ORDERS_SECRET}\n\t\theader X-Tenant acme\n\t\tretry 1s 1m\n\t\trate 120/m\n\t\tordered\n\t}\n}",
		"webhooks {\n\tallow_hosts 10.0.0.0/8 hooks.internal.example\n\thttps_only\n\tendpoint a https://10.1.2.3/x {\n\t\tevents a.b\n\t\tfollow_redirects\n\t}\n}",
		"webhooks {\n\tendpoint a https://hooks.example.com/x {\n\t\tevents a.*\n\t\tproxy http://user:{env.PASSWORD}@proxy.example.com:3128\n\t\ttls {\n\t\t\tca /etc/ca.pem\n\t\t\tclient_certificate /etc/c.pem /etc/c.key\n\t\t}\n\t}\n}",
		"webhooks {\n\tendpoint a http://127.0.0.1:9/x {\n\t\tevents a.b\n\t}\n}",
		"webhooks {\n\tendpoint a http://2130706433/x {\n\t\tevents a.b\n\t\tallow_private\n\t}\n}",
		"webhooks {\n\tendpoint a https://h.example/x {\n\t\tevents a.b a.*\n\t}\n}",
		"webhooks {\n\tendpoint a https://h.example/x {\n\t\tevents a.b\n\t\trate 1e309/s\n\t\tconcurrency 99999\n\t}\n}",
		"webhooks {\n\tendpoint a https://h.example/x {\n\t\tevents a.b\n\t\tsecret whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n\t}\n}",
		"webhooks extra",
		"webhooks {\n\tendpoint\n}",
		"",
	}
	for _, seed := range seeds {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddycf.Tokenize([]byte(input), "Caddyfile")
		if err != nil || len(tokens) == 0 {
			return
		}
		var opts Options
		if err := ParseOptions(caddycf.NewDispenser(tokens), &opts); err != nil {
			return
		}
		if err := opts.Guard.Validate(); err != nil {
			t.Fatalf("ParseOptions accepted %q, but the global guard is invalid: %v", input, err)
		}
		if err := delivery.ValidateEndpoints(opts.Endpoints); err != nil {
			t.Fatalf("ParseOptions accepted %q, but the endpoints are invalid: %v", input, err)
		}

		data, err := json.Marshal(opts.Endpoints)
		if err != nil {
			t.Fatalf("encoding endpoints of %q: %v", input, err)
		}
		var decoded []*delivery.Endpoint
		if err := json.Unmarshal(data, &decoded); err != nil {
			t.Fatalf("decoding endpoints JSON %s: %v", data, err)
		}
		for _, ep := range decoded {
			ep.SetGlobalGuard(opts.Guard)
		}
		if err := delivery.ValidateEndpoints(decoded); err != nil {
			t.Fatalf("endpoints JSON %s is invalid after a round trip: %v", data, err)
		}
	})
}
