package caddyfile

import (
	"strings"
	"testing"

	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseOptions(t *testing.T) {
	input := `webhooks {
		nats embedded {
			retention 3d
			queue_size 100
		}
		endpoint orders http://127.0.0.1:9/hooks {
			events order.*
			retry 1s 1m
			rate 120/m
			header X-Tenant acme
			ordered
		}
	}`
	var opts Options
	if err := ParseOptions(caddycf.NewTestDispenser(input), &opts); err != nil {
		t.Fatalf("ParseOptions: %v", err)
	}
	if opts.NATS == nil || opts.NATS.QueueSize != 100 {
		t.Errorf("nats = %+v, expected queue_size 100", opts.NATS)
	}
	if len(opts.Endpoints) != 1 {
		t.Fatalf("got %d endpoints, expected 1", len(opts.Endpoints))
	}
	ep := opts.Endpoints[0]
	if ep.Rate != 2 {
		t.Errorf("rate = %v per second, expected 2 for 120/m", ep.Rate)
	}
	if len(ep.Retry) != 2 {
		t.Errorf("retry = %v, expected two delays", ep.Retry)
	}
	if ep.Headers.Get("X-Tenant") != "acme" {
		t.Errorf("headers = %v, expected X-Tenant: acme", ep.Headers)
	}
	if !ep.Ordered {
		t.Error("ordered is not set")
	}
}

func TestParseOptionsErrors(t *testing.T) {
	endpoint := func(lines string) string {
		return "webhooks {\n\tendpoint orders http://127.0.0.1:9/hooks {\n\t\tevents order.*\n\t\t" + lines + "\n\t}\n}"
	}
	tests := []struct {
		name, input, expect string
	}{
		{"argument after option", "webhooks extra", `unexpected argument "extra"`},
		{"unknown option", "webhooks {\n\tqueue 5\n}", `unrecognized webhooks option "queue"`},
		{"nats without mode", "webhooks {\n\tnats\n}", "'nats' needs a mode"},
		{"nats external", "webhooks {\n\tnats nats://127.0.0.1:4222\n}", `unsupported nats mode "nats://127.0.0.1:4222"`},
		{"nats twice", "webhooks {\n\tnats embedded\n\tnats embedded\n}", "'nats' is set twice"},
		{"nats unknown", "webhooks {\n\tnats embedded {\n\t\tport 4222\n\t}\n}", `unrecognized nats subdirective "port"`},
		{"queue size zero", "webhooks {\n\tnats embedded {\n\t\tqueue_size 0\n\t}\n}", `invalid queue_size "0"`},
		{"endpoint without url", "webhooks {\n\tendpoint orders\n}", "needs a name and a URL"},
		{"endpoint without events", "webhooks {\n\tendpoint orders http://127.0.0.1:9/hooks {\n\t\ttimeout 1s\n\t}\n}", `endpoint "orders" has no events`},
		{"non-http url", "webhooks {\n\tendpoint orders ftp://127.0.0.1/x {\n\t\tevents a\n\t}\n}", `invalid url "ftp://127.0.0.1/x"`},
		{"duplicate name", "webhooks {\n\tendpoint a http://127.0.0.1:9/x {\n\t\tevents a\n\t}\n\tendpoint a http://127.0.0.1:9/y {\n\t\tevents b\n\t}\n}", `two endpoints are named "a"`},
		{"bad pattern", endpoint("events order.>.x"), `invalid event pattern "order.>.x"`},
		{"bad retry delay", endpoint("retry 5s fast"), `invalid duration "fast" for "retry"`},
		{"negative retry delay", endpoint("retry 5s -1s"), `negative duration "-1s" for "retry"`},
		{"negative timeout", endpoint("timeout -1s"), `negative duration "-1s" for "timeout"`},
		{"rate without unit", endpoint("rate 50"), `invalid rate "50"`},
		{"rate NaN", endpoint("rate NaN/s"), `invalid rate "NaN/s"`},
		{"rate infinite", endpoint("rate Inf/s"), `invalid rate "Inf/s"`},
		{"rate zero", endpoint("rate 0/s"), `invalid rate "0/s"`},
		{"concurrency zero", endpoint("concurrency 0"), `invalid concurrency "0"`},
		{"flag with value", endpoint("ordered yes"), `"ordered" takes no value, but got "yes"`},
		{"literal bad secret", endpoint("secret abc"), `endpoint "orders": secret 1`},
		{"header without value", endpoint("header X-Tenant"), `'header' of endpoint "orders" needs a field and a value`},
		{"unknown subdirective", endpoint("colour red"), `unrecognized subdirective "colour" in endpoint "orders"`},
		{"concurrency twice", endpoint("concurrency 4\n\t\tconcurrency 8"), `"concurrency" is set twice in endpoint "orders"`},
		{"retry twice", endpoint("retry 1s\n\t\tretry 2s"), `"retry" is set twice in endpoint "orders"`},
		{"nats setting twice", "webhooks {\n\tnats embedded {\n\t\tretention 1d\n\t\tretention 2d\n\t}\n}", `"retention" is set twice in 'nats embedded'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			err := ParseOptions(caddycf.NewTestDispenser(tt.input), &opts)
			if err == nil {
				t.Fatalf("ParseOptions accepted:\n%s", tt.input)
			}
			if !strings.Contains(err.Error(), tt.expect) {
				t.Errorf("error = %q, expected it to contain %q", err, tt.expect)
			}
		})
	}
}
