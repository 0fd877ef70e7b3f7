package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// adminCase is one run of an admin subcommand against the fake admin API.
type adminCase struct {
	name      string
	args      []string
	responses []cannedResponse
	requests  []recordedRequest
	wantErr   bool
}

func TestAdminSubcommands(t *testing.T) {
	const eventID = "01JE7XK9Q4M5T2V8B6N3C1D0FZ"
	get := func(path string, query url.Values) recordedRequest {
		return recordedRequest{Method: http.MethodGet, Path: path, Query: query}
	}
	post := func(path, body string) recordedRequest {
		return recordedRequest{Method: http.MethodPost, Path: path, Body: body}
	}
	file := func(name string) cannedResponse { return cannedResponse{File: name} }
	accepted := func(name string) cannedResponse { return cannedResponse{Status: http.StatusAccepted, File: name} }

	cases := []adminCase{
		{
			name:      "destinations",
			args:      []string{"destinations"},
			responses: []cannedResponse{file("destinations.json")},
			requests:  []recordedRequest{get("/webhooks/destinations", url.Values{})},
		},
		{
			name:      "destination",
			args:      []string{"destinations", "orders"},
			responses: []cannedResponse{file("destination_orders.json")},
			requests:  []recordedRequest{get("/webhooks/destinations/orders", url.Values{})},
		},
		{
			name:      "destination_escaped",
			args:      []string{"destinations", "a/b c"},
			responses: []cannedResponse{file("destination_orders.json")},
			requests:  []recordedRequest{get("/webhooks/destinations/a%2Fb%20c", url.Values{})},
		},
		{
			name: "events_filtered",
			args: []string{"events", "--destination", "orders", "--type", "order.*", "--outcome", "retry",
				"--since", "2h", "--until", "2026-12-04T20:00:00+01:00", "--limit", "2"},
			responses: []cannedResponse{file("events_page1.json")},
			requests: []recordedRequest{get("/webhooks/events", url.Values{
				"destination": {"orders"},
				"type":        {"order.*"},
				"outcome":     {"retry"},
				"since":       {"2026-12-04T18:00:00.000Z"},
				"until":       {"2026-12-04T19:00:00.000Z"},
				"limit":       {"2"},
			})},
		},
		{
			name:      "events_cursor",
			args:      []string{"events", "--cursor", "djE6MTA0MQ", "--since", "3d"},
			responses: []cannedResponse{file("events_page2.json")},
			requests: []recordedRequest{get("/webhooks/events", url.Values{
				"cursor": {"djE6MTA0MQ"},
				"since":  {"2026-12-01T20:00:00.000Z"},
			})},
		},
		{
			name:      "events_all",
			args:      []string{"events", "--all", "--limit", "2"},
			responses: []cannedResponse{file("events_page1.json"), file("events_page2.json")},
			requests: []recordedRequest{
				get("/webhooks/events", url.Values{"limit": {"2"}}),
				get("/webhooks/events", url.Values{"limit": {"2"}, "cursor": {"djE6MTA0MQ"}}),
			},
		},
		{
			name:      "event",
			args:      []string{"event", eventID},
			responses: []cannedResponse{file("event.json")},
			requests:  []recordedRequest{get("/webhooks/events/"+eventID, url.Values{})},
		},
		{
			name:      "event_base64",
			args:      []string{"event", "01JE7XB1W8F3Y6H0K2P4R7S9TA"},
			responses: []cannedResponse{file("event_base64.json")},
			requests:  []recordedRequest{get("/webhooks/events/01JE7XB1W8F3Y6H0K2P4R7S9TA", url.Values{})},
		},
		{
			name:      "dead",
			args:      []string{"dead", "--destination", "orders"},
			responses: []cannedResponse{file("dead.json")},
			requests:  []recordedRequest{get("/webhooks/dead", url.Values{"destination": {"orders"}})},
		},
		{
			name:      "purge_dead",
			args:      []string{"purge-dead", "orders"},
			responses: []cannedResponse{file("purge_all.json")},
			requests:  []recordedRequest{{Method: http.MethodDelete, Path: "/webhooks/dead/orders", Query: url.Values{}}},
		},
		{
			name:      "purge_dead_event",
			args:      []string{"purge-dead", "orders", eventID},
			responses: []cannedResponse{file("purge_one.json")},
			requests:  []recordedRequest{{Method: http.MethodDelete, Path: "/webhooks/dead/orders/" + eventID, Query: url.Values{}}},
		},
		{
			name:      "event_types",
			args:      []string{"event-types"},
			responses: []cannedResponse{file("event_types.json")},
			requests:  []recordedRequest{get("/webhooks/event-types", url.Values{})},
		},
		{
			name:      "redeliver",
			args:      []string{"redeliver", eventID, "--destination", "orders"},
			responses: []cannedResponse{accepted("redeliver_one.json")},
			requests:  []recordedRequest{post("/webhooks/events/"+eventID+"/redeliver", `{"destination":"orders"}`)},
		},
		{
			name:      "redeliver_all",
			args:      []string{"redeliver", eventID},
			responses: []cannedResponse{accepted("redeliver_all.json")},
			requests:  []recordedRequest{post("/webhooks/events/"+eventID+"/redeliver", `{}`)},
		},
		{
			name:      "replay_dead",
			args:      []string{"replay", "orders", "--dead"},
			responses: []cannedResponse{accepted("replay_dead.json")},
			requests:  []recordedRequest{post("/webhooks/destinations/orders/replay", `{"dead_letters":true}`)},
		},
		{
			name:      "replay_since",
			args:      []string{"replay", "orders", "--since", "2026-12-04T10:00:00Z", "--until", "90m"},
			responses: []cannedResponse{accepted("replay_since.json")},
			requests: []recordedRequest{post("/webhooks/destinations/orders/replay",
				`{"since":"2026-12-04T10:00:00.000Z","until":"2026-12-04T18:30:00.000Z"}`)},
		},
		{
			name:      "pause",
			args:      []string{"pause", "orders"},
			responses: []cannedResponse{file("destination_orders_paused.json")},
			requests:  []recordedRequest{post("/webhooks/destinations/orders/pause", "")},
		},
		{
			name:      "resume",
			args:      []string{"resume", "orders"},
			responses: []cannedResponse{file("destination_orders.json")},
			requests:  []recordedRequest{post("/webhooks/destinations/orders/resume", "")},
		},
		{
			name:      "enable",
			args:      []string{"enable", "partners"},
			responses: []cannedResponse{file("destination_partners_enabled.json")},
			requests:  []recordedRequest{post("/webhooks/destinations/partners/enable", "")},
		},
		{
			name:      "test",
			args:      []string{"test", "orders"},
			responses: []cannedResponse{accepted("test.json")},
			requests:  []recordedRequest{post("/webhooks/destinations/orders/test", "")},
		},
	}

	for _, tc := range cases {
		for _, asJSON := range []bool{false, true} {
			name := tc.name
			args := tc.args
			if asJSON {
				name += "_json"
				args = append(append([]string(nil), args...), "--json")
			}
			t.Run(name, func(t *testing.T) {
				runAdminCase(t, name, adminCase{
					args: args, responses: tc.responses, requests: tc.requests, wantErr: tc.wantErr,
				})
			})
		}
	}
}

