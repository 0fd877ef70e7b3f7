package cli

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminAddressFromConfigFile(t *testing.T) {
	admin := newFakeAdmin(t, cannedResponse{File: "destinations.json"})
	config := filepath.Join(t.TempDir(), "caddy.json")
	document := `{"admin": {"listen": "` + admin.address() + `"}}`
	if err := os.WriteFile(config, []byte(document), 0o600); err != nil {
		t.Fatal(err)
	}

	res := runCLI(t, "", "destinations", "--config", config)
	if res.err != nil {
		t.Fatalf("unexpected error: %v", res.err)
	}
	checkRequests(t, admin, []recordedRequest{{Method: http.MethodGet, Path: "/webhooks/destinations"}})
	if !strings.Contains(res.stdout, "https://hooks.example.com/orders") {
		t.Errorf("output lacks the destination list:\n%s", res.stdout)
	}
}

func TestAdminAddressFlagOverridesConfig(t *testing.T) {
	admin := newFakeAdmin(t, cannedResponse{File: "destinations.json"})
	missing := filepath.Join(t.TempDir(), "missing.json")

	// --address wins, so the config file is never read.
	res := runCLI(t, "", "destinations", "--config", missing, "--address", admin.address())
	if res.err != nil {
		t.Fatalf("unexpected error: %v", res.err)
	}
	if got := len(admin.recorded()); got != 1 {
		t.Errorf("got %d requests, want 1", got)
	}
}

func TestAdminAddressUnixSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "admin.sock")
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	admin := &fakeAdmin{t: t, responses: []cannedResponse{{File: "destination_orders_paused.json"}}}
	server := httptest.NewUnstartedServer(http.HandlerFunc(admin.serveHTTP))
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)

	res := runCLI(t, "", "pause", "orders", "--address", "unix/"+socket)
	if res.err != nil {
		t.Fatalf("unexpected error: %v", res.err)
	}
	got := admin.recorded()
	if len(got) != 1 || got[0].Method != http.MethodPost || got[0].Path != "/webhooks/destinations/orders/pause" {
		t.Errorf("requests = %s, want POST /webhooks/destinations/orders/pause", formatRequests(got))
	}
	if !strings.Contains(res.stdout, "paused (paused through the admin API)") {
		t.Errorf("output lacks the paused state:\n%s", res.stdout)
	}
}

func TestAdminAddressRejectsURL(t *testing.T) {
	admin := newFakeAdmin(t)
	for _, address := range []string{"http://" + admin.address(), "HTTPS://localhost:2019"} {
		res := runCLI(t, "", "destinations", "--address", address)
		if res.err == nil {
			t.Fatalf("--address %s: expected an error", address)
		}
		if want := `invalid admin API address "` + address + `": give host:port`; !strings.Contains(res.err.Error(), want) {
			t.Errorf("--address %s: error %q lacks %q", address, res.err, want)
		}
	}
	if got := len(admin.recorded()); got != 0 {
		t.Errorf("got %d requests, want none", got)
	}
}

func TestAdminUnreachable(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	listener.Close()

	res := runCLI(t, "", "events", "--address", address)
	if res.err == nil {
		t.Fatal("expected an error for a closed port")
	}
	for _, want := range []string{
		"sending GET /webhooks/events to the admin API at \"" + address + "\"",
		"check that Caddy is running",
	} {
		if !strings.Contains(res.err.Error(), want) {
			t.Errorf("error %q lacks %q", res.err, want)
		}
	}
	if !strings.HasPrefix(res.stderr, "Error: ") {
		t.Errorf("stderr = %q, want the error after \"Error: \"", res.stderr)
	}
}

func TestParseAdminError(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    *apiError
		wantMsg string
	}{
		{
			name:    "json message",
			err:     errors.New(`caddy responded with error: HTTP 404: {"error":"unknown destination \"x\""}` + "\n"),
			want:    &apiError{StatusCode: 404, Message: `unknown destination "x"`},
			wantMsg: `unknown destination "x" (HTTP 404)`,
		},
		{
			name:    "multi-line message",
			err:     errors.New("caddy responded with error: HTTP 400: {\"error\":\"bad\\nvalue\"}"),
			want:    &apiError{StatusCode: 400, Message: "bad\nvalue"},
			wantMsg: "bad\nvalue (HTTP 400)",
		},
		{
			name:    "plain body",
			err:     errors.New("caddy responded with error: HTTP 502: upstream\tdown\n"),
			want:    &apiError{StatusCode: 502, Message: "upstream down", plain: true},
			wantMsg: "the admin API failed with HTTP 502: upstream down",
		},
		{
			name:    "empty json error",
			err:     errors.New(`caddy responded with error: HTTP 500: {"error":""}`),
			want:    &apiError{StatusCode: 500, Message: `{"error":""}`, plain: true},
			wantMsg: `the admin API failed with HTTP 500: {"error":""}`,
		},
		{
			name: "no response",
			err:  errors.New("performing request: dial tcp 127.0.0.1:1: connect: connection refused"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseAdminError(tt.err)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("parseAdminError() = %+v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("parseAdminError() = nil, want %+v", tt.want)
			}
			if *got != *tt.want {
				t.Errorf("parseAdminError() = %+v, want %+v", got, tt.want)
			}
			if got.Error() != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", got.Error(), tt.wantMsg)
			}
		})
	}
}
