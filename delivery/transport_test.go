package delivery

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/internal/testpki"
)

// newTLSReceiver starts an https server on 127.0.0.1 with cert that records
// the common name of the client certificate of each request.
func newTLSReceiver(t *testing.T, cert tls.Certificate, clientCA *testpki.CA) (*httptest.Server, func() []string) {
	t.Helper()
	var (
		mu      sync.Mutex
		clients []string
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		if len(r.TLS.PeerCertificates) > 0 {
			name = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		mu.Lock()
		clients = append(clients, name)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.Cert)
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = pool
	}
	// Failed handshakes are the point of these tests.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), clients...)
	}
}

func TestTLSFailureClasses(t *testing.T) {
	ca := testpki.NewCA(t)
	tests := []struct {
		name      string
		cert      func() tls.Certificate
		trustCA   bool
		wantClass string
		wantError string
	}{
		{
			name: "expired",
			cert: func() tls.Certificate {
				cert, _, _ := ca.Issue(t, testpki.Options{CommonName: "expired", IPs: testpki.Loopback, NotAfter: time.Now().Add(-time.Minute)})
				return cert
			},
			trustCA:   true,
			wantClass: ClassTLSExpired,
			wantError: "expired",
		},
		{
			name: "self-signed",
			cert: func() tls.Certificate {
				cert, _, _ := (*testpki.CA)(nil).Issue(t, testpki.Options{CommonName: "self", IPs: testpki.Loopback})
				return cert
			},
			wantClass: ClassTLSUnknownAuthority,
			wantError: "unknown authority",
		},
		{
			name: "unknown CA",
			cert: func() tls.Certificate {
				cert, _, _ := ca.Issue(t, testpki.Options{CommonName: "other-ca", IPs: testpki.Loopback})
				return cert
			},
			wantClass: ClassTLSUnknownAuthority,
			wantError: "unknown authority",
		},
		{
			name: "wrong host",
			cert: func() tls.Certificate {
				cert, _, _ := ca.Issue(t, testpki.Options{CommonName: "elsewhere", DNSNames: []string{"hooks.example.com"}})
				return cert
			},
			trustCA:   true,
			wantClass: ClassTLSHostname,
			wantError: "127.0.0.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, clients := newTLSReceiver(t, tt.cert(), nil)
			s := guardedSender(t, srv.URL, func(e *Endpoint) {
				e.AllowPrivate = true
				if tt.trustCA {
					e.TLS = &TLS{CA: []string{ca.PEMFile}}
				}
			})
			res := sendTestEvent(t, s)
			if res.errorClass != tt.wantClass {
				t.Errorf("error class = %q, want %q (error: %v)", res.errorClass, tt.wantClass, res.err)
			}
			if res.err == nil || !strings.Contains(res.err.Error(), tt.wantError) {
				t.Errorf("error = %v, want it to contain %q", res.err, tt.wantError)
			}
			if got := clients(); len(got) != 0 {
				t.Errorf("receiver handled %d requests over a certificate the client must reject", len(got))
			}
		})
	}
}

func TestTLSPrivateCA(t *testing.T) {
	ca := testpki.NewCA(t)
	cert, _, _ := ca.Issue(t, testpki.Options{CommonName: "receiver", IPs: testpki.Loopback})
	srv, clients := newTLSReceiver(t, cert, nil)

	s := guardedSender(t, srv.URL, func(e *Endpoint) {
		e.AllowPrivate = true
		e.TLS = &TLS{CA: []string{ca.PEMFile}}
	})
	if res := sendTestEvent(t, s); !res.succeeded() {
		t.Fatalf("delivery with the private CA failed: class %q, error %v", res.errorClass, res.err)
	}
	if got := clients(); len(got) != 1 {
		t.Errorf("receiver handled %d requests, want 1", len(got))
	}
}

