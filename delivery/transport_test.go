package delivery

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority that exists only for one test.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemFile string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "caddy-webhooks test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing CA certificate: %v", err)
	}
	file := writePEM(t, "ca.pem", "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, pemFile: file}
}

// certOptions describes a certificate that testCA.issue signs.
type certOptions struct {
	commonName string
	dnsNames   []string
	ips        []net.IP
	notAfter   time.Time // zero means an hour from now
	client     bool
}

// issue signs a certificate; a nil ca makes it self-signed. It returns the
// certificate for a tls.Config and the paths of its PEM files.
func (ca *testCA) issue(t *testing.T, opts certOptions) (tls.Certificate, string, string) {
	t.Helper()
	key := newKey(t)
	notAfter := opts.notAfter
	if notAfter.IsZero() {
		notAfter = time.Now().Add(time.Hour)
	}

	usage := x509.ExtKeyUsageServerAuth
	if opts.client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: opts.commonName},
		DNSNames:     opts.dnsNames,
		IPAddresses:  opts.ips,
		NotBefore:    notAfter.Add(-2 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}

	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatalf("creating certificate: %v", err)
	}

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("encoding key: %v", err)
	}
	certFile := writePEM(t, opts.commonName+".pem", "CERTIFICATE", der)
	keyFile := writePEM(t, opts.commonName+".key", "PRIVATE KEY", keyDER)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certFile, keyFile
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	return key
}

func writePEM(t *testing.T, name, blockType string, der []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
	return file
}

var loopbackIP = []net.IP{net.IPv4(127, 0, 0, 1)}

// newTLSReceiver starts an https server on 127.0.0.1 with cert that records
// the common name of the client certificate of each request.
func newTLSReceiver(t *testing.T, cert tls.Certificate, clientCA *testCA) (*httptest.Server, func() []string) {
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
		pool.AddCert(clientCA.cert)
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
	ca := newTestCA(t)
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
				cert, _, _ := ca.issue(t, certOptions{commonName: "expired", ips: loopbackIP, notAfter: time.Now().Add(-time.Minute)})
				return cert
			},
			trustCA:   true,
			wantClass: ClassTLSExpired,
			wantError: "expired",
		},
		{
			name: "self-signed",
			cert: func() tls.Certificate {
				cert, _, _ := (*testCA)(nil).issue(t, certOptions{commonName: "self", ips: loopbackIP})
				return cert
			},
			wantClass: ClassTLSUnknownAuthority,
			wantError: "unknown authority",
		},
		{
			name: "unknown CA",
			cert: func() tls.Certificate {
				cert, _, _ := ca.issue(t, certOptions{commonName: "other-ca", ips: loopbackIP})
				return cert
			},
			wantClass: ClassTLSUnknownAuthority,
			wantError: "unknown authority",
		},
		{
			name: "wrong host",
			cert: func() tls.Certificate {
				cert, _, _ := ca.issue(t, certOptions{commonName: "elsewhere", dnsNames: []string{"hooks.example.com"}})
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
					e.TLS = &TLS{CA: []string{ca.pemFile}}
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
	ca := newTestCA(t)
	cert, _, _ := ca.issue(t, certOptions{commonName: "receiver", ips: loopbackIP})
	srv, clients := newTLSReceiver(t, cert, nil)

	s := guardedSender(t, srv.URL, func(e *Endpoint) {
		e.AllowPrivate = true
		e.TLS = &TLS{CA: []string{ca.pemFile}}
	})
	if res := sendTestEvent(t, s); !res.succeeded() {
		t.Fatalf("delivery with the private CA failed: class %q, error %v", res.errorClass, res.err)
	}
	if got := clients(); len(got) != 1 {
		t.Errorf("receiver handled %d requests, want 1", len(got))
	}
}

func TestTLSClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	serverCert, _, _ := ca.issue(t, certOptions{commonName: "receiver", ips: loopbackIP})
	_, certFile, keyFile := ca.issue(t, certOptions{commonName: "webhook-sender", client: true})
	srv, clients := newTLSReceiver(t, serverCert, ca)

	withCert := guardedSender(t, srv.URL, func(e *Endpoint) {
		e.AllowPrivate = true
		e.TLS = &TLS{CA: []string{ca.pemFile}, ClientCertificate: &ClientCertificate{Certificate: certFile, Key: keyFile}}
	})
	if res := sendTestEvent(t, withCert); !res.succeeded() {
		t.Fatalf("delivery with the client certificate failed: class %q, error %v", res.errorClass, res.err)
	}
	if got := clients(); len(got) != 1 || got[0] != "webhook-sender" {
		t.Errorf("receiver saw client certificates %q, want one request from webhook-sender", got)
	}

	withoutCert := guardedSender(t, srv.URL, func(e *Endpoint) {
		e.AllowPrivate = true
		e.TLS = &TLS{CA: []string{ca.pemFile}}
	})
	res := sendTestEvent(t, withoutCert)
	if res.errorClass != ClassTLS {
		t.Errorf("without a client certificate: class %q, want %q (error: %v)", res.errorClass, ClassTLS, res.err)
	}
}

func TestTLSProvisionErrors(t *testing.T) {
	ca := newTestCA(t)
	_, certFile, keyFile := ca.issue(t, certOptions{commonName: "client", client: true})
	_, _, otherKey := ca.issue(t, certOptions{commonName: "other", client: true})
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
	ca := newTestCA(t)
	// The receivers are named hooks.partner.test, which the test resolver
	// cannot resolve, so only the proxy can reach them.
	cert, _, _ := ca.issue(t, certOptions{commonName: "partner", dnsNames: []string{"hooks.partner.test"}})
	tlsReceiver, tlsClients := newTLSReceiver(t, cert, nil)
	plainReceiver := newReceiver(t, nil)

	tests := []struct {
		name, url, target, wantHost string
		tls                         *TLS
	}{
		{name: "https through CONNECT", url: "https://hooks.partner.test/orders", target: tlsReceiver.Listener.Addr().String(), wantHost: "CONNECT hooks.partner.test:443", tls: &TLS{CA: []string{ca.pemFile}}},
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