func TestAdminErrors(t *testing.T) {
	cases := []adminCase{
		{
			name: "error_404",
			args: []string{"destinations", "ordrs"},
			responses: []cannedResponse{{Status: http.StatusNotFound,
				Body: `{"error":"unknown destination \"ordrs\": GET /webhooks/destinations lists the configured ones"}` + "\n"}},
			requests: []recordedRequest{{Method: http.MethodGet, Path: "/webhooks/destinations/ordrs", Query: url.Values{}}},
			wantErr:  true,
		},
		{
			name: "error_400",
			args: []string{"events", "--outcome", "failed"},
			responses: []cannedResponse{{Status: http.StatusBadRequest,
				Body: `{"error":"invalid outcome \"failed\": use success, retry, dead_letter, disabled, pending"}` + "\n"}},
			requests: []recordedRequest{{Method: http.MethodGet, Path: "/webhooks/events", Query: url.Values{"outcome": {"failed"}}}},
			wantErr:  true,
		},
		{
			name: "error_404_json",
			args: []string{"event", "01JE7XK9Q4M5T2V8B6N3C1D0FZ", "--json"},
			responses: []cannedResponse{{Status: http.StatusNotFound,
				Body: `{"error":"unknown event \"01JE7XK9Q4M5T2V8B6N3C1D0FZ\": it may have expired after the retention of events (7d); GET /webhooks/events lists the stored ones"}`}},
			requests: []recordedRequest{{Method: http.MethodGet, Path: "/webhooks/events/01JE7XK9Q4M5T2V8B6N3C1D0FZ", Query: url.Values{}}},
			wantErr:  true,
		},
		{
			// A Caddy without the plugin responds to unknown admin paths with
			// Go's plain-text 404.
			name:      "error_no_plugin",
			args:      []string{"destinations"},
			responses: []cannedResponse{{Status: http.StatusNotFound, Body: "404 page not found\n"}},
			requests:  []recordedRequest{{Method: http.MethodGet, Path: "/webhooks/destinations", Query: url.Values{}}},
			wantErr:   true,
		},
		{
			name: "error_escape_sequence",
			args: []string{"pause", "orders"},
			responses: []cannedResponse{{Status: http.StatusInternalServerError,
				Body: `{"error":"reading state: \u001b[31mred\u001b[0m"}`}},
			requests: []recordedRequest{{Method: http.MethodPost, Path: "/webhooks/destinations/orders/pause", Query: url.Values{}}},
			wantErr:  true,
		},
		{
			name: "error_cursor_loop",
			args: []string{"dead", "--all"},
			responses: []cannedResponse{
				{File: "dead.json"},
				{File: "dead.json"},
			},
			requests: []recordedRequest{
				{Method: http.MethodGet, Path: "/webhooks/dead", Query: url.Values{}},
				{Method: http.MethodGet, Path: "/webhooks/dead", Query: url.Values{"cursor": {"djE6Nw"}}},
			},
			wantErr: true,
		},
		{
			name:      "error_not_json",
			args:      []string{"event-types"},
			responses: []cannedResponse{{Body: "<html>proxy login</html>"}},
			requests:  []recordedRequest{{Method: http.MethodGet, Path: "/webhooks/event-types", Query: url.Values{}}},
			wantErr:   true,
		},
		// Errors found before any request.
		{name: "error_replay_nothing", args: []string{"replay", "orders"}, wantErr: true},
		{name: "error_replay_both", args: []string{"replay", "orders", "--dead", "--since", "1h"}, wantErr: true},
		{name: "error_replay_until_alone", args: []string{"replay", "orders", "--until", "1h"}, wantErr: true},
		{name: "error_bad_since", args: []string{"events", "--since", "yesterday"}, wantErr: true},
		{name: "error_bad_days", args: []string{"events", "--until", "-2d"}, wantErr: true},
		{name: "error_missing_name", args: []string{"pause"}, wantErr: true},
		{name: "error_extra_argument", args: []string{"purge-dead", "orders", "01JE7XK9Q4M5T2V8B6N3C1D0FZ", "more"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runAdminCase(t, tc.name, tc)
		})
	}
}

