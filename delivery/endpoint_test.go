package delivery

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func validEndpoint() *Endpoint {
	return &Endpoint{
		Name:    "orders",
		URL:     "https://hooks.example.com/orders",
		Events:  []string{"order.*", "payment.failed"},
		Secrets: []string{testSecret('s')},
	}
}

func TestEndpointValidate(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*Endpoint)
		want      []string // substrings of the error; none means valid
	}{
		{name: "valid", configure: func(*Endpoint) {}},
		{name: "bad name", configure: func(e *Endpoint) { e.Name = "orders hook" }, want: []string{`"orders hook"`, "A-Z"}},
		{name: "empty name", configure: func(e *Endpoint) { e.Name = "" }, want: []string{`""`}},
		{name: "name of 64 characters", configure: func(e *Endpoint) { e.Name = strings.Repeat("n", 64) }},
		{name: "name too long", configure: func(e *Endpoint) { e.Name = strings.Repeat("n", 65) }, want: []string{"65 characters", "at most 64"}},
		{name: "ftp url", configure: func(e *Endpoint) { e.URL = "ftp://hooks.example.com/x" }, want: []string{`"ftp://hooks.example.com/x"`, "http or https"}},
		{name: "url without host", configure: func(e *Endpoint) { e.URL = "https:///x" }, want: []string{"host is missing"}},
		{name: "url password hidden", configure: func(e *Endpoint) { e.URL = "ftp://user:hunter2@hooks.example.com/?token=hunter2" }, want: []string{`"ftp://hooks.example.com/"`}},
		{name: "missing url", configure: func(e *Endpoint) { e.URL = "" }, want: []string{"url is missing"}},
		{name: "missing events", configure: func(e *Endpoint) { e.Events = nil }, want: []string{`"orders"`, "events is empty"}},
		{name: "bad pattern", configure: func(e *Endpoint) { e.Events = []string{"order.>.x"} }, want: []string{`"order.>.x"`}},
		{name: "overlapping patterns", configure: func(e *Endpoint) { e.Events = []string{"order.*", "order.created"} }, want: []string{`"order.*"`, `"order.created"`, "overlap"}},
		{name: "negative delay", configure: func(e *Endpoint) { e.Retry = []caddy.Duration{ms(100), ms(-5)} }, want: []string{"retry delay 2", "-5ms"}},
		{name: "negative timeout", configure: func(e *Endpoint) { e.Timeout = ms(-1) }, want: []string{"timeout -1ms"}},
		{name: "secret without prefix", configure: func(e *Endpoint) { e.Secrets = []string{"hunter2hunter2"} }, want: []string{"secret 1", "whsec_", "openssl rand -base64 32"}},
		{name: "secret not base64", configure: func(e *Endpoint) { e.Secrets = []string{testSecret('a'), "whsec_not*base64"} }, want: []string{"secret 2", "base64"}},
		{name: "secret too short", configure: func(e *Endpoint) { e.Secrets = []string{"whsec_c2hvcnQ="} }, want: []string{"5 bytes", "24 to 64"}},
		{name: "secret with placeholder", configure: func(e *Endpoint) { e.Secrets = []string{"{env.ORDERS_SECRET}"} }},
		{name: "reserved header", configure: func(e *Endpoint) { e.Headers = http.Header{"webhook-signature": {"x"}} }, want: []string{`"webhook-signature"`, "remove it"}},
		{name: "invalid header name", configure: func(e *Endpoint) { e.Headers = http.Header{"X Bad": {"x"}} }, want: []string{`"X Bad"`}},
		{name: "concurrency too high", configure: func(e *Endpoint) { e.Concurrency = 1000 }, want: []string{"concurrency 1000", "1 to 256"}},
		{name: "ordered with concurrency", configure: func(e *Endpoint) { e.Ordered = true; e.Concurrency = 4 }, want: []string{"concurrency 4", "ordered"}},
		{name: "negative rate", configure: func(e *Endpoint) { e.Rate = -1 }, want: []string{"rate -1"}},
		{name: "negative retry_after_max", configure: func(e *Endpoint) { e.RetryAfterMax = ms(-1) }, want: []string{"retry_after_max -1ms"}},

		{name: "loopback url", configure: func(e *Endpoint) { e.URL = "http://127.0.0.1:8080/hook" }, want: []string{"address 127.0.0.1", "loopback", "allow_private", "allow_hosts"}},
		{name: "IPv6 loopback url", configure: func(e *Endpoint) { e.URL = "http://[::1]/hook" }, want: []string{"address ::1", "loopback"}},
		{name: "IPv4-mapped url", configure: func(e *Endpoint) { e.URL = "http://[::ffff:127.0.0.1]/hook" }, want: []string{"address ::ffff:127.0.0.1", "127.0.0.0/8"}},
		{name: "metadata url", configure: func(e *Endpoint) { e.URL = "http://169.254.169.254/latest/meta-data" }, want: []string{"169.254.169.254", "link-local"}},
		{name: "IPv6 metadata url", configure: func(e *Endpoint) { e.URL = "http://[fd00:ec2::254]/" }, want: []string{"fd00:ec2::254", "unique local"}},
		{name: "private url", configure: func(e *Endpoint) { e.URL = "https://10.0.0.1/hook" }, want: []string{"10.0.0.1", "RFC 1918"}},
		{name: "CGNAT url", configure: func(e *Endpoint) { e.URL = "https://100.64.0.1/hook" }, want: []string{"100.64.0.1", "carrier-grade NAT"}},
		{name: "unspecified url", configure: func(e *Endpoint) { e.URL = "http://0.0.0.0:8080/" }, want: []string{"0.0.0.0"}},
		{name: "link-local url with zone", configure: func(e *Endpoint) { e.URL = "http://[fe80::1%25eth0]/" }, want: []string{"fe80::1%eth0", "link-local"}},
		{name: "NAT64 url to private", configure: func(e *Endpoint) { e.URL = "https://[64:ff9b::a00:1]/" }, want: []string{"NAT64", "10.0.0.1"}},
		{name: "decimal IPv4 url", configure: func(e *Endpoint) { e.URL = "http://2130706433/" }, want: []string{`"2130706433"`, "non-standard form"}},
		{name: "short IPv4 url", configure: func(e *Endpoint) { e.URL = "http://127.1/" }, want: []string{`"127.1"`, "non-standard form"}},
		{name: "hex IPv4 url", configure: func(e *Endpoint) { e.URL = "http://0x7f000001/" }, want: []string{`"0x7f000001"`, "non-standard form"}},
		{name: "blocked url keeps token hidden", configure: func(e *Endpoint) { e.URL = "http://user:hunter2@10.0.0.1/?token=hunter2" }, want: []string{`"http://10.0.0.1/"`, "10.0.0.1"}},
		{name: "public IP url", configure: func(e *Endpoint) { e.URL = "https://203.0.113.7/hook" }},
		{name: "NAT64 url to public", configure: func(e *Endpoint) { e.URL = "https://[64:ff9b::cb00:7107]/" }},
		{name: "numeric label inside host", configure: func(e *Endpoint) { e.URL = "https://1.hooks.example.com/" }},
		{name: "loopback with allow_private", configure: func(e *Endpoint) { e.URL = "http://127.0.0.1/"; e.AllowPrivate = true }},
		{name: "loopback with global allow_private", configure: func(e *Endpoint) {
			e.URL = "http://127.0.0.1/"
			e.SetGlobalGuard(GlobalGuard{AllowPrivate: true})
		}},
		{name: "loopback with allow_hosts CIDR", configure: func(e *Endpoint) { e.URL = "http://127.0.0.1/"; e.AllowHosts = []string{"127.0.0.0/8"} }},
		{name: "loopback with allow_hosts address", configure: func(e *Endpoint) { e.URL = "http://[::1]/"; e.AllowHosts = []string{"::1"} }},
		{name: "loopback with global allow_hosts", configure: func(e *Endpoint) {
			e.URL = "http://10.1.2.3/"
			e.SetGlobalGuard(GlobalGuard{AllowHosts: []string{"10.1.0.0/16"}})
		}},
		{name: "private outside allow_hosts", configure: func(e *Endpoint) { e.URL = "http://10.2.0.1/"; e.AllowHosts = []string{"10.1.0.0/16"} }, want: []string{"10.2.0.1"}},
		{name: "bad allow_hosts entry", configure: func(e *Endpoint) { e.AllowHosts = []string{"10.0.0.1/8"} }, want: []string{`"10.0.0.1/8"`, "write 10.0.0.0/8"}},
		{name: "bad global allow_hosts entry", configure: func(e *Endpoint) { e.SetGlobalGuard(GlobalGuard{AllowHosts: []string{"*.example.com"}}) }, want: []string{`"*.example.com"`}},
		{name: "https_only with http", configure: func(e *Endpoint) { e.URL = "http://hooks.example.com/"; e.HTTPSOnly = true }, want: []string{`"http://hooks.example.com/"`, "https_only"}},
		{name: "global https_only with http", configure: func(e *Endpoint) {
			e.URL = "http://hooks.example.com/"
			e.SetGlobalGuard(GlobalGuard{HTTPSOnly: true})
		}, want: []string{"https_only"}},
		{name: "https_only with https", configure: func(e *Endpoint) { e.HTTPSOnly = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEndpoint()
			tt.configure(e)
			err := e.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestGlobalGuardValidate(t *testing.T) {
	if err := (GlobalGuard{AllowHosts: []string{"hooks.internal.example", "10.0.0.0/8", "::1"}}).Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	err := GlobalGuard{AllowHosts: []string{"hooks.internal.example:443"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"hooks.internal.example:443"`) {
		t.Errorf("Validate() = %v, want an error naming the entry", err)
	}
}

func TestValidateEndpointsDuplicateNames(t *testing.T) {
	err := ValidateEndpoints([]*Endpoint{validEndpoint(), validEndpoint()})
	want := `two endpoints are named "orders": give each a unique name`
	if err == nil || err.Error() != want {
		t.Errorf("ValidateEndpoints() = %v, want %q", err, want)
	}
	if err := ValidateEndpoints([]*Endpoint{validEndpoint(), nil}); err == nil || !strings.Contains(err.Error(), "endpoint 2 is null") {
		t.Errorf("ValidateEndpoints() with a nil endpoint = %v", err)
	}
}

func TestEndpointProvision(t *testing.T) {
	t.Setenv("PROVISION_TEST_SECRET", testSecret('p'))
	t.Setenv("PROVISION_TEST_BAD_SECRET", "whsec_hunter2hunter2hunter2")
	t.Setenv("PROVISION_TEST_TOKEN", "abc")

	t.Run("defaults and placeholders", func(t *testing.T) {
		e := validEndpoint()
		e.Secrets = []string{"{env.PROVISION_TEST_SECRET}"}
		e.Headers = http.Header{"X-Token": {"token {env.PROVISION_TEST_TOKEN}"}}
		if err := e.Provision(nil); err != nil {
			t.Fatal(err)
		}
		if len(e.secrets) != 1 || len(e.secrets[0]) != 32 {
			t.Errorf("decoded secrets = %d keys, want one 32-byte key", len(e.secrets))
		}
		if got := e.headers.Get("X-Token"); got != "token abc" {
			t.Errorf("resolved header = %q, want %q", got, "token abc")
		}
		if e.Secrets[0] != "{env.PROVISION_TEST_SECRET}" {
			t.Errorf("configured secret changed to %q; the resolved value must stay out of the config", e.Secrets[0])
		}
		if time.Duration(e.Timeout) != DefaultTimeout || e.Concurrency != DefaultConcurrency ||
			time.Duration(e.RetryAfterMax) != DefaultRetryAfterMax || len(e.Retry) != len(DefaultRetry()) {
			t.Errorf("defaults not filled in: %+v", e)
		}
	})

	t.Run("ordered defaults to one worker", func(t *testing.T) {
		e := validEndpoint()
		e.Ordered = true
		if err := e.Provision(nil); err != nil {
			t.Fatal(err)
		}
		if e.Concurrency != 1 {
			t.Errorf("concurrency = %d, want 1", e.Concurrency)
		}
	})

	errorTests := []struct {
		name    string
		secret  string
		header  string
		want    string
		leakage string
	}{
		{name: "unset variable", secret: "{env.PROVISION_TEST_UNSET}", want: "{env.PROVISION_TEST_UNSET} is empty"},
		{name: "invalid resolved secret", secret: "{env.PROVISION_TEST_BAD_SECRET}", want: `endpoint "orders": secret 1`, leakage: "hunter2"},
		{name: "header line break", secret: testSecret('x'), header: "a\r\nb", want: "line break"},
	}
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEndpoint()
			e.Secrets = []string{tt.secret}
			if tt.header != "" {
				e.Headers = http.Header{"X-Test": {tt.header}}
			}
			err := e.Provision(nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Provision() = %v, want an error containing %q", err, tt.want)
			}
			if tt.leakage != "" && strings.Contains(err.Error(), tt.leakage) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestPatternsOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"order.created", "order.created", true},
		{"order.created", "order.updated", false},
		{"order.*", "order.created", true},
		{"order.*", "order.item.added", false},
		{"order.>", "order.item.added", true},
		{"order.>", "order", false},
		{"*.created", "order.*", true},
		{">", "anything.at.all", true},
		{"order.*.added", "order.item.removed", false},
	}
	for _, tt := range tests {
		if got := patternsOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("patternsOverlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := patternsOverlap(tt.b, tt.a); got != tt.want {
			t.Errorf("patternsOverlap(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestStartRejectsUnprovisionedEndpoint(t *testing.T) {
	js := startJetStream(t)
	_, err := Start(t.Context(), js, defaultLayout, []*Endpoint{validEndpoint()}, Options{})
	if err == nil || !strings.Contains(err.Error(), "call Provision before starting delivery") {
		t.Errorf("Start() = %v, want an error about provisioning", err)
	}
}
