package webhooks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	// Modules of the Caddyfile in TestCaddyfileAdaptOrder.
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/gzip"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // the handler's JSON
	}{
		{
			name: "one-line form",
			input: `webhooks {
				event order.shipped POST /orders/*/ship 2xx
			}`,
			want: `{"rules":[{"event":"order.shipped","match":[{"method":["POST"],"path":["/orders/*/ship"]}],"response":{"status_code":[2]}}]}`,
		},
		{
			name: "one-line form with several statuses",
			input: `webhooks {
				event order.created POST /orders 201 202
			}`,
			want: `{"rules":[{"event":"order.created","match":[{"method":["POST"],"path":["/orders"]}],"response":{"status_code":[201,202]}}]}`,
		},
		{
			name: "one-line form without status",
			input: `webhooks {
				event order.created POST /orders
			}`,
			want: `{"rules":[{"event":"order.created","match":[{"method":["POST"],"path":["/orders"]}]}]}`,
		},
		{
			name: "event type alone",
			input: `webhooks {
				event api.called
			}`,
			want: `{"rules":[{"event":"api.called"}]}`,
		},
		{
			name: "empty block",
			input: `webhooks {
				event api.called {
				}
			}`,
			want: `{"rules":[{"event":"api.called"}]}`,
		},
		{
			name: "block with several matchers",
			input: `webhooks {
				event order.created {
					method POST PUT
					path /orders /orders/*
					header X-Api-Version 2
					header X-Tenant *
					query dry_run=false
					expression {http.request.uri.query.source} != "import"
					not {
						header X-Replay 1
					}
					status 201 2xx
					description "A customer placed an order"
				}
			}`,
			want: `{"rules":[{"event":"order.created","description":"A customer placed an order","match":[{` +
				`"expression":"{http.request.uri.query.source} != \"import\"",` +
				`"header":{"X-Api-Version":["2"],"X-Tenant":["*"]},` +
				`"method":["POST","PUT"],` +
				`"not":[{"header":{"X-Replay":["1"]}}],` +
				`"path":["/orders","/orders/*"],` +
				`"query":{"dry_run":["false"]}` +
				`}],"response":{"status_code":[201,2]}}]}`,
		},
		{
			name: "repeated status lines",
			input: `webhooks {
				event order.failed {
					status 4xx
					status 500 503
				}
			}`,
			want: `{"rules":[{"event":"order.failed","response":{"status_code":[4,500,503]}}]}`,
		},
		{
			name: "status class as one digit",
			input: `webhooks {
				event order.failed {
					status 5
				}
			}`,
			want: `{"rules":[{"event":"order.failed","response":{"status_code":[5]}}]}`,
		},
		{
			name: "response headers",
			input: `webhooks {
				event order.created {
					response_header Content-Type application/json*
					response_header content-type application/problem+json
					response_header location
					response_header !X-Error
				}
			}`,
			want: `{"rules":[{"event":"order.created","response":{"headers":{` +
				`"Content-Type":["application/json*","application/problem+json"],"Location":["*"],"X-Error":null}}}]}`,
		},
		{
			name: "one-line form with block",
			input: `webhooks {
				event order.created POST /orders 201 {
					method PUT
					description "Created or replaced"
				}
			}`,
			want: `{"rules":[{"event":"order.created","description":"Created or replaced",` +
				`"match":[{"method":["POST","PUT"],"path":["/orders"]}],"response":{"status_code":[201]}}]}`,
		},
		{
			name:  "quoted expression line",
			input: "webhooks {\n\tevent order.created {\n\t\t`{http.request.method} == \"POST\"`\n\t}\n}",
			want:  `{"rules":[{"event":"order.created","match":[{"expression":{"expr":"{http.request.method} == \"POST\"","name":"order_created"}}]}]}`,
		},
		{
			name: "regexp capture named after the event",
			input: `webhooks {
				event order.paid {
					path_regexp ^/orders/([0-9]+)/pay$
				}
			}`,
			want: `{"rules":[{"event":"order.paid","match":[{"path_regexp":{"name":"order_paid","pattern":"^/orders/([0-9]+)/pay$"}}]}]}`,
		},
		{
			name: "several events in order",
			input: `webhooks {
				event order.created POST /orders 201
				event order.deleted DELETE /orders/* 204
				event order.created PUT /orders 201
			}`,
			want: `{"rules":[` +
				`{"event":"order.created","match":[{"method":["POST"],"path":["/orders"]}],"response":{"status_code":[201]}},` +
				`{"event":"order.deleted","match":[{"method":["DELETE"],"path":["/orders/*"]}],"response":{"status_code":[204]}},` +
				`{"event":"order.created","match":[{"method":["PUT"],"path":["/orders"]}],"response":{"status_code":[201]}}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			got, err := json.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("JSON:\n got %s\nwant %s", got, tt.want)
			}

			// The JSON decodes to a handler whose rules provision and validate.
			decoded, _ := newTestHandler(t, string(got))
			if len(decoded.Rules) != len(h.Rules) {
				t.Errorf("decoded %d rules, want %d", len(decoded.Rules), len(h.Rules))
			}
		})
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"no block", `webhooks`, "webhooks needs at least one event rule"},
		{"empty block", "webhooks {\n}", "webhooks needs at least one event rule"},
		{"argument", "webhooks extra {\n\tevent a.b\n}", `unexpected argument "extra"`},
		{"unknown subdirective", "webhooks {\n\troute /x\n}", `unrecognized webhooks subdirective "route"`},
		{"missing event type", "webhooks {\n\tevent\n}", "missing event type"},
		{"bad event type", "webhooks {\n\tevent order..created\n}", `invalid event type "order..created"`},
		{"bad event type character", "webhooks {\n\tevent order/created\n}", `invalid event type "order/created"`},
		{"method without path", "webhooks {\n\tevent a.b POST\n}", `after the method "POST", the one-line form needs a path`},
		{"several methods", "webhooks {\n\tevent a.b POST,PUT /orders\n}", `invalid method "POST,PUT"`},
		{"lower-case method", "webhooks {\n\tevent a.b post /orders\n}", `invalid method "post"`},
		{"swapped method and path", "webhooks {\n\tevent a.b /orders POST\n}", `"/orders" is a path where the method belongs`},
		{"path without slash", "webhooks {\n\tevent a.b POST orders\n}", `invalid path "orders"`},
		{"one-line status too high", "webhooks {\n\tevent a.b POST /orders 600\n}", `event "a.b": invalid status "600"`},
		{"status class 6xx", "webhooks {\n\tevent a.b {\n\t\tstatus 6xx\n\t}\n}", `invalid status "6xx"`},
		{"status 99", "webhooks {\n\tevent a.b {\n\t\tstatus 99\n\t}\n}", `invalid status "99"`},
		{"status not a number", "webhooks {\n\tevent a.b {\n\t\tstatus ok\n\t}\n}", `invalid status "ok"`},
		{"status 2xy", "webhooks {\n\tevent a.b {\n\t\tstatus 2xy\n\t}\n}", `invalid status "2xy"`},
		{"status without codes", "webhooks {\n\tevent a.b {\n\t\tstatus\n\t}\n}", `event "a.b": status needs at least one code`},
		{"status with block", "webhooks {\n\tevent a.b {\n\t\tstatus 201 {\n\t\t\tx\n\t\t}\n\t}\n}", `event "a.b": status takes no block`},
		{"unknown line", "webhooks {\n\tevent order.created {\n\t\tbogus 1\n\t}\n}", `unrecognized subdirective or matcher "bogus" in event "order.created"`},
		{"description missing", "webhooks {\n\tevent a.b {\n\t\tdescription\n\t}\n}", `event "a.b": description needs a text`},
		{"description unquoted", "webhooks {\n\tevent a.b {\n\t\tdescription placed an order\n\t}\n}", `unexpected argument "an" after the description`},
		{"response_header without field", "webhooks {\n\tevent a.b {\n\t\tresponse_header\n\t}\n}", "response_header takes a field and an optional value"},
		{"response_header three arguments", "webhooks {\n\tevent a.b {\n\t\tresponse_header A b c\n\t}\n}", "got 3 arguments"},
		{"response_header bare negation", "webhooks {\n\tevent a.b {\n\t\tresponse_header !\n\t}\n}", `invalid response_header "!"`},
		{"response_header negation with value", "webhooks {\n\tevent a.b {\n\t\tresponse_header !X-Error 1\n\t}\n}", `invalid response_header "!X-Error 1"`},
		{"quoted expression with extra argument", "webhooks {\n\tevent a.b {\n\t\t`true` extra\n\t}\n}", `unexpected argument "extra" after the quoted expression`},
		{"matcher's own error", "webhooks {\n\tevent a.b {\n\t\theader\n\t}\n}", "malformed header matcher"},
		{"matcher without value", "webhooks {\n\tevent a.b {\n\t\tmethod\n\t}\n}", `event "a.b": matcher "method" needs a value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil {
				t.Fatalf("UnmarshalCaddyfile succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestUnmarshalCaddyfileErrorPosition(t *testing.T) {
	input := "webhooks {\n\tevent a.b POST /orders\n\tevent c.d {\n\t\tstatus 700\n\t}\n}"
	err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	if err == nil || !strings.Contains(err.Error(), "Testfile:4") {
		t.Errorf("error = %v, want it to name Testfile:4", err)
	}
}

func TestCaddyfileAdaptOrder(t *testing.T) {
	input := ":8080 {\n" +
		"\treverse_proxy 127.0.0.1:9\n" +
		"\t@api path /api/*\n" +
		"\twebhooks @api {\n" +
		"\t\tevent order.created POST /api/orders 201\n" +
		"\t}\n" +
		"\tencode gzip\n" +
		"}\n"
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	out, warnings, err := adapter.Adapt([]byte(input), nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	config := string(out)

	// Without an order option, webhooks sits after encode and before
	// reverse_proxy in the handler chain.
	encode := strings.Index(config, `"handler":"encode"`)
	webhooks := strings.Index(config, `"handler":"webhooks"`)
	proxy := strings.Index(config, `"handler":"reverse_proxy"`)
	if encode < 0 || webhooks < 0 || proxy < 0 {
		t.Fatalf("adapted config lacks a handler:\n%s", config)
	}
	if !(encode < webhooks && webhooks < proxy) {
		t.Errorf("handler order is not encode, webhooks, reverse_proxy:\n%s", config)
	}

	wantRoute := `{"match":[{"path":["/api/*"]}],"handle":[{"handler":"webhooks","rules":[{"event":"order.created",` +
		`"match":[{"method":["POST"],"path":["/api/orders"]}],"response":{"status_code":[201]}}]}]}`
	if !strings.Contains(config, wantRoute) {
		t.Errorf("adapted config lacks the webhooks route with its matcher %s:\n%s", wantRoute, config)
	}
}
