package caddyfile

import (
	"strings"
	"testing"
	"time"

	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

func TestParseOptions(t *testing.T) {
	input := `webhooks {
		nats embedded {
			retention 3d
			queue_size 100
		}
		endpoint orders https://127.0.0.1:9/hooks {
			events order.*
			retry 1s 1m
			rate 120/m
			header X-Tenant acme
			ordered
			allow_hosts hooks.internal.test 10.1.0.0/16
			allow_hosts 127.0.0.1
			https_only
			follow_redirects
			format cloudevents
		}
		allow_hosts 192.168.7.0/24
		allow_private
		https_only
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
	if ep.Format != "cloudevents" {
		t.Errorf("format = %q, expected cloudevents", ep.Format)
	}

	if got := strings.Join(ep.AllowHosts, " "); got != "hooks.internal.test 10.1.0.0/16 127.0.0.1" {
		t.Errorf("allow_hosts = %q, expected both lines added up", got)
	}
	if !ep.HTTPSOnly || !ep.FollowRedirects || ep.AllowPrivate {
		t.Errorf("https_only = %v, follow_redirects = %v, allow_private = %v; expected true, true, false", ep.HTTPSOnly, ep.FollowRedirects, ep.AllowPrivate)
	}
	if !opts.Guard.AllowPrivate || !opts.Guard.HTTPSOnly || strings.Join(opts.Guard.AllowHosts, " ") != "192.168.7.0/24" {
		t.Errorf("global guard = %+v, expected allow_private, https_only and allow_hosts 192.168.7.0/24", opts.Guard)
	}
}

func TestParseOptionsRetentionAndDisableAfter(t *testing.T) {
	input := `webhooks {
		retention {
			events 3d
			attempts 45d
		}
		endpoint orders https://hooks.example.com/orders {
			events order.*
			disable_after 12h
		}
		endpoint audit https://hooks.example.com/audit {
			events audit.*
			disable_after off
		}
		endpoint billing https://hooks.example.com/billing {
			events billing.*
		}
	}`
	var opts Options
	if err := ParseOptions(caddycf.NewTestDispenser(input), &opts); err != nil {
		t.Fatalf("ParseOptions: %v", err)
	}
	if opts.Retention == nil || time.Duration(opts.Retention.Events) != 72*time.Hour || time.Duration(opts.Retention.Attempts) != 45*24*time.Hour {
		t.Errorf("retention = %+v, expected events 3d and attempts 45d", opts.Retention)
	}
	if got := opts.Endpoints[0].DisableAfter; got == nil || time.Duration(*got) != 12*time.Hour {
		t.Errorf("disable_after of orders = %v, expected 12h", got)
	}
	if got := opts.Endpoints[1].DisableAfter; got == nil || *got != 0 {
		t.Errorf("disable_after of audit = %v, expected 0 for off", got)
	}
	if got := opts.Endpoints[2].DisableAfter; got != nil {
		t.Errorf("disable_after of billing = %v, expected unset for the default", *got)
	}
}

func TestParseOptionsTLSAndProxy(t *testing.T) {
	input := `webhooks {
		endpoint orders https://hooks.example.com/orders {
			events order.*
			proxy http://{env.PROXY_USER}:{env.PROXY_PASSWORD}@proxy.example.com:3128
			tls {
				ca /etc/webhooks/ca-1.pem /etc/webhooks/ca-2.pem
				ca /etc/webhooks/ca-3.pem
				client_certificate /etc/webhooks/client.pem /etc/webhooks/client.key
			}
		}
	}`
	var opts Options
	if err := ParseOptions(caddycf.NewTestDispenser(input), &opts); err != nil {
		t.Fatalf("ParseOptions: %v", err)
	}
	ep := opts.Endpoints[0]
	if ep.Proxy != "http://{env.PROXY_USER}:{env.PROXY_PASSWORD}@proxy.example.com:3128" {
		t.Errorf("proxy = %q, expected the URL with its placeholders unresolved", ep.Proxy)
	}
	if ep.TLS == nil {
		t.Fatal("tls is not set")
	}
	if got := strings.Join(ep.TLS.CA, " "); got != "/etc/webhooks/ca-1.pem /etc/webhooks/ca-2.pem /etc/webhooks/ca-3.pem" {
		t.Errorf("tls ca = %q, expected both lines added up", got)
	}
	cc := ep.TLS.ClientCertificate
	if cc == nil || cc.Certificate != "/etc/webhooks/client.pem" || cc.Key != "/etc/webhooks/client.key" {
		t.Errorf("tls client_certificate = %+v, expected client.pem and client.key", cc)
	}
}

func TestParseOptionsProxyGuard(t *testing.T) {
	block := func(lines string) string {
		return "webhooks {\n\tendpoint orders https://hooks.example.com/x {\n\t\tevents order.*\n\t\t" + lines + "\n\t}\n}"
	}
	tests := []struct {
		name, input, expect string // expect is empty when the input is valid
	}{
		{name: "proxy host name", input: block("proxy http://proxy.example.com:3128")},
		{name: "loopback proxy", input: block("proxy http://127.0.0.1:3128"), expect: `proxy "http://127.0.0.1:3128": address 127.0.0.1 is blocked`},
		{name: "private proxy", input: block("proxy http://10.0.0.8:3128"), expect: "private (RFC 1918)"},
		{name: "private proxy allowed", input: block("proxy http://10.0.0.8:3128\n\t\tallow_hosts 10.0.0.8")},
		{name: "proxy password hidden", input: block("proxy http://user:hunter2@127.0.0.1:3128"), expect: `proxy "http://127.0.0.1:3128"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			err := ParseOptions(caddycf.NewTestDispenser(tt.input), &opts)
			if tt.expect == "" {
				if err != nil {
					t.Fatalf("ParseOptions: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseOptions accepted:\n%s", tt.input)
			}
			if !strings.Contains(err.Error(), tt.expect) {
				t.Errorf("error = %q, expected it to contain %q", err, tt.expect)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q contains the proxy password", err)
			}
		})
	}
}

