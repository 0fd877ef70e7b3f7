package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// maxResponseHeaderBytes bounds the status line and headers of a response.
// A receiver that sends more fails the attempt with class connection.
const maxResponseHeaderBytes = 64 << 10

// TLS holds the settings for https connections to a receiver. Certificates
// are always verified, and no setting turns verification off.
type TLS struct {
	// CA lists PEM files with the certificates of the authorities that
	// sign the receiver's certificate, for receivers with a private CA.
	// When set, these authorities are trusted instead of the system's
	// roots. An https proxy is verified against them too. The files are
	// read when the config loads. Default: the system's roots.
	CA []string `json:"ca,omitempty"`

	// ClientCertificate is presented to receivers that ask for one (mutual
	// TLS). Default: none.
	ClientCertificate *ClientCertificate `json:"client_certificate,omitempty"`
}

// ClientCertificate names the PEM files of a client certificate and its
// private key.
type ClientCertificate struct {
	// Certificate is the PEM file of the certificate, followed by any
	// intermediate certificates.
	Certificate string `json:"certificate"`

	// Key is the PEM file of the certificate's private key.
	Key string `json:"key"`
}

// validate checks that the TLS settings name their files.
func (t *TLS) validate() error {
	if t == nil {
		return nil
	}
	for i, file := range t.CA {
		if strings.TrimSpace(file) == "" {
			return fmt.Errorf("tls ca %d is empty: give the path of a PEM file", i+1)
		}
	}
	cc := t.ClientCertificate
	if cc != nil && (cc.Certificate == "" || cc.Key == "") {
		return errors.New("tls client_certificate needs both a certificate file and a key file")
	}
	return nil
}

// build reads the files and returns the client TLS config, or nil for the
// defaults of net/http.
func (t *TLS) build() (*tls.Config, error) {
	if t == nil || len(t.CA) == 0 && t.ClientCertificate == nil {
		return nil, nil
	}
	cfg := new(tls.Config)
	if len(t.CA) > 0 {
		pool := x509.NewCertPool()
		for _, file := range t.CA {
			pem, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("reading tls ca file %q: %w", file, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls ca file %q contains no PEM certificate: give a file with one or more -----BEGIN CERTIFICATE----- blocks", file)
			}
		}
		cfg.RootCAs = pool
	}
	if cc := t.ClientCertificate; cc != nil {
		cert, err := tls.LoadX509KeyPair(cc.Certificate, cc.Key)
		if err != nil {
			// Some errors of LoadX509KeyPair name neither file. Its errors
			// are fixed texts or file errors, with no key material.
			return nil, fmt.Errorf("loading tls client_certificate %q with key %q: %w; give a PEM certificate and its matching PEM private key", cc.Certificate, cc.Key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// parseProxy checks an egress proxy URL. Errors show only its scheme, host
// and path, never its credentials.
func parseProxy(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error quotes the URL, which may carry a password.
		return nil, errors.New("parsing proxy: it is not a valid URL; use an address such as http://proxy.example.com:3128")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid proxy %q: scheme must be http or https", redactedTarget(u))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("invalid proxy %q: host is missing", redactedTarget(u))
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid proxy %q: give only the scheme, host and port, such as http://proxy.example.com:3128", redactedTarget(u))
	}
	return u, nil
}

// checkLiteralHost rejects a URL whose host is an IP address that g blocks.
// what names the setting in the error, and host names pass, because their
// addresses are checked at each connection.
func checkLiteralHost(g *guard, what string, u *url.URL) error {
	host := u.Hostname()
	addr, err := netip.ParseAddr(host)
	if err != nil {
		if isAltIPv4Spelling(host) {
			return fmt.Errorf("%s host %q is an IP address in a non-standard form: write it as four decimal numbers such as 192.0.2.10", what, host)
		}
		return nil
	}
	if err := g.check(host, addr); err != nil {
		return fmt.Errorf("%s %q: %w", what, redactedTarget(u), err)
	}
	return nil
}

// provisionTransport resolves the placeholders of the proxy and reads the
// TLS files.
func (e *Endpoint) provisionTransport(repl *caddy.Replacer) error {
	cfg, err := e.TLS.build()
	if err != nil {
		return err
	}
	e.tlsConfig = cfg

	e.proxyURL = nil
	if e.Proxy == "" {
		return nil
	}
	resolved, err := repl.ReplaceOrErr(e.Proxy, true, true)
	if err != nil {
		return fmt.Errorf("resolving proxy: %w; set the environment variable or create the file that the placeholder names", err)
	}
	u, err := parseProxy(resolved)
	if err != nil {
		return err
	}
	if err := checkLiteralHost(e.guard, "proxy", u); err != nil {
		return err
	}
	e.proxyURL = u
	return nil
}

// validateTransport checks the tls settings and a proxy without
// placeholders.
func (e *Endpoint) validateTransport() error {
	if err := e.TLS.validate(); err != nil {
		return err
	}
	if e.Proxy == "" || strings.ContainsAny(e.Proxy, "{}") {
		return nil
	}
	u, err := parseProxy(e.Proxy)
	if err != nil {
		return err
	}
	g, err := newGuard(e.allowPrivate(), e.allowHosts())
	if err != nil {
		return err
	}
	return checkLiteralHost(g, "proxy", u)
}

// proxyHost returns the host and port of a proxy URL without its
// credentials, or "" without a proxy.
func proxyHost(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Host
}

// clientPolicy holds the settings that the HTTP client of an endpoint
// enforces.
type clientPolicy struct {
	guard           *guard
	followRedirects bool
	httpsOnly       bool
	concurrency     int

	// timeout bounds the wait for the response headers. The attempt's
	// context bounds the whole attempt as well.
	timeout time.Duration

	// tlsConfig is nil for the defaults of net/http.
	tlsConfig *tls.Config

	// proxy, when set, receives every connection. The guard then checks
	// the proxy's address, and only the proxy connects to the receiver.
	proxy *url.URL
}

// clientPolicy returns the client settings of a provisioned endpoint.
func (e *Endpoint) clientPolicy() clientPolicy {
	return clientPolicy{
		guard:           e.guard,
		followRedirects: e.FollowRedirects,
		httpsOnly:       e.httpsOnly(),
		concurrency:     e.Concurrency,
		timeout:         time.Duration(e.Timeout),
		tlsConfig:       e.tlsConfig,
		proxy:           e.proxyURL,
	}
}

func newHTTPClient(policy clientPolicy) *http.Client {
	dial := &dialer{guard: policy.guard, base: net.Dialer{KeepAlive: 30 * time.Second}}
	transport := &http.Transport{
		// Without a proxy setting, Proxy stays nil, so webhooks go straight
		// to the endpoint even when HTTP_PROXY is set.
		DialContext:            dial.DialContext,
		TLSClientConfig:        policy.tlsConfig.Clone(),
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           policy.concurrency,
		MaxIdleConnsPerHost:    policy.concurrency,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  policy.timeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	if policy.proxy != nil {
		transport.Proxy = http.ProxyURL(policy.proxy)
	}
	redirects := redirectPolicy{follow: policy.followRedirects, httpsOnly: policy.httpsOnly}
	return &http.Client{
		Transport:     transport,
		CheckRedirect: redirects.check,
	}
}
