package delivery

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// hopRecorder records the requests that reach a test receiver.
type hopRecorder struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func (h *hopRecorder) record(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, r)
	h.bodies = append(h.bodies, string(body))
}

func (h *hopRecorder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.requests)
}

// redirectingServer responds to every request with status and a Location
// that target returns.
func redirectingServer(t *testing.T, status int, target func(r *http.Request) string) (*httptest.Server, *hopRecorder) {
	t.Helper()
	rec := new(hopRecorder)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.Header().Set("Location", target(r))
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func finalServer(t *testing.T) (*httptest.Server, *hopRecorder) {
	t.Helper()
	rec := new(hopRecorder)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func TestFollowRedirectKeepsRequest(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			final, finalRec := finalServer(t)
			first, firstRec := redirectingServer(t, status, func(*http.Request) string { return final.URL + "/moved" })

			s := guardedSender(t, first.URL+"/hook?token=abc", func(e *Endpoint) {
				e.AllowPrivate = true
				e.FollowRedirects = true
				e.Secrets = []string{testSecret('r')}
				e.Headers = http.Header{"Authorization": {"Bearer t0ken"}}
			})
			res := sendTestEvent(t, s)
			if !res.succeeded() {
				t.Fatalf("attempt failed with class %q: %v", res.errorClass, res.err)
			}
			if firstRec.count() != 1 || finalRec.count() != 1 {
				t.Fatalf("requests: first %d, final %d; want 1 each", firstRec.count(), finalRec.count())
			}

			sent, got := firstRec.requests[0], finalRec.requests[0]
			if got.Method != http.MethodPost {
				t.Errorf("method at the target = %s, want POST", got.Method)
			}
			if finalRec.bodies[0] != `{"id":1}` {
				t.Errorf("body at the target = %q, want the payload", finalRec.bodies[0])
			}
			for _, name := range []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Authorization", "Content-Type"} {
				if got.Header.Get(name) == "" || got.Header.Get(name) != sent.Header.Get(name) {
					t.Errorf("%s at the target = %q, want %q as in the first request", name, got.Header.Get(name), sent.Header.Get(name))
				}
			}
			if ref := got.Header.Get("Referer"); ref != "" {
				t.Errorf("Referer = %q, want none", ref)
			}
		})
	}
}

func TestFollowRedirectToBlockedAddress(t *testing.T) {
	blocked := newCountingServer(t, "127.0.0.1:0")
	testResolver.set(t, "receiver.test", "127.0.0.1")
	first, firstRec := redirectingServer(t, http.StatusTemporaryRedirect, func(*http.Request) string {
		return "http://127.0.0.1:" + blocked.port() + "/internal"
	})
	_, firstPort, _ := strings.Cut(strings.TrimPrefix(first.URL, "http://"), ":")

	// Only the name receiver.test is allowed, so the hop to the literal
	// loopback address is refused.
	s := guardedSender(t, "http://receiver.test:"+firstPort+"/hook", func(e *Endpoint) {
		e.AllowHosts = []string{"receiver.test"}
		e.FollowRedirects = true
	})
	res := sendTestEvent(t, s)
	assertBlocked(t, res, "127.0.0.1")
	if firstRec.count() != 1 {
		t.Errorf("first receiver got %d requests, want 1", firstRec.count())
	}
	blocked.assertNoConnection(t)
}

func TestFollowRedirectToMetadataAddress(t *testing.T) {
	before := safetyNetHits.Load()
	first, _ := redirectingServer(t, http.StatusPermanentRedirect, func(*http.Request) string {
		return "http://169.254.169.254/latest/meta-data/"
	})
	s := guardedSender(t, first.URL, func(e *Endpoint) {
		e.AllowHosts = []string{"127.0.0.1"}
		e.FollowRedirects = true
	})
	assertBlocked(t, sendTestEvent(t, s), "169.254.169.254")
	if hits := safetyNetHits.Load() - before; hits != 0 {
		t.Errorf("the safety net stopped %d connections, want none", hits)
	}
}