// runAdminCase runs tc against a fake admin API and checks its requests,
// its output against the golden file NAME, and its error.
func runAdminCase(t *testing.T, name string, tc adminCase) {
	t.Helper()
	admin := newFakeAdmin(t, tc.responses...)
	res := runCLI(t, "", append(tc.args, "--address", admin.address())...)

	if tc.wantErr && res.err == nil {
		t.Errorf("expected an error, got none")
	}
	if !tc.wantErr && res.err != nil {
		t.Errorf("unexpected error: %v", res.err)
	}
	checkRequests(t, admin, tc.requests)
	checkGolden(t, name, goldenText(res))
}

// checkRequests compares the requests the fake admin API received with
// want, and checks the headers that caddycmd.AdminAPIRequest sets.
func checkRequests(t *testing.T, admin *fakeAdmin, want []recordedRequest) {
	t.Helper()
	got := admin.recorded()
	if len(got) != len(want) {
		t.Errorf("got %d requests, want %d:\n got: %s\nwant: %s", len(got), len(want), formatRequests(got), formatRequests(want))
		return
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].normalized(), want[i].normalized()) {
			t.Errorf("request %d:\n got: %s\nwant: %s", i+1, formatRequests(got[i:i+1]), formatRequests(want[i:i+1]))
		}
	}

	for i, header := range admin.recordedHeaders() {
		if origin, want := header.Get("Origin"), "http://"+admin.address(); origin != want {
			t.Errorf("request %d: Origin = %q, want %q", i+1, origin, want)
		}
		if got[i].Body == "" {
			continue
		}
		if ct := header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d: Content-Type = %q, want application/json", i+1, ct)
		}
	}
}

func formatRequests(requests []recordedRequest) string {
	var parts []string
	for _, r := range requests {
		parts = append(parts, fmt.Sprintf("%s %s ?%s body=%q", r.Method, r.Path, r.Query.Encode(), r.Body))
	}
	return strings.Join(parts, "; ")
}
