package delivery

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSendClassifiesResults(t *testing.T) {
	closedPort := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr + "/hook"
	}
	serve := func(t *testing.T, handler http.HandlerFunc) string {
		srv := httptest.NewServer(handler)
		t.Cleanup(srv.Close)
		return srv.URL
	}

	tests := []struct {
		name       string
		url        func(t *testing.T) string
		wantClass  string
		wantStatus int
		wantError  string
		wantAbsent []string // substrings that neither the error nor the stored response may contain
	}{
		{
			name:       "success",
			url:        func(t *testing.T) string { return serve(t, func(w http.ResponseWriter, _ *http.Request) {}) },
			wantClass:  "",
			wantStatus: http.StatusOK,
		},
		{
			name:      "refused",
			url:       closedPort,
			wantClass: ClassRefused,
			wantError: "connection refused",
		},
		{
			name: "timeout",
			url: func(t *testing.T) string {
				return serve(t, func(w http.ResponseWriter, r *http.Request) {
					// The server notices the client's disconnect, which
					// cancels r.Context(), only once the body is read.
					_, _ = io.Copy(io.Discard, r.Body)
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
				})
			},
			wantClass: ClassTimeout,
		},
		{
			name: "status",
			url: func(t *testing.T) string {
				return serve(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
			},
			wantClass:  ClassStatus,
			wantStatus: http.StatusNotFound,
			wantError:  "404 Not Found",
		},
		{
			name: "redirect",
			url: func(t *testing.T) string {
				return serve(t, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "/moved-here", http.StatusFound)
				})
			},
			wantClass:  ClassRedirect,
			wantStatus: http.StatusFound,
			wantError:  `"/moved-here"`,
		},
		{
			name: "redirect with token",
			url: func(t *testing.T) string {
				return serve(t, func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Location", "https://user:hunter2@hooks.example.com/v2/orders?token=secret-abc#frag")
					w.WriteHeader(http.StatusTemporaryRedirect)
					_, _ = w.Write([]byte(`<a href="https://hooks.example.com/v2/orders?token=secret-abc">moved</a>`))
				})
			},
			wantClass:  ClassRedirect,
			wantStatus: http.StatusTemporaryRedirect,
			wantError:  `"https://hooks.example.com/v2/orders"`,
			wantAbsent: []string{"secret-abc", "hunter2", "frag"},
		},
		{
			name: "reset",
			url: func(t *testing.T) string {
				return serve(t, func(w http.ResponseWriter, _ *http.Request) {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err != nil {
						t.Errorf("hijacking: %v", err)
						return
					}
					if tcp, ok := conn.(*net.TCPConn); ok {
						_ = tcp.SetLinger(0)
					}
					conn.Close()
				})
			},
			wantClass: ClassReset,
		},
		{
			name: "tls unknown authority",
			url: func(t *testing.T) string {
				srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			wantClass: ClassTLSUnknownAuthority,
			wantError: "certificate",
		},
		{
			name: "https to plain http",
			url: func(t *testing.T) string {
				plain := serve(t, func(http.ResponseWriter, *http.Request) {})
				return "https://" + strings.TrimPrefix(plain, "http://")
			},
			wantClass: ClassTLS,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url(t)
			s := &sender{client: newHTTPClient(clientPolicy{guard: &guard{allowPrivate: true}, concurrency: 1}), url: url, timeout: 300 * time.Millisecond}
			res := s.send(t.Context(), &event{id: "evt", payload: []byte(`{}`)})

			if res.errorClass != tt.wantClass {
				t.Errorf("error class = %q, want %q (error: %v)", res.errorClass, tt.wantClass, res.err)
			}
			if res.statusCode != tt.wantStatus {
				t.Errorf("status code = %d, want %d", res.statusCode, tt.wantStatus)
			}
			if tt.wantError != "" && (res.err == nil || !strings.Contains(res.err.Error(), tt.wantError)) {
				t.Errorf("error = %v, want it to contain %q", res.err, tt.wantError)
			}
			if res.err != nil && strings.Contains(res.err.Error(), url) {
				t.Errorf("error %q contains the endpoint url", res.err)
			}
			for _, absent := range tt.wantAbsent {
				if res.err != nil && strings.Contains(res.err.Error(), absent) {
					t.Errorf("error %q contains %q", res.err, absent)
				}
				if bytes.Contains(res.response, []byte(absent)) {
					t.Errorf("stored response %q contains %q", res.response, absent)
				}
			}
		})
	}
}

