package delivery

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-webhooks/caddy-webhooks/internal/testpki"
)

// TestSecretsStayOutOfLogsAndRecords runs deliveries that succeed, fail,
// time out, are redirected, are blocked and fail TLS, with a signing
// secret, a header token and a proxy password from {env.*} placeholders
// and a token in the URL query. No log line, attempt record or dead letter
// may contain any of them.
func TestSecretsStayOutOfLogsAndRecords(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	keyBase64 := base64.StdEncoding.EncodeToString(key)
	secret := SecretPrefix + keyBase64
	const (
		token         = "header-token-7f3a9c"
		queryToken    = "query-token-51be0d"
		proxyPassword = "proxy-password-c4e821"
	)
	t.Setenv("TEST_WEBHOOK_SECRET", secret)
	t.Setenv("TEST_WEBHOOK_TOKEN", token)
	t.Setenv("TEST_PROXY_PASSWORD", proxyPassword)
	forbidden := []string{secret, keyBase64, string(key), token, queryToken, proxyPassword}

	js := startJetStream(t)
	ok := newReceiver(t, nil)
	failing := newReceiver(t, respondWith(http.StatusInternalServerError))
	hanging := newReceiver(t, func(_ int, _ recordedRequest, w http.ResponseWriter) {
		time.Sleep(500 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	redirecting := newReceiver(t, func(_ int, _ recordedRequest, w http.ResponseWriter) {
		w.Header().Set("Location", "https://hooks.example.com/moved?token="+queryToken)
		w.WriteHeader(http.StatusFound)
		fmt.Fprintf(w, "moved to https://hooks.example.com/moved?token=%s", queryToken)
	})
	blocked := newCountingServer(t, "127.0.0.1:0")
	testResolver.set(t, "internal.test", "127.0.0.1")
	testResolver.set(t, "proxy.internal.test", "127.0.0.1")
	selfSignedCert, _, _ := (*testpki.CA)(nil).Issue(t, testpki.Options{CommonName: "self", IPs: testpki.Loopback})
	selfSigned, _ := newTLSReceiver(t, selfSignedCert, nil)

	withQuery := func(base string) string { return base + "/hook?token=" + queryToken }
	configs := []struct {
		name, url string
		configure func(*Endpoint)
	}{
		{name: "ok", url: withQuery(ok.URL)},
		{name: "failing", url: withQuery(failing.URL)},
		{name: "hanging", url: withQuery(hanging.URL), configure: func(e *Endpoint) { e.Timeout = ms(200) }},
		{name: "redirecting", url: withQuery(redirecting.URL)},
		{name: "blocked", url: withQuery("http://internal.test:" + blocked.port()), configure: func(e *Endpoint) { e.AllowPrivate = false }},
		{name: "blocked_proxy", url: withQuery("https://hooks.example.com"), configure: func(e *Endpoint) {
			e.AllowPrivate = false
			e.Proxy = "http://sender:{env.TEST_PROXY_PASSWORD}@proxy.internal.test:" + blocked.port()
		}},
		{name: "self_signed", url: withQuery(selfSigned.URL)},
		{name: "user_info", url: strings.Replace(withQuery(failing.URL), "http://", "http://sender:"+queryToken+"@", 1)},
	}
	endpoints := make([]*Endpoint, 0, len(configs))
	for _, c := range configs {
		endpoints = append(endpoints, newEndpoint(t, c.name, c.url, func(e *Endpoint) {
			e.Secrets = []string{"{env.TEST_WEBHOOK_SECRET}"}
			e.Headers = http.Header{"Authorization": {"Bearer {env.TEST_WEBHOOK_TOKEN}"}}
			e.Retry = []caddy.Duration{ms(50)}
			if c.configure != nil {
				c.configure(e)
			}
		}))
	}

	core, logs := observer.New(zapcore.DebugLevel)
	startWorkers(t, js, Options{Logger: zap.New(core)}, endpoints...)
	publishEvent(t, js, "evt-secret", "order.created", []byte(`{"id":1}`))

	// Every endpoint but ok ends with a dead letter.
	waitUntil(t, 20*time.Second, func() error {
		for _, c := range configs[1:] {
			if dead := deadLetters(t, js, c.name); len(dead) != 1 {
				return fmt.Errorf("endpoint %s has %d dead letters, want 1", c.name, len(dead))
			}
		}
		if records := attemptRecords(t, js, "ok", "evt-secret"); len(records) != 1 {
			return fmt.Errorf("endpoint ok has %d attempt records, want 1", len(records))
		}
		return nil
	})

	// The receivers did get the secrets, so the test cannot pass because
	// they were never sent.
	if got := ok.received(); len(got) != 1 || got[0].header.Get("Authorization") != "Bearer "+token {
		t.Fatalf("receiver ok did not get the header token")
	}
	blocked.assertNoConnection(t)

	var texts []string
	for _, entry := range logs.All() {
		texts = append(texts, fmt.Sprintf("log %q %v", entry.Message, entry.ContextMap()))
	}
	wantClasses := map[string]string{
		"ok": "", "failing": ClassStatus, "hanging": ClassTimeout, "redirecting": ClassRedirect,
		"blocked": ClassBlockedDestination, "blocked_proxy": ClassBlockedDestination,
		"self_signed": ClassTLSUnknownAuthority, "user_info": ClassStatus,
	}
	for _, c := range configs {
		for _, rec := range attemptRecords(t, js, c.name, "evt-secret") {
			if rec.ErrorClass != wantClasses[c.name] {
				t.Errorf("endpoint %s: attempt class %q, want %q", c.name, rec.ErrorClass, wantClasses[c.name])
			}
			data, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, "attempt record "+string(data))
		}
		for _, dead := range deadLetters(t, js, c.name) {
			data, err := json.Marshal(dead)
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, "dead letter "+string(data))
		}
	}
	if len(texts) < 2*len(configs) {
		t.Fatalf("collected only %d log lines and records", len(texts))
	}
	for _, text := range texts {
		for _, value := range forbidden {
			if strings.Contains(text, value) {
				t.Errorf("%s contains the secret value %q", text, value)
			}
		}
	}
}