func TestTLSClientCertificate(t *testing.T) {
	ca := testpki.NewCA(t)
	serverCert, _, _ := ca.Issue(t, testpki.Options{CommonName: "receiver", IPs: testpki.Loopback})
	_, certFile, keyFile := ca.Issue(t, testpki.Options{CommonName: "webhook-sender", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	srv, clients := newTLSReceiver(t, serverCert, ca)

	withCert := guardedSender(t, srv.URL, func(e *Endpoint) {
		e.AllowPrivate = true
		e.TLS = &TLS{CA: []string{ca.PEMFile}, ClientCertificate: &ClientCertificate{Certificate: certFile, Key: keyFile}}
	})
	if res := sendTestEvent(t, withCert); !res.succeeded() {
		t.Fatalf("delivery with the client certificate failed: class %q, error %v", res.errorClass, res.err)
	}
	if got := clients(); len(got) != 1 || got[0] != "webhook-sender" {
		t.Errorf("receiver saw client certificates %q, want one request from webhook-sender", got)
	}

	withoutCert := guardedSender(t, srv.URL, func(e *Endpoint) {
		e.AllowPrivate = true
		e.TLS = &TLS{CA: []string{ca.PEMFile}}
	})
	res := sendTestEvent(t, withoutCert)
	if res.errorClass != ClassTLS {
		t.Errorf("without a client certificate: class %q, want %q (error: %v)", res.errorClass, ClassTLS, res.err)
	}
}

func TestTLSProvisionErrors(t *testing.T) {
	ca := testpki.NewCA(t)
	_, certFile, keyFile := ca.Issue(t, testpki.Options{CommonName: "client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	_, _, otherKey := ca.Issue(t, testpki.Options{CommonName: "other", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		tls  *TLS
		want []string
	}{
		{name: "missing ca", tls: &TLS{CA: []string{missing}}, want: []string{`reading tls ca file "` + missing + `"`}},
		{name: "ca without certificate", tls: &TLS{CA: []string{notPEM}}, want: []string{`tls ca file "` + notPEM + `" contains no PEM certificate`}},
		{name: "missing client certificate", tls: &TLS{ClientCertificate: &ClientCertificate{Certificate: missing, Key: keyFile}}, want: []string{missing, "client_certificate"}},
		{name: "key of another certificate", tls: &TLS{ClientCertificate: &ClientCertificate{Certificate: certFile, Key: otherKey}}, want: []string{certFile, otherKey, "matching"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Endpoint{Name: "orders", URL: "https://hooks.example.com/", Events: []string{"order.*"}, TLS: tt.tls}
			if err := e.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil because the files are read by Provision", err)
			}
			err := e.Provision(nil)
			if err == nil {
				t.Fatal("Provision() = nil, want an error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestTransportValidate(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*Endpoint)
		want      string // empty when valid
	}{
		{name: "empty ca", configure: func(e *Endpoint) { e.TLS = &TLS{CA: []string{" "}} }, want: "tls ca 1 is empty"},
		{name: "client certificate without key", configure: func(e *Endpoint) {
			e.TLS = &TLS{ClientCertificate: &ClientCertificate{Certificate: "client.pem"}}
		}, want: "needs both a certificate file and a key file"},
		{name: "proxy", configure: func(e *Endpoint) { e.Proxy = "http://proxy.example.com:3128" }},
		{name: "proxy with placeholder", configure: func(e *Endpoint) { e.Proxy = "{env.WEBHOOKS_PROXY}" }},
		{name: "proxy scheme", configure: func(e *Endpoint) { e.Proxy = "socks5://proxy.example.com" }, want: "scheme must be http or https"},
		{name: "proxy without host", configure: func(e *Endpoint) { e.Proxy = "http:///x" }, want: "host is missing"},
		{name: "proxy on loopback", configure: func(e *Endpoint) { e.Proxy = "http://user:hunter2@127.0.0.1:3128" }, want: `proxy "http://127.0.0.1:3128": address 127.0.0.1 is blocked`},
		{name: "proxy on allowed loopback", configure: func(e *Endpoint) {
			e.Proxy = "http://127.0.0.1:3128"
			e.AllowHosts = []string{"127.0.0.1"}
		}},
		{name: "proxy in decimal", configure: func(e *Endpoint) { e.Proxy = "http://2130706433:3128" }, want: "non-standard form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Endpoint{Name: "orders", URL: "https://hooks.example.com/", Events: []string{"order.*"}}
			tt.configure(e)
			err := e.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q contains the proxy password", err)
			}
		})
	}
}

// testProxy is an HTTP forward proxy on 127.0.0.1 that sends every request
// and tunnel to target, whatever host the client asked for, and records
// the hosts and the Proxy-Authorization headers it got.
type testProxy struct {
	*httptest.Server
	target string

	mu     sync.Mutex
	hosts  []string
	tokens []string
}

func newTestProxy(t *testing.T, target string) *testProxy {
	t.Helper()
	p := &testProxy{target: target}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *testProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.hosts = append(p.hosts, r.Method+" "+r.Host)
	p.tokens = append(p.tokens, r.Header.Get("Proxy-Authorization"))
	p.mu.Unlock()

	upstream, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer upstream.Close()

	if r.Method == http.MethodConnect {
		w.WriteHeader(http.StatusOK)
		conn, buffered, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		go func() { _, _ = io.Copy(upstream, buffered) }()
		_, _ = io.Copy(conn, upstream)
		return
	}

	// A plain http request arrives in absolute form: pass it on in origin
	// form and copy the response back.
	r.RequestURI = ""
	r.Header.Del("Proxy-Authorization")
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = "", ""
	if err := out.Write(upstream); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(upstream), out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *testProxy) seen() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hosts...), append([]string(nil), p.tokens...)
}

func TestProxyCarriesDeliveries(t *testing.T) {
	ca := testpki.NewCA(t)
	// The receivers are named hooks.partner.test, which the test resolver
	// cannot resolve, so only the proxy can reach them.
	cert, _, _ := ca.Issue(t, testpki.Options{CommonName: "partner", DNSNames: []string{"hooks.partner.test"}})
	tlsReceiver, tlsClients := newTLSReceiver(t, cert, nil)
	plainReceiver := newReceiver(t, nil)

	tests := []struct {
		name, url, target, wantHost string
		tls                         *TLS
	}{
		{name: "https through CONNECT", url: "https://hooks.partner.test/orders", target: tlsReceiver.Listener.Addr().String(), wantHost: "CONNECT hooks.partner.test:443", tls: &TLS{CA: []string{ca.PEMFile}}},
		{name: "plain http", url: "http://hooks.partner.test/orders", target: plainReceiver.Listener.Addr().String(), wantHost: "POST hooks.partner.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TEST_PROXY_PASSWORD", "proxy-pass-123")
			proxy := newTestProxy(t, tt.target)
			proxyURL := strings.Replace(proxy.URL, "http://", "http://sender:{env.TEST_PROXY_PASSWORD}@", 1)

			s := guardedSender(t, tt.url, func(e *Endpoint) {
				e.Proxy = proxyURL
				e.AllowHosts = []string{"127.0.0.1"}
				e.TLS = tt.tls
			})
			if res := sendTestEvent(t, s); !res.succeeded() {
				t.Fatalf("delivery through the proxy failed: class %q, error %v", res.errorClass, res.err)
			}
			hosts, tokens := proxy.seen()
			if len(hosts) != 1 || hosts[0] != tt.wantHost {
				t.Errorf("proxy saw %q, want one %q", hosts, tt.wantHost)
			}
			wantToken := "Basic c2VuZGVyOnByb3h5LXBhc3MtMTIz" // sender:proxy-pass-123
			if len(tokens) != 1 || tokens[0] != wantToken {
				t.Errorf("proxy got Proxy-Authorization %q, want %q", tokens, wantToken)
			}
		})
	}
	if got := tlsClients(); len(got) != 1 {
		t.Errorf("https receiver handled %d requests, want 1", len(got))
	}
	if got := plainReceiver.received(); len(got) != 1 || got[0].id() != "evt_guard" {
		t.Errorf("http receiver got %d requests, want the one event", len(got))
	}
}

