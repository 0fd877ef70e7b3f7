package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// safetyNetError is returned by safetyNet. A test that gets it has found a
// guard that let a non-loopback address through.
type safetyNetError struct{ address string }

func (e *safetyNetError) Error() string {
	return "test_safety_net: connection to " + e.address + " stopped because tests reach only loopback"
}

// safetyNetHits counts the connections that safetyNet stopped.
var safetyNetHits atomic.Int64

// safetyNet runs after the guard on every connection of the package's
// tests and stops any that would leave loopback.
func safetyNet(_, address string) error {
	target, err := netip.ParseAddrPort(address)
	if err != nil || !target.Addr().Unmap().IsLoopback() {
		safetyNetHits.Add(1)
		return &safetyNetError{address: address}
	}
	return nil
}

// fakeResolver answers host name lookups from a table and never queries
// DNS. Tests add their names with set.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
}

var testResolver = &fakeResolver{answers: make(map[string][]netip.Addr)}

// set makes host resolve to addrs until the test ends.
func (f *fakeResolver) set(t *testing.T, host string, addrs ...string) {
	t.Helper()
	parsed := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		parsed[i] = netip.MustParseAddr(a)
	}
	key := strings.ToLower(host)
	f.mu.Lock()
	f.answers[key] = parsed
	f.mu.Unlock()
	t.Cleanup(func() {
		f.mu.Lock()
		delete(f.answers, key)
		f.mu.Unlock()
	})
}

func (f *fakeResolver) lookup(_ context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	answer, ok := f.answers[strings.ToLower(host)]
	f.mu.Unlock()
	if !ok {
		return nil, &net.DNSError{Err: "no such host in the test resolver", Name: host, IsNotFound: true}
	}
	var addrs []netip.Addr
	for _, a := range answer {
		if network == "ip4" && !a.Is4() || network == "ip6" && !a.Is6() {
			continue
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// countingServer is an HTTP server on a loopback address that counts the
// connections it accepts.
type countingServer struct {
	*httptest.Server
	conns atomic.Int64
}

// newCountingServer starts a server on address, such as "127.0.0.1:0" or
// "[::1]:0", that responds 204 to every request. It skips the test when
// the address cannot be bound.
func newCountingServer(t *testing.T, address string) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", address)
	if err != nil {
		t.Skipf("listening on %s: %v", address, err)
	}
	cs := &countingServer{}
	cs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	cs.Listener = ln
	cs.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			cs.conns.Add(1)
		}
	}
	cs.Start()
	t.Cleanup(cs.Close)
	return cs
}

// port returns the server's port.
func (cs *countingServer) port() string {
	_, port, _ := net.SplitHostPort(cs.Listener.Addr().String())
	return port
}

// assertNoConnection checks that the server accepted no connection so far.
// A connection made by a finished attempt may still wait in the listen
// queue, so the check sends a probe request of its own and expects it to
// be the first connection accepted.
func (cs *countingServer) assertNoConnection(t *testing.T) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get(cs.URL + "/probe")
	if err != nil {
		t.Fatalf("probing %s: %v", cs.URL, err)
	}
	resp.Body.Close()
	if n := cs.conns.Load(); n != 1 {
		t.Errorf("receiver accepted %d connections besides the probe, want none", n-1)
	}
}

// guardedSender returns a sender for url whose client has the endpoint
// settings that configure gives.
func guardedSender(t *testing.T, url string, configure func(*Endpoint)) *sender {
	t.Helper()
	e := &Endpoint{Name: "guarded", URL: url, Events: []string{"order.*"}, Timeout: ms(2000)}
	if configure != nil {
		configure(e)
	}
	if err := e.Provision(nil); err != nil {
		t.Fatalf("provisioning endpoint: %v", err)
	}
	e.Concurrency = 1
	client := newHTTPClient(e.clientPolicy())
	t.Cleanup(client.CloseIdleConnections)
	return &sender{
		client:          client,
		url:             url,
		headers:         e.headers,
		signer:          NewSigner(e.secrets),
		timeout:         time.Duration(e.Timeout),
		followRedirects: e.FollowRedirects,
	}
}

func sendTestEvent(t *testing.T, s *sender) attemptResult {
	t.Helper()
	return s.send(t.Context(), &event{id: "evt_guard", eventType: "order.created", payload: []byte(`{"id":1}`)})
}