func TestSendReadsAtMost4KiB(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 10000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)

	s := &sender{client: newHTTPClient(clientPolicy{guard: &guard{allowPrivate: true}, concurrency: 1}), url: srv.URL, timeout: time.Second}
	res := s.send(t.Context(), &event{id: "evt", payload: []byte(`{}`)})
	if len(res.response) != maxResponseBytes {
		t.Errorf("stored %d bytes of the response, want %d", len(res.response), maxResponseBytes)
	}
}

func TestRedirectErrorNamesOnlyTarget(t *testing.T) {
	tests := []struct {
		name     string
		location string
		want     string
	}{
		{name: "relative with query", location: "/v2/hook?token=secret-abc", want: `to "/v2/hook", and`},
		{name: "absolute", location: "https://hooks.example.com/v2", want: `to "https://hooks.example.com/v2", and`},
		{name: "user info and fragment", location: "http://admin:secret-abc@hooks.example.com:8443/a%2Fb#secret-abc", want: `to "http://hooks.example.com:8443/a%2Fb", and`},
		{name: "scheme-relative", location: "//other.example/x?secret-abc", want: `to "//other.example/x", and`},
		{name: "missing", location: "", want: "without a Location header"},
		{name: "invalid", location: "http://[::1/secret-abc", want: "to an invalid Location"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{Status: "302 Found", StatusCode: http.StatusFound, Header: http.Header{}}
			if tt.location != "" {
				resp.Header.Set("Location", tt.location)
			}
			err := redirectError(resp, false)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-abc") {
				t.Errorf("error %q contains the token", err)
			}
			if !strings.Contains(err.Error(), "set the endpoint url to the final address") {
				t.Errorf("error %q does not say what to do", err)
			}
		})
	}
}

func TestClassifyDNSError(t *testing.T) {
	err := &net.DNSError{Err: "no such host", Name: "hooks.example.invalid", IsNotFound: true}
	if got := classifyError(err); got != ClassDNS {
		t.Errorf("class = %q, want %q", got, ClassDNS)
	}
	if got := classifyError(errors.New("something else")); got != ClassConnection {
		t.Errorf("class of an unknown error = %q, want %q", got, ClassConnection)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 4, 19, 20, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"Fri, 04 Dec 2026 19:21:30 GMT", 90 * time.Second},
		{"Fri, 04 Dec 2026 19:00:00 GMT", 0},
		{"99999999999999999", 365 * 24 * time.Hour},
		{"99999999999999999999", 365 * 24 * time.Hour},
		{"-99999999999999999999", 0},
		{"99999999999999999999x", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.value, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.value, got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	r := &runner{retry: []time.Duration{10 * time.Second, time.Minute}, retryAfterMax: time.Hour}
	tests := []struct {
		name     string
		attempt  int
		res      attemptResult
		min, max time.Duration
	}{
		{"schedule with jitter", 1, attemptResult{}, 8 * time.Second, 12 * time.Second},
		{"second delay", 2, attemptResult{}, 48 * time.Second, 72 * time.Second},
		{"retry-after", 1, attemptResult{retryAfter: 30 * time.Minute}, 30 * time.Minute, 30 * time.Minute},
		{"retry-after capped", 1, attemptResult{retryAfter: 5 * time.Hour}, time.Hour, time.Hour},
		{"overflowing retry-after capped", 1, attemptResult{retryAfter: parseRetryAfter("99999999999999999999", time.Now())}, time.Hour, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				if got := r.retryDelay(tt.attempt, &tt.res); got < tt.min || got > tt.max {
					t.Fatalf("delay = %s, want %s to %s", got, tt.min, tt.max)
				}
			}
		})
	}
}