func TestProxyAddressIsGuarded(t *testing.T) {
	t.Setenv("TEST_PROXY_PASSWORD", "proxy-pass-456")
	proxy := newCountingServer(t, "127.0.0.1:0")
	testResolver.set(t, "proxy.internal.test", "127.0.0.1")

	s := guardedSender(t, "https://hooks.example.com/orders", func(e *Endpoint) {
		e.Proxy = "http://sender:{env.TEST_PROXY_PASSWORD}@proxy.internal.test:" + proxy.port()
	})
	res := sendTestEvent(t, s)
	assertBlocked(t, res, "127.0.0.1")
	if !strings.Contains(res.err.Error(), `"proxy.internal.test"`) {
		t.Errorf("error %q does not name the proxy host", res.err)
	}
	if strings.Contains(res.err.Error(), "proxy-pass-456") {
		t.Errorf("error %q contains the proxy password", res.err)
	}
	proxy.assertNoConnection(t)
}

func TestProxyProvisionErrors(t *testing.T) {
	tests := []struct {
		name, proxy, want string
	}{
		{name: "missing variable", proxy: "http://{env.TEST_PROXY_UNSET_VARIABLE}:3128", want: "resolving proxy"},
		{name: "resolved to loopback", proxy: "{env.TEST_PROXY_URL}", want: `proxy "http://127.0.0.1:3128": address 127.0.0.1 is blocked`},
	}
	t.Setenv("TEST_PROXY_URL", "http://user:hunter2@127.0.0.1:3128")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Endpoint{Name: "orders", URL: "https://hooks.example.com/", Events: []string{"order.*"}, Proxy: tt.proxy}
			err := e.Provision(nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Provision() = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q contains the proxy password", err)
			}
		})
	}
}