// assertBlocked checks that the guard refused the attempt, naming the
// address and the settings that would allow it, and that the safety net
// did not have to.
func assertBlocked(t *testing.T, res attemptResult, address string) {
	t.Helper()
	var stopped *safetyNetError
	if errors.As(res.err, &stopped) {
		t.Fatalf("the test safety net stopped a connection to %s that the guard let through", stopped.address)
	}
	if res.errorClass != ClassBlockedDestination {
		t.Fatalf("error class = %q, want %q (error: %v)", res.errorClass, ClassBlockedDestination, res.err)
	}
	for _, want := range []string{address, "allow_private", "allow_hosts"} {
		if !strings.Contains(res.err.Error(), want) {
			t.Errorf("error %q does not contain %q", res.err, want)
		}
	}
	if res.blockedAddress != address {
		t.Errorf("blocked address = %q, want %q", res.blockedAddress, address)
	}
}

func TestGuardRefusesLoopbackListeners(t *testing.T) {
	tests := []struct {
		name    string
		listen  string
		host    string // URL host; the port comes from the listener
		address string // the address the guard reports
	}{
		{name: "IPv4 loopback", listen: "127.0.0.1:0", host: "127.0.0.1", address: "127.0.0.1"},
		{name: "IPv6 loopback", listen: "[::1]:0", host: "[::1]", address: "::1"},
		{name: "IPv4-mapped loopback", listen: "127.0.0.1:0", host: "[::ffff:127.0.0.1]", address: "127.0.0.1"},
		{name: "unspecified", listen: "127.0.0.1:0", host: "0.0.0.0", address: "0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCountingServer(t, tt.listen)
			url := "http://" + tt.host + ":" + srv.port() + "/hook"

			res := sendTestEvent(t, guardedSender(t, url, nil))
			assertBlocked(t, res, tt.address)
			srv.assertNoConnection(t)
		})
	}
}

func TestGuardRefusesInternalAddresses(t *testing.T) {
	before := safetyNetHits.Load()
	for _, address := range []string{"169.254.169.254", "10.0.0.1", "100.64.0.1", "192.168.1.1", "172.16.0.1", "fd00:ec2::254", "fe80::1", "64:ff9b::a00:1"} {
		t.Run(address, func(t *testing.T) {
			host := address
			if strings.Contains(address, ":") {
				host = "[" + address + "]"
			}
			res := sendTestEvent(t, guardedSender(t, "http://"+host+"/latest/meta-data", nil))
			assertBlocked(t, res, address)
		})
	}
	if hits := safetyNetHits.Load() - before; hits != 0 {
		t.Errorf("the safety net stopped %d connections, want none", hits)
	}
}

