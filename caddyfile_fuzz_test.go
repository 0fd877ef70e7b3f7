package webhooks

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzUnmarshalCaddyfile parses arbitrary text as the webhooks directive.
// The parser must return an error or a handler that validates and survives
// a JSON round trip. Provisioning may fail, for example on a CEL expression
// that does not compile, but must not panic.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	seeds := []string{
		"webhooks {\n\tevent order.created POST /orders 201\n}",
		"webhooks {\n\tevent order.shipped POST /orders/*/ship 2xx 4xx\n}",
		"webhooks {\n\tevent api.called\n}",
		"webhooks {\n\tevent a.b {\n\t\tmethod POST PUT\n\t\tpath /x/*\n\t\theader Content-Type application/json\n\t\tstatus 201 5xx\n\t\tresponse_header Location\n\t\tresponse_header !X-Error\n\t\tdescription \"an order was placed\"\n\t}\n}",
		"webhooks {\n\tevent a.b {\n\t\tnot path /health\n\t\tquery debug=1\n\t}\n}",
		"webhooks {\n\tevent a.b {\n\t\t`{method} == 'POST'`\n\t}\n}",
		"webhooks {\n\tevent a.b {\n\t\texpression `{path}.startsWith(`\n\t}\n}",
		"webhooks {\n\tevent a.b {\n\t\tstatus 6xx\n\t}\n}",
		"webhooks {\n\tevent a.b {\n\t\tnot {\n\t\t\tmethod GET\n\t\t}\n\t}\n}",
		"webhooks {\n\tevent\n}",
		"webhooks {\n}",
		"webhooks",
		"",
		"webhooks {\n\tevent a.b {\n\t\tpath_regexp ^/(x\n\t}\n}",
		"webhooks {\n\tevent a.b POST /x 201 {\n\t\theader_regexp X (a|b)\n\t}\n}",
	}
	for _, seed := range seeds {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("UnmarshalCaddyfile accepted %q, but the handler is invalid: %v", input, err)
		}

		data, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("encoding handler of %q: %v", input, err)
		}
		decoded := new(Handler)
		if err := json.Unmarshal(data, decoded); err != nil {
			t.Fatalf("decoding handler JSON %s: %v", data, err)
		}
		if err := decoded.Validate(); err != nil {
			t.Fatalf("handler JSON %s is invalid after a round trip: %v", data, err)
		}

		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		_ = decoded.provisionRules(ctx)
	})
}