func TestRedirectsThatFailTheAttempt(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		follow    bool
		wantError string
	}{
		{name: "302 without follow_redirects", status: http.StatusFound, wantError: "redirects are not followed"},
		{name: "307 without follow_redirects", status: http.StatusTemporaryRedirect, wantError: "set follow_redirects"},
		{name: "302 with follow_redirects", status: http.StatusFound, follow: true, wantError: "only 307 and 308"},
		{name: "301 with follow_redirects", status: http.StatusMovedPermanently, follow: true, wantError: "only 307 and 308"},
		{name: "303 with follow_redirects", status: http.StatusSeeOther, follow: true, wantError: "only 307 and 308"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			final, finalRec := finalServer(t)
			first, firstRec := redirectingServer(t, tt.status, func(*http.Request) string { return final.URL + "/moved?token=abc" })

			s := guardedSender(t, first.URL, func(e *Endpoint) {
				e.AllowPrivate = true
				e.FollowRedirects = tt.follow
			})
			res := sendTestEvent(t, s)
			if res.errorClass != ClassRedirect || res.statusCode != tt.status {
				t.Fatalf("result = class %q, status %d; want %q, %d (error: %v)", res.errorClass, res.statusCode, ClassRedirect, tt.status, res.err)
			}
			if !strings.Contains(res.err.Error(), tt.wantError) || !strings.Contains(res.err.Error(), final.URL+"/moved") {
				t.Errorf("error %q does not contain %q and the Location", res.err, tt.wantError)
			}
			if strings.Contains(res.err.Error(), "token=abc") {
				t.Errorf("error %q contains the Location's query", res.err)
			}
			if firstRec.count() != 1 || finalRec.count() != 0 {
				t.Errorf("requests: first %d, final %d; want 1 and 0", firstRec.count(), finalRec.count())
			}
		})
	}
}

func TestFollowRedirectHopLimit(t *testing.T) {
	tests := []struct {
		name         string
		redirects    int
		wantRequests int
		wantClass    string
	}{
		{name: "3 hops", redirects: 3, wantRequests: 4, wantClass: ""},
		{name: "4 hops", redirects: 4, wantRequests: 4, wantClass: ClassRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := new(hopRecorder)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.record(r)
				if n := rec.count(); n <= tt.redirects {
					w.Header().Set("Location", fmt.Sprintf("/hop%d", n))
					w.WriteHeader(http.StatusTemporaryRedirect)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(srv.Close)

			s := guardedSender(t, srv.URL, func(e *Endpoint) {
				e.AllowPrivate = true
				e.FollowRedirects = true
			})
			res := sendTestEvent(t, s)
			if res.errorClass != tt.wantClass {
				t.Fatalf("error class = %q, want %q (error: %v)", res.errorClass, tt.wantClass, res.err)
			}
			if rec.count() != tt.wantRequests {
				t.Errorf("receiver got %d requests, want %d", rec.count(), tt.wantRequests)
			}
			if tt.wantClass != "" && !strings.Contains(res.err.Error(), "at most 3 redirects") {
				t.Errorf("error %q does not name the limit", res.err)
			}
		})
	}
}

func TestFollowRedirectHTTPSOnly(t *testing.T) {
	plain := newCountingServer(t, "127.0.0.1:0")
	tlsRec := new(hopRecorder)
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tlsRec.record(r)
		w.Header().Set("Location", plain.URL+"/plain?token=abc")
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	t.Cleanup(secure.Close)

	s := guardedSender(t, secure.URL, func(e *Endpoint) {
		e.AllowPrivate = true
		e.HTTPSOnly = true
		e.FollowRedirects = true
	})
	// Trust the test server's certificate, as a private CA would be.
	transport := s.client.Transport.(*http.Transport)
	transport.TLSClientConfig = secure.Client().Transport.(*http.Transport).TLSClientConfig.Clone()

	res := sendTestEvent(t, s)
	if res.errorClass != ClassBlockedDestination {
		t.Fatalf("error class = %q, want %q (error: %v)", res.errorClass, ClassBlockedDestination, res.err)
	}
	for _, want := range []string{plain.URL + "/plain", "https_only"} {
		if !strings.Contains(res.err.Error(), want) {
			t.Errorf("error %q does not contain %q", res.err, want)
		}
	}
	if tlsRec.count() != 1 {
		t.Errorf("https receiver got %d requests, want 1", tlsRec.count())
	}
	plain.assertNoConnection(t)
}