func TestGuardAllowsWhenConfigured(t *testing.T) {
	tests := []struct {
		name      string
		host      string
		configure func(*Endpoint)
	}{
		{name: "allow_private", host: "127.0.0.1", configure: func(e *Endpoint) { e.AllowPrivate = true }},
		{name: "global allow_private", host: "127.0.0.1", configure: func(e *Endpoint) { e.SetGlobalGuard(GlobalGuard{AllowPrivate: true}) }},
		{name: "allow_hosts CIDR", host: "127.0.0.1", configure: func(e *Endpoint) { e.AllowHosts = []string{"127.0.0.0/8"} }},
		{name: "allow_hosts mapped CIDR", host: "127.0.0.1", configure: func(e *Endpoint) { e.AllowHosts = []string{"::ffff:127.0.0.0/104"} }},
		{name: "allow_hosts address", host: "[::ffff:127.0.0.1]", configure: func(e *Endpoint) { e.AllowHosts = []string{"127.0.0.1"} }},
		{name: "global allow_hosts", host: "127.0.0.1", configure: func(e *Endpoint) { e.SetGlobalGuard(GlobalGuard{AllowHosts: []string{"127.0.0.1/32"}}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCountingServer(t, "127.0.0.1:0")
			res := sendTestEvent(t, guardedSender(t, "http://"+tt.host+":"+srv.port()+"/hook", tt.configure))
			if !res.succeeded() {
				t.Fatalf("attempt failed with class %q: %v", res.errorClass, res.err)
			}
			if n := srv.conns.Load(); n != 1 {
				t.Errorf("receiver accepted %d connections, want 1", n)
			}
		})
	}
}

func TestGuardChecksResolvedAddresses(t *testing.T) {
	srv := newCountingServer(t, "127.0.0.1:0")
	testResolver.set(t, "rebind.test", "127.0.0.1")
	testResolver.set(t, "mixed.test", "203.0.113.7", "127.0.0.1")
	testResolver.set(t, "mapped.test", "::ffff:10.1.2.3")
	url := func(host string) string { return "http://" + host + ":" + srv.port() + "/hook" }

	before := safetyNetHits.Load()
	t.Run("loopback answer", func(t *testing.T) {
		assertBlocked(t, sendTestEvent(t, guardedSender(t, url("rebind.test"), nil)), "127.0.0.1")
	})
	t.Run("public then loopback", func(t *testing.T) {
		res := sendTestEvent(t, guardedSender(t, url("mixed.test"), nil))
		assertBlocked(t, res, "127.0.0.1")
		if !strings.Contains(res.err.Error(), `"mixed.test"`) {
			t.Errorf("error %q does not name the host", res.err)
		}
	})
	t.Run("IPv4-mapped private answer", func(t *testing.T) {
		assertBlocked(t, sendTestEvent(t, guardedSender(t, url("mapped.test"), nil)), "10.1.2.3")
	})
	if hits := safetyNetHits.Load() - before; hits != 0 {
		t.Errorf("the safety net stopped %d connections, want none", hits)
	}
	srv.assertNoConnection(t)

	t.Run("allowed host name", func(t *testing.T) {
		allow := func(e *Endpoint) { e.AllowHosts = []string{"Rebind.Test"} }
		res := sendTestEvent(t, guardedSender(t, url("REBIND.test"), allow))
		if !res.succeeded() {
			t.Fatalf("attempt failed with class %q: %v", res.errorClass, res.err)
		}
	})
	t.Run("other host name not allowed", func(t *testing.T) {
		allow := func(e *Endpoint) { e.AllowHosts = []string{"other.test"} }
		assertBlocked(t, sendTestEvent(t, guardedSender(t, url("rebind.test"), allow)), "127.0.0.1")
	})
}

// TestGuardPassesPublicAddress shows that a public address gets past the
// guard, so the safety net is what stops it in tests.
func TestGuardPassesPublicAddress(t *testing.T) {
	testResolver.set(t, "public.test", "203.0.113.7")
	res := sendTestEvent(t, guardedSender(t, "http://public.test/hook", nil))
	var stopped *safetyNetError
	if !errors.As(res.err, &stopped) {
		t.Fatalf("error = %v (class %q), want the safety net to stop 203.0.113.7:80", res.err, res.errorClass)
	}
	if stopped.address != "203.0.113.7:80" {
		t.Errorf("safety net stopped %s, want 203.0.113.7:80", stopped.address)
	}
}

func TestGuardUnknownHostIsDNSError(t *testing.T) {
	res := sendTestEvent(t, guardedSender(t, "http://missing.test/hook", nil))
	if res.errorClass != ClassDNS {
		t.Errorf("error class = %q, want %q (error: %v)", res.errorClass, ClassDNS, res.err)
	}
}

func TestBlockedKind(t *testing.T) {
	tests := []struct {
		address string
		want    string // substring of the kind; empty means allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"0.0.0.0", "this network"},
		{"0.1.2.3", "this network"},
		{"::", "unspecified"},
		{"10.0.0.1", "RFC 1918"},
		{"172.31.255.255", "RFC 1918"},
		{"192.168.0.1", "RFC 1918"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"169.254.169.254", "link-local"},
		{"192.0.0.170", "IETF protocol assignments"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},
		{"fc00::1", "unique local"},
		{"fd00:ec2::254", "unique local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"100::1", "discard-only"},
		{"2001::1", "Teredo"},
		{"64:ff9b::a00:1", "NAT64 address (RFC 6052) for 10.0.0.1"},
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b:1::1", "NAT64 for local use"},
		{"2002:a00:1::1", "6to4 address (RFC 3056) for 10.0.0.1"},
		{"2002:c0a8:101::1", "192.168.1.1"},

		{"203.0.113.7", ""},
		{"192.0.2.1", ""},
		{"8.8.8.8", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.32.0.1", ""},
		{"198.20.0.1", ""},
		{"2001:db8::1", ""},
		{"2606:4700::1111", ""},
		{"64:ff9b::cb00:7107", ""},
		{"2002:cb00:7107::1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			got := blockedKind(netip.MustParseAddr(tt.address))
			if tt.want == "" {
				if got != "" {
					t.Errorf("blockedKind(%s) = %q, want it allowed", tt.address, got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("blockedKind(%s) = %q, want it to contain %q", tt.address, got, tt.want)
			}
		})
	}
}

func TestParseAllowHost(t *testing.T) {
	tests := []struct {
		entry      string
		wantHost   string
		wantPrefix string
		wantErr    string
	}{
		{entry: "Hooks.Internal.Example.", wantHost: "hooks.internal.example"},
		{entry: "10.1.0.0/16", wantPrefix: "10.1.0.0/16"},
		{entry: "10.1.2.3", wantPrefix: "10.1.2.3/32"},
		{entry: "[::1]", wantPrefix: "::1/128"},
		{entry: "::ffff:10.0.0.0/104", wantPrefix: "10.0.0.0/8"},
		{entry: "10.1.2.3/8", wantErr: "write 10.0.0.0/8"},
		{entry: "10.0.0.0/33", wantErr: "CIDR"},
		{entry: "*.example.com", wantErr: "wildcard"},
		{entry: "hooks.example.com:8443", wantErr: "port"},
		{entry: "https://hooks.example.com", wantErr: "scheme"},
		{entry: "", wantErr: "invalid allow_hosts entry"},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			host, prefix, err := parseAllowHost(tt.entry)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.entry)) {
					t.Errorf("error = %v, want one naming %q and containing %q", err, tt.entry, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAllowHost: %v", err)
			}
			if host != tt.wantHost {
				t.Errorf("host = %q, want %q", host, tt.wantHost)
			}
			if tt.wantPrefix != "" && prefix.String() != tt.wantPrefix {
				t.Errorf("prefix = %s, want %s", prefix, tt.wantPrefix)
			}
		})
	}
}

func TestBlockedDeliveryIsRetriedAndLogged(t *testing.T) {
	js := startJetStream(t)
	rcv := newCountingServer(t, "127.0.0.1:0")
	testResolver.set(t, "internal.test", "127.0.0.1")
	e := newEndpoint(t, "guarded", "http://internal.test:"+rcv.port()+"/hook", func(e *Endpoint) {
		e.AllowPrivate = false
		e.Retry = []caddy.Duration{ms(100)}
	})
	core, logs := observer.New(zapcore.WarnLevel)
	startWorkers(t, js, Options{Logger: zap.New(core)}, e)

	publishEvent(t, js, "evt-blocked", "order.created", []byte(`{"id":1}`))
	waitUntil(t, 10*time.Second, func() error {
		if dead := deadLetters(t, js, "guarded"); len(dead) != 1 {
			return fmt.Errorf("got %d dead letters, want 1", len(dead))
		}
		return nil
	})

	records := attemptRecords(t, js, "guarded", "evt-blocked")
	if len(records) != 2 {
		t.Fatalf("got %d attempt records, want 2", len(records))
	}
	for i, want := range []string{OutcomeRetry, OutcomeDeadLetter} {
		rec := records[i]
		if rec.Outcome != want || rec.ErrorClass != ClassBlockedDestination {
			t.Errorf("attempt %d: outcome %q, class %q; want %q, %q", i+1, rec.Outcome, rec.ErrorClass, want, ClassBlockedDestination)
		}
		for _, part := range []string{"127.0.0.1", `"internal.test"`, "allow_private", "allow_hosts"} {
			if !strings.Contains(rec.Error, part) {
				t.Errorf("attempt %d: error %q does not contain %q", i+1, rec.Error, part)
			}
		}
	}

	warnings := logs.FilterMessage("webhook attempt failed; will retry").FilterField(zap.String("address", "127.0.0.1")).All()
	if len(warnings) != 1 {
		t.Fatalf("got %d retry warnings naming address 127.0.0.1, want 1; all entries: %v", len(warnings), logs.All())
	}
	fields := warnings[0].ContextMap()
	if fields["destination"] != "guarded" || fields["error_class"] != ClassBlockedDestination || fields["event_id"] != "evt-blocked" {
		t.Errorf("warning fields = %v, want destination guarded, class %s and the event id", fields, ClassBlockedDestination)
	}
	rcv.assertNoConnection(t)
}

// TestDialControlChecksEachConnection dials a blocked address directly,
// past the check of the resolved addresses, to show that the check in
// net.Dialer.Control stops the connection on its own.
func TestDialControlChecksEachConnection(t *testing.T) {
	srv := newCountingServer(t, "127.0.0.1:0")
	g, err := newGuard(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &dialer{guard: g}
	target := netip.MustParseAddrPort(srv.Listener.Addr().String())

	conn, err := d.dialOne(t.Context(), "tcp", "rebind.test", target, 1)
	if err == nil {
		conn.Close()
		t.Fatal("dialOne connected to a blocked address")
	}
	var blocked *blockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("error = %v, want a blocked destination error", err)
	}
	if blocked.addr != target.Addr() || blocked.host != "rebind.test" {
		t.Errorf("blocked %s of host %q, want %s of host rebind.test", blocked.addr, blocked.host, target.Addr())
	}
	srv.assertNoConnection(t)
}