func TestParseOptionsGuard(t *testing.T) {
	block := func(global, endpoint, url string) string {
		return "webhooks {\n" + global + "\n\tendpoint orders " + url + " {\n\t\tevents order.*\n\t\t" + endpoint + "\n\t}\n}"
	}
	tests := []struct {
		name, input, expect string // expect is empty when the input is valid
	}{
		{name: "public host", input: block("", "", "https://hooks.example.com/x")},
		{name: "loopback", input: block("", "", "http://127.0.0.1:9/x"), expect: `address 127.0.0.1 is blocked because it is in 127.0.0.0/8, loopback`},
		{name: "loopback names the line", input: block("", "", "http://127.0.0.1:9/x"), expect: "at Testfile:3"},
		{name: "metadata", input: block("", "", "http://169.254.169.254/x"), expect: "169.254.169.254"},
		{name: "IPv6 loopback", input: block("", "", "http://[::1]:9/x"), expect: "address ::1"},
		{name: "CGNAT", input: block("", "", "http://100.64.0.1/x"), expect: "carrier-grade NAT"},
		{name: "unspecified", input: block("", "", "http://0.0.0.0/x"), expect: "address 0.0.0.0"},
		{name: "decimal loopback", input: block("", "", "http://2130706433/x"), expect: "non-standard form"},
		{name: "endpoint allow_private", input: block("", "allow_private", "http://127.0.0.1:9/x")},
		{name: "global allow_private", input: block("\tallow_private", "", "http://127.0.0.1:9/x")},
		{name: "global allow_private after the endpoint", input: block("", "", "http://127.0.0.1:9/x") + "\nwebhooks {\n\tallow_private\n}", expect: "loopback"},
		{name: "endpoint allow_hosts CIDR", input: block("", "allow_hosts 127.0.0.0/8", "http://127.0.0.1:9/x")},
		{name: "global allow_hosts CIDR", input: block("\tallow_hosts 10.0.0.0/8", "", "http://10.2.3.4/x")},
		{name: "allow_hosts of other range", input: block("", "allow_hosts 10.0.0.0/8", "http://127.0.0.1:9/x"), expect: "loopback"},
		{name: "endpoint https_only", input: block("", "https_only", "http://hooks.example.com/x"), expect: `url "http://hooks.example.com/x" uses plain http, which https_only rejects`},
		{name: "global https_only", input: block("\thttps_only", "", "http://hooks.example.com/x"), expect: "https_only rejects"},
		{name: "global https_only with https", input: block("\thttps_only", "", "https://hooks.example.com/x")},
		{name: "follow_redirects", input: block("", "follow_redirects", "https://hooks.example.com/x")},
		{name: "allow_hosts without value", input: block("", "allow_hosts", "https://hooks.example.com/x"), expect: `'allow_hosts' of endpoint "orders" needs at least one`},
		{name: "global allow_hosts without value", input: block("\tallow_hosts", "", "https://hooks.example.com/x"), expect: "'allow_hosts' needs at least one"},
		{name: "allow_hosts host bits", input: block("", "allow_hosts 10.0.0.1/8", "https://hooks.example.com/x"), expect: `invalid allow_hosts entry "10.0.0.1/8"`},
		{name: "allow_hosts wildcard", input: block("\tallow_hosts *.example.com", "", "https://hooks.example.com/x"), expect: `invalid allow_hosts entry "*.example.com"`},
		{name: "allow_hosts with port", input: block("", "allow_hosts hooks.example.com:443", "https://hooks.example.com/x"), expect: `"hooks.example.com:443"`},
		{name: "global allow_private twice", input: block("\tallow_private\n\tallow_private", "", "https://hooks.example.com/x"), expect: `"allow_private" is set twice in the webhooks block`},
		{name: "global https_only with value", input: block("\thttps_only yes", "", "https://hooks.example.com/x"), expect: `"https_only" takes no value`},
		{name: "follow_redirects twice", input: block("", "follow_redirects\n\t\tfollow_redirects", "https://hooks.example.com/x"), expect: `"follow_redirects" is set twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			d := caddycf.NewTestDispenser(tt.input)
			err := ParseOptions(d, &opts)
			// A second webhooks block adds to the same options.
			for err == nil && d.Next() {
				d.Prev()
				err = ParseOptions(d, &opts)
			}
			if tt.expect == "" {
				if err != nil {
					t.Fatalf("ParseOptions: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseOptions accepted:\n%s", tt.input)
			}
			if !strings.Contains(err.Error(), tt.expect) {
				t.Errorf("error = %q, expected it to contain %q", err, tt.expect)
			}
		})
	}
}

// testHMACSecret is a valid whsec_ secret with 32 zero bytes.
const testHMACSecret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func TestParseOptionsSigningKeys(t *testing.T) {
	first := "whsk_" + strings.Repeat("A", 43) + "="
	input := `webhooks {
		endpoint orders https://hooks.example.com/orders {
			events order.*
			secret ` + testHMACSecret + `
			signing_key ` + first + `
			signing_key {env.ORDERS_SIGNING_KEY} {file./etc/webhooks/next.key}
		}
	}`
	var opts Options
	if err := ParseOptions(caddycf.NewTestDispenser(input), &opts); err != nil {
		t.Fatalf("ParseOptions: %v", err)
	}
	ep := opts.Endpoints[0]
	want := first + " {env.ORDERS_SIGNING_KEY} {file./etc/webhooks/next.key}"
	if got := strings.Join(ep.SigningKeys, " "); got != want {
		t.Errorf("signing keys = %q, expected %q with both lines added up and placeholders unresolved", got, want)
	}
	if len(ep.Secrets) != 1 {
		t.Errorf("secrets = %d values, expected 1 next to the signing keys", len(ep.Secrets))
	}
}

func TestParseNATS(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, got *Options)
	}{
		{
			name: "external cluster",
			input: `webhooks {
				nats nats://10.0.0.1:4222 nats://10.0.0.2:4222 {
					user caddy
					password {env.NATS_PASSWORD}
					tls {
						ca /etc/nats/ca.pem
						client_certificate /etc/nats/client.pem /etc/nats/client.key
					}
					replicas 3
					queue_size 50000
				}
			}`,
			check: func(t *testing.T, got *Options) {
				cfg := got.NATS
				if strings.Join(cfg.URLs, " ") != "nats://10.0.0.1:4222 nats://10.0.0.2:4222" {
					t.Errorf("urls = %v, expected both URLs", cfg.URLs)
				}
				if cfg.User != "caddy" || cfg.Password != "{env.NATS_PASSWORD}" {
					t.Errorf("user/password = %q/%q, expected caddy and the unresolved placeholder", cfg.User, cfg.Password)
				}
				if cfg.TLS == nil || len(cfg.TLS.CA) != 1 || cfg.TLS.ClientKey != "/etc/nats/client.key" {
					t.Errorf("tls = %+v, expected one CA and the client key", cfg.TLS)
				}
				if cfg.Replicas != 3 || cfg.QueueSize != 50000 {
					t.Errorf("replicas = %d, queue_size = %d, expected 3 and 50000", cfg.Replicas, cfg.QueueSize)
				}
			},
		},
		{
			name:  "credentials file",
			input: "webhooks {\n\tnats tls://nats.internal:4222 {\n\t\tcredentials /etc/nats/caddy.creds\n\t\tremove_stale_consumers\n\t}\n}",
			check: func(t *testing.T, got *Options) {
				if got.NATS.Credentials != "/etc/nats/caddy.creds" || !got.NATS.RemoveStaleConsumers {
					t.Errorf("nats = %+v, expected the credentials file and remove_stale_consumers", got.NATS)
				}
			},
		},
		{
			name:  "embedded with prefix",
			input: "webhooks {\n\tnats embedded {\n\t\tprefix acme.prod-eu\n\t}\n}",
			check: func(t *testing.T, got *Options) {
				if got.NATS.Prefix != "acme.prod-eu" {
					t.Errorf("prefix = %q, expected acme.prod-eu", got.NATS.Prefix)
				}
			},
		},
		{
			name:  "cluster URL with prefix",
			input: "webhooks {\n\tnats nats://10.0.0.1:4222 {\n\t\tprefix acme\n\t\tuser caddy\n\t\tpassword secret\n\t}\n}",
			check: func(t *testing.T, got *Options) {
				if got.NATS.Prefix != "acme" || !got.NATS.External() {
					t.Errorf("nats = %+v, expected prefix acme on the external cluster", got.NATS)
				}
			},
		},
		{
			name: "embedded cluster",
			input: `webhooks {
				nats embedded {
					server_name web-1
					replicas 3
					cluster webhooks {
						listen 10.0.0.1:6222
						routes nats-route://10.0.0.1:6222 nats-route://10.0.0.2:6222
						routes nats-route://10.0.0.3:6222
						user webhooks-route
						password {env.NATS_ROUTE_PASSWORD}
						tls {
							ca /etc/caddy/route-ca.pem
							certificate /etc/caddy/route.pem /etc/caddy/route.key
						}
					}
				}
			}`,
			check: func(t *testing.T, got *Options) {
				cfg := got.NATS
				if cfg.ServerName != "web-1" || cfg.Replicas != 3 || cfg.External() {
					t.Errorf("nats = %+v, expected embedded web-1 with 3 replicas", cfg)
				}
				if cfg.Cluster == nil || cfg.Cluster.Name != "webhooks" || cfg.Cluster.Listen != "10.0.0.1:6222" {
					t.Fatalf("cluster = %+v, expected webhooks on 10.0.0.1:6222", cfg.Cluster)
				}
				if len(cfg.Cluster.Routes) != 3 {
					t.Errorf("routes = %v, expected the three routes of both lines", cfg.Cluster.Routes)
				}
				if cfg.Cluster.User != "webhooks-route" || cfg.Cluster.Password != "{env.NATS_ROUTE_PASSWORD}" {
					t.Errorf("route credentials = %q and %q, expected the user and the unreplaced placeholder", cfg.Cluster.User, cfg.Cluster.Password)
				}
				want := emitter.RouteTLS{CA: "/etc/caddy/route-ca.pem", Certificate: "/etc/caddy/route.pem", Key: "/etc/caddy/route.key"}
				if cfg.Cluster.TLS == nil || *cfg.Cluster.TLS != want {
					t.Errorf("route tls = %+v, expected %+v", cfg.Cluster.TLS, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			if err := ParseOptions(caddycf.NewTestDispenser(tt.input), &opts); err != nil {
				t.Fatalf("ParseOptions: %v", err)
			}
			if opts.NATS == nil {
				t.Fatal("nats is not set")
			}
			tt.check(t, &opts)
		})
	}
}

func TestParseOptionsErrors(t *testing.T) {
	endpoint := func(lines string) string {
		return "webhooks {\n\tendpoint orders http://127.0.0.1:9/hooks {\n\t\tevents order.*\n\t\tallow_private\n\t\t" + lines + "\n\t}\n}"
	}
	tests := []struct {
		name, input, expect string
	}{
		{"argument after option", "webhooks extra", `unexpected argument "extra"`},
		{"unknown option", "webhooks {\n\tqueue 5\n}", `unrecognized webhooks option "queue": expected nats, retention, endpoint, email, notify, smtp, alerts, allow_private, allow_hosts or https_only`},
		{"nats without mode", "webhooks {\n\tnats\n}", "'nats' needs a mode"},
		{"nats unknown mode", "webhooks {\n\tnats cluster\n}", `unsupported nats mode "cluster": use 'embedded' or NATS URLs`},
		{"nats embedded with URL", "webhooks {\n\tnats embedded nats://127.0.0.1:4222\n}", `unexpected argument "nats://127.0.0.1:4222" after 'nats embedded'`},
		{"nats URL with store dir", "webhooks {\n\tnats nats://127.0.0.1:4222 {\n\t\tstore_dir /tmp/x\n\t}\n}", `"store_dir" configures the embedded server`},
		{"nats embedded with user", "webhooks {\n\tnats embedded {\n\t\tuser caddy\n\t}\n}", `"user" configures the connection to a NATS cluster`},
		{"nats replicas zero", "webhooks {\n\tnats nats://127.0.0.1:4222 {\n\t\treplicas 0\n\t}\n}", `invalid replicas "0"`},
		{"nats tls empty", "webhooks {\n\tnats nats://127.0.0.1:4222 {\n\t\ttls {\n\t\t}\n\t}\n}", "the tls block of nats is empty"},
		{"nats tls key missing", "webhooks {\n\tnats nats://127.0.0.1:4222 {\n\t\ttls {\n\t\t\tclient_certificate c.pem\n\t\t}\n\t}\n}", "needs a certificate file and a key file"},
		{"cluster without name", "webhooks {\n\tnats embedded {\n\t\tcluster {\n\t\t\tlisten :6222\n\t\t}\n\t}\n}", "'cluster' needs exactly one name"},
		{"cluster password twice", "webhooks {\n\tnats embedded {\n\t\tcluster webhooks {\n\t\t\tlisten :6222\n\t\t\tpassword a\n\t\t\tpassword b\n\t\t}\n\t}\n}", "'password' is set twice in 'cluster'"},
		{"cluster user without value", "webhooks {\n\tnats embedded {\n\t\tcluster webhooks {\n\t\t\tlisten :6222\n\t\t\tuser\n\t\t}\n\t}\n}", `"user" needs exactly one value`},
		{"cluster tls without certificate", "webhooks {\n\tnats embedded {\n\t\tcluster webhooks {\n\t\t\tlisten :6222\n\t\t\ttls {\n\t\t\t\tca /ca.pem\n\t\t\t}\n\t\t}\n\t}\n}", "the tls block of cluster needs both"},
		{"cluster tls certificate without key", "webhooks {\n\tnats embedded {\n\t\tcluster webhooks {\n\t\t\tlisten :6222\n\t\t\ttls {\n\t\t\t\tcertificate /route.pem\n\t\t\t}\n\t\t}\n\t}\n}", "needs a certificate file and a key file"},
		{"cluster without listen", "webhooks {\n\tnats embedded {\n\t\tcluster webhooks {\n\t\t\troutes nats-route://127.0.0.1:6222\n\t\t}\n\t}\n}", `cluster "webhooks" needs 'listen <host:port>'`},
		{"cluster unknown", "webhooks {\n\tnats embedded {\n\t\tcluster webhooks {\n\t\t\tlisten :6222\n\t\t\tport 1\n\t\t}\n\t}\n}", `unrecognized cluster subdirective "port"`},
		{"cluster routes empty", "webhooks {\n\tnats embedded {\n\t\tcluster webhooks {\n\t\t\tlisten :6222\n\t\t\troutes\n\t\t}\n\t}\n}", "'routes' needs at least one URL"},
		{"nats twice", "webhooks {\n\tnats embedded\n\tnats embedded\n}", "'nats' is set twice"},
		{"nats unknown", "webhooks {\n\tnats embedded {\n\t\tport 4222\n\t}\n}", `unrecognized nats subdirective "port"`},
		{"prefix invalid", "webhooks {\n\tnats embedded {\n\t\tprefix acme.*\n\t}\n}", `invalid prefix "acme.*": character '*' is not allowed`},
		{"prefix too long", "webhooks {\n\tnats embedded {\n\t\tprefix " + strings.Repeat("a", 33) + "\n\t}\n}", "more than the maximum of 32"},
		{"prefix reserved", "webhooks {\n\tnats embedded {\n\t\tprefix webhooks\n\t}\n}", `invalid prefix "webhooks"`},
		{"prefix without value", "webhooks {\n\tnats embedded {\n\t\tprefix\n\t}\n}", `"prefix" needs exactly one value`},
		{"prefix twice", "webhooks {\n\tnats embedded {\n\t\tprefix acme\n\t\tprefix other\n\t}\n}", `"prefix" is set twice in 'nats embedded'`},
		{"queue size zero", "webhooks {\n\tnats embedded {\n\t\tqueue_size 0\n\t}\n}", `invalid queue_size "0"`},
		{"endpoint without url", "webhooks {\n\tendpoint orders\n}", "needs a name and a URL"},
		{"endpoint without events", "webhooks {\n\tendpoint orders http://127.0.0.1:9/hooks {\n\t\ttimeout 1s\n\t}\n}", `endpoint "orders" has no events`},
		{"non-http url", "webhooks {\n\tendpoint orders ftp://127.0.0.1/x {\n\t\tevents a\n\t}\n}", `invalid url "ftp://127.0.0.1/x"`},
		{"email without recipients", "webhooks {\n\temail sales {\n\t\tevents a\n\t}\n}", `email "sales" has no recipients`},
		{"email with url", "webhooks {\n\temail sales http://x {\n\t\tevents a\n\t}\n}", `unexpected argument "http://x" after email "sales"`},
		{"email bad address", "webhooks {\n\temail sales {\n\t\tevents a\n\t\tto not-an-address\n\t}\n}", `invalid email recipient "not-an-address"`},
		{"email format", "webhooks {\n\temail sales {\n\t\tevents a\n\t\tto a@example.com\n\t\tformat cloudevents\n\t}\n}", `'format' does not apply to email "sales"`},
		{"text on endpoint", "webhooks {\n\tendpoint a http://127.0.0.1:9/x {\n\t\tevents a\n\t\ttext hi\n\t}\n}", `'text' applies to notify destinations, not to endpoint "a"`},
		{"notify bad format", "webhooks {\n\tnotify team irc http://127.0.0.1:9/x {\n\t\tevents a\n\t}\n}", `invalid chat format "irc" of notify "team"`},
		{"notify unknown placeholder", "webhooks {\n\tnotify team slack https://hooks.example.com/x {\n\t\tevents a\n\t\ttext {webhook.dta.x}\n\t}\n}", `unknown placeholder {webhook.dta.x}`},
		{"smtp without from", "webhooks {\n\tsmtp smtp.example.com:587 {\n\t\tusername a\n\t}\n}", "smtp has no sender"},
		{"smtp bad tls", "webhooks {\n\tsmtp smtp.example.com:587 {\n\t\tfrom a@example.com\n\t\ttls maybe\n\t}\n}", `invalid smtp tls "maybe"`},
		{"alerts nowhere", "webhooks {\n\talerts {\n\t\tinterval 1m\n\t}\n}", "alerts go nowhere"},
		{"alerts bad interval", "webhooks {\n\talerts ops@example.com {\n\t\tinterval 0s\n\t}\n}", "invalid alerts interval 0s"},
		{"duplicate name", "webhooks {\n\tendpoint a http://127.0.0.1:9/x {\n\t\tevents a\n\t}\n\tendpoint a http://127.0.0.1:9/y {\n\t\tevents b\n\t}\n}", `two destinations are named "a"`},
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
		{"signing_key without value", endpoint("signing_key"), `'signing_key' of endpoint "orders" needs a value such as whsk_...`},
		{"hmac secret as signing_key", endpoint("signing_key whsk_" + strings.Repeat("A", 43) + "=\n\t\tsigning_key " + testHMACSecret), `endpoint "orders": signing key 2: signing key starts with "whsec_"`},
		{"short signing_key", endpoint("signing_key whsk_AAAA"), `endpoint "orders": signing key 1: signing key decodes to 3 bytes`},
		{"header without value", endpoint("header X-Tenant"), `'header' of endpoint "orders" needs a field and a value`},
		{"unknown subdirective", endpoint("colour red"), `unrecognized subdirective "colour" in endpoint "orders"`},
		{"concurrency twice", endpoint("concurrency 4\n\t\tconcurrency 8"), `"concurrency" is set twice in endpoint "orders"`},
		{"retry twice", endpoint("retry 1s\n\t\tretry 2s"), `"retry" is set twice in endpoint "orders"`},
		{"proxy without value", endpoint("proxy"), `"proxy" needs exactly one value`},
		{"proxy twice", endpoint("proxy http://proxy.example.com:3128\n\t\tproxy http://proxy.example.com:3129"), `"proxy" is set twice in endpoint "orders"`},
		{"proxy scheme", endpoint("proxy socks5://proxy.example.com:1080"), `invalid proxy "socks5://proxy.example.com:1080": scheme must be http or https`},
		{"proxy with path", endpoint("proxy http://proxy.example.com:3128/x?token=abc"), `invalid proxy "http://proxy.example.com:3128/x": give only the scheme, host and port`},
		{"format without value", endpoint("format"), `"format" needs exactly one value`},
		{"format unknown", endpoint("format json"), `invalid format "json" of endpoint "orders": use standard or cloudevents`},
		{"format wrong case", endpoint("format CloudEvents"), `invalid format "CloudEvents" of endpoint "orders": use standard or cloudevents`},
		{"format two values", endpoint("format standard cloudevents"), `"format" needs exactly one value`},
		{"format twice", endpoint("format standard\n\t\tformat cloudevents"), `"format" is set twice in endpoint "orders"`},
		{"tls argument", endpoint("tls ca.pem"), `unexpected argument "ca.pem" after 'tls' of endpoint "orders"`},
		{"tls empty", endpoint("tls {\n\t\t}"), `the tls block of endpoint "orders" is empty`},
		{"tls ca without file", endpoint("tls {\n\t\t\tca\n\t\t}"), `'ca' in the tls block of endpoint "orders" needs at least one PEM file`},
		{"tls client_certificate without key", endpoint("tls {\n\t\t\tclient_certificate client.pem\n\t\t}"), `'client_certificate' in the tls block of endpoint "orders" needs a certificate file and a key file`},
		{"tls client_certificate twice", endpoint("tls {\n\t\t\tclient_certificate a.pem a.key\n\t\t\tclient_certificate b.pem b.key\n\t\t}"), `'client_certificate' is set twice in the tls block`},
		{"tls unknown", endpoint("tls {\n\t\t\tinsecure_skip_verify\n\t\t}"), `unrecognized tls subdirective "insecure_skip_verify" in endpoint "orders": expected ca or client_certificate`},
		{"tls twice", endpoint("tls {\n\t\t\tca a.pem\n\t\t}\n\t\ttls {\n\t\t\tca b.pem\n\t\t}"), `"tls" is set twice in endpoint "orders"`},
		{"nats setting twice", "webhooks {\n\tnats embedded {\n\t\tretention 1d\n\t\tretention 2d\n\t}\n}", `"retention" is set twice in 'nats embedded'`},
		{"disable_after word", endpoint("disable_after never"), `invalid disable_after "never": use a duration such as 5d or 12h, or off`},
		{"disable_after negative", endpoint("disable_after -1h"), `invalid disable_after "-1h"`},
		{"disable_after without value", endpoint("disable_after"), `"disable_after" needs exactly one value`},
		{"disable_after twice", endpoint("disable_after 1d\n\t\tdisable_after 2d"), `"disable_after" is set twice in endpoint "orders"`},
		{"retention argument", "webhooks {\n\tretention 7d\n}", `unexpected argument "7d" after 'retention'`},
		{"retention empty", "webhooks {\n\tretention {\n\t}\n}", "the retention block is empty"},
		{"retention unknown", "webhooks {\n\tretention {\n\t\tdead 1d\n\t}\n}", `unrecognized retention subdirective "dead": expected events or attempts`},
		{"retention bad duration", "webhooks {\n\tretention {\n\t\tattempts soon\n\t}\n}", `invalid duration "soon" for "attempts"`},
		{"retention setting twice", "webhooks {\n\tretention {\n\t\tevents 1d\n\t\tevents 2d\n\t}\n}", `"events" is set twice in 'retention'`},
		{"retention twice", "webhooks {\n\tretention {\n\t\tevents 1d\n\t}\n\tretention {\n\t\tattempts 2d\n\t}\n}", "'retention' is set twice"},
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
