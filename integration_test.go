package webhooks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// apiConfig is a Caddyfile with the handler in front of a small JSON API
// served by the same Caddy, and one endpoint.
const apiConfig = `{
	admin {{.Admin}}
	persist_config off
	auto_https off
	grace_period 2s
	webhooks {
		endpoint main {{.Receiver}} {
			events order.*
			secret ` + testSecret + `
			timeout 2s
			retry {{.Retry}}
			allow_private
		}
	}
}

http://127.0.0.1:{{.Port}} {
	bind 127.0.0.1
	webhooks {
		event order.created POST /orders 201
		event order.failed {
			path /orders /orders/*
			status 5xx
			description "The API failed to handle an order"
		}
	}
	reverse_proxy {{.Upstream}}
}

http://127.0.0.1:{{.APIPort}} {
	bind 127.0.0.1
	@create method POST
	handle @create {
		header Content-Type application/json
		respond /orders {http.request.body} 201
	}
	respond /orders "[]" 200
	respond /bad "bad request" 400
}
`

// site is the addresses of one test deployment.
type site struct {
	Admin, Receiver, Retry, Upstream string
	Port, APIPort                    int
}

func newSite(t *testing.T, receiverURL, retry string) site {
	s := site{
		Admin:    fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Receiver: receiverURL,
		Retry:    retry,
		Port:     freePort(t),
		APIPort:  freePort(t),
	}
	s.Upstream = fmt.Sprintf("127.0.0.1:%d", s.APIPort)
	return s
}

func (s site) config(t *testing.T) string {
	return renderConfig(t, apiConfig, map[string]any{
		"Admin": s.Admin, "Receiver": s.Receiver, "Retry": s.Retry,
		"Port": s.Port, "APIPort": s.APIPort, "Upstream": s.Upstream,
	})
}

func (s site) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.Port, path)
}

func verifySignature(t *testing.T, d delivery) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(d.Body, d.Header); err != nil {
		t.Errorf("signature of delivery %s does not verify: %v (headers %v)", d.Header.Get("webhook-id"), err, d.Header)
	}
}

func TestOrderCreatedDeliversOneWebhook(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSite(t, rc.URL, "1s")
	startCaddy(t, s.config(t), "", s.Admin)

	if got := send(t, http.MethodGet, s.url("/orders"), ""); got != 200 {
		t.Fatalf("GET /orders: status %d, expected 200", got)
	}
	if got := send(t, http.MethodGet, s.url("/bad"), ""); got != 400 {
		t.Fatalf("GET /bad: status %d, expected 400", got)
	}
	body := `{"item":"Bücher \"deluxe\" \u2603","note":"line\nbreak <&>"}`
	if got := send(t, http.MethodPost, s.url("/orders?source=web"), body); got != 201 {
		t.Fatalf("POST /orders: status %d, expected 201", got)
	}

	ds := rc.waitCount(t, 30*time.Second, 1)
	// Give a wrongly emitted GET or 400 event the time to arrive too.
	time.Sleep(time.Second)
	ds = rc.all()
	if len(ds) != 1 {
		t.Fatalf("got %d deliveries, expected exactly 1", len(ds))
	}
	d := ds[0]
	verifySignature(t, d)

	if ct := d.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, expected application/json", ct)
	}
	var envelope struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      struct {
			Request struct {
				Method string              `json:"method"`
				Host   string              `json:"host"`
				Path   string              `json:"path"`
				Query  map[string][]string `json:"query"`
			} `json:"request"`
			Response struct {
				Status int             `json:"status"`
				Body   json.RawMessage `json:"body"`
			} `json:"response"`
		} `json:"data"`
	}
	if err := json.Unmarshal(d.Body, &envelope); err != nil {
		t.Fatalf("delivery body is not JSON: %v\n%s", err, d.Body)
	}
	if envelope.Type != "order.created" {
		t.Errorf("type = %q, expected order.created", envelope.Type)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", envelope.Timestamp); err != nil {
		t.Errorf("timestamp %q is not RFC 3339 with milliseconds: %v", envelope.Timestamp, err)
	}
	if envelope.Data.Request.Method != "POST" || envelope.Data.Request.Path != "/orders" {
		t.Errorf("request = %+v, expected POST /orders", envelope.Data.Request)
	}
	if got := envelope.Data.Request.Query["source"]; len(got) != 1 || got[0] != "web" {
		t.Errorf("query source = %v, expected [web]", got)
	}
	if envelope.Data.Response.Status != 201 {
		t.Errorf("response status = %d, expected 201", envelope.Data.Response.Status)
	}
	var echoed, sent any
	_ = json.Unmarshal([]byte(body), &sent)
	if err := json.Unmarshal(envelope.Data.Response.Body, &echoed); err != nil {
		t.Fatalf("response body is not embedded as JSON: %v: %s", err, envelope.Data.Response.Body)
	}
	if fmt.Sprint(echoed) != fmt.Sprint(sent) {
		t.Errorf("response body = %v, expected %v", echoed, sent)
	}
}

func TestRetriedAttemptsKeepIDAndBody(t *testing.T) {
	rc := newReceiver(t, func(n int, _ delivery) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	s := newSite(t, rc.URL, "1s 2s")
	startCaddy(t, s.config(t), "", s.Admin)

	if got := send(t, http.MethodPost, s.url("/orders"), `{"n":1}`); got != 201 {
		t.Fatalf("POST /orders: status %d", got)
	}
	ds := rc.waitCount(t, 30*time.Second, 3)
	time.Sleep(3 * time.Second) // no fourth attempt after the success
	ds = rc.all()
	if len(ds) != 3 {
		t.Fatalf("got %d attempts, expected 3", len(ds))
	}
	for i, d := range ds {
		verifySignature(t, d)
		if d.Header.Get("webhook-id") != ds[0].Header.Get("webhook-id") {
			t.Errorf("attempt %d has webhook-id %q, expected %q", i+1, d.Header.Get("webhook-id"), ds[0].Header.Get("webhook-id"))
		}
		if !bytes.Equal(d.Body, ds[0].Body) {
			t.Errorf("attempt %d body differs from the first:\n%s\n%s", i+1, d.Body, ds[0].Body)
		}
	}
	// Delays of 1s and 2s with ±20% jitter.
	if gap := ds[1].At.Sub(ds[0].At); gap < 800*time.Millisecond {
		t.Errorf("second attempt came %s after the first, expected at least 0.8s", gap)
	}
	if gap := ds[2].At.Sub(ds[1].At); gap < 1600*time.Millisecond {
		t.Errorf("third attempt came %s after the second, expected at least 1.6s", gap)
	}
}

func TestAlwaysFailingReceiverDeadLetters(t *testing.T) {
	rc := newReceiver(t, func(int, delivery) int { return http.StatusBadGateway })
	s := newSite(t, rc.URL, "300ms 300ms 300ms")
	p := startCaddy(t, s.config(t), "", s.Admin)

	if got := send(t, http.MethodPost, s.url("/orders"), `{"n":1}`); got != 201 {
		t.Fatalf("POST /orders: status %d", got)
	}
	ds := rc.waitCount(t, 30*time.Second, 4)
	entry := p.waitLog(30*time.Second, "webhook attempt failed; no retries left, dead-lettering")
	time.Sleep(1500 * time.Millisecond) // long enough for a fifth attempt to show
	if got := len(rc.all()); got != 4 {
		t.Fatalf("got %d attempts, expected 1 + 3 retries = 4", got)
	}
	if entry["event_id"] != ds[0].Header.Get("webhook-id") {
		t.Errorf("dead letter log names event %v, expected %s", entry["event_id"], ds[0].Header.Get("webhook-id"))
	}
}

func TestUpstreamDownGives502AndEvent(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSite(t, rc.URL, "1s")
	s.Upstream = fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens there
	startCaddy(t, s.config(t), "", s.Admin)

	if got := send(t, http.MethodPost, s.url("/orders"), `{}`); got != http.StatusBadGateway {
		t.Fatalf("POST /orders with the upstream down: status %d, expected 502", got)
	}
	ds := rc.waitCount(t, 30*time.Second, 1)
	var envelope struct {
		Type string `json:"type"`
		Data struct {
			Response struct {
				Status int `json:"status"`
			} `json:"response"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ds[0].Body, &envelope); err != nil {
		t.Fatal(err)
	}
	if envelope.Type != "order.failed" || envelope.Data.Response.Status != 502 {
		t.Errorf("got %s with status %d, expected order.failed with 502", envelope.Type, envelope.Data.Response.Status)
	}
}

func TestSIGTERMThenRestartDeliversAll(t *testing.T) {
	restartDeliversAll(t, (*caddyProcess).stop)
}

func TestSIGKILLAfterPublishDeliversAll(t *testing.T) {
	restartDeliversAll(t, (*caddyProcess).kill)
}

// restartDeliversAll sends events while the receiver fails and ends Caddy
// with end once every event has had a first attempt, so every event is
// stored. Then it makes the receiver healthy and starts Caddy again on the
// same store, which must deliver every event.
func restartDeliversAll(t *testing.T, end func(*caddyProcess)) {
	var healthy atomic.Bool
	rc := newReceiver(t, func(int, delivery) int {
		if healthy.Load() {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	s := newSite(t, rc.URL, strings.Repeat("1s ", 20))
	p := startCaddy(t, s.config(t), "", s.Admin)

	const events = 20
	for i := range events {
		if got := send(t, http.MethodPost, s.url("/orders"), fmt.Sprintf(`{"n":%d}`, i)); got != 201 {
			t.Fatalf("POST /orders: status %d", got)
		}
	}
	waitFor(t, 30*time.Second, "a first attempt of every event", func() error {
		if got := len(byEventID(rc.all())); got < events {
			return fmt.Errorf("%d events attempted", got)
		}
		return nil
	})
	end(p)

	healthy.Store(true)
	// After SIGKILL, JetStream redelivers the events that were in flight
	// once their ack wait (the endpoint timeout plus 30s) has passed.
	startCaddy(t, s.config(t), p.HomeDir, s.Admin)
	waitFor(t, 90*time.Second, "a successful delivery of every event", func() error {
		return everyEventSucceeded(rc, events)
	})
}

// ordersSites returns a site on port that emits order.created for every
// POST /orders, in front of an API on apiPort that responds 201 to it.
func ordersSites(port, apiPort int) string {
	return fmt.Sprintf(`http://127.0.0.1:%d {
	bind 127.0.0.1
	webhooks {
		event order.created POST /orders 201
	}
	reverse_proxy 127.0.0.1:%d
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	respond /orders "{}" 201
}
`, port, apiPort, apiPort)
}

// everyEventSucceeded checks that exactly n distinct events reached the
// receiver and that the receiver responded 2xx to each at least once.
func everyEventSucceeded(rc *receiver, n int) error {
	groups := byEventID(rc.all())
	if len(groups) != n {
		return fmt.Errorf("%d distinct events, expected %d", len(groups), n)
	}
	failed := 0
	for _, attempts := range groups {
		if !slices.ContainsFunc(attempts, func(d delivery) bool { return d.Status < 300 }) {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d events have no successful delivery yet", failed, n)
	}
	return nil
}

func TestReloadWhileRequestsFlowLosesNothing(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSite(t, rc.URL, "1s")
	// The upstream runs outside Caddy, so that the reloads cannot touch the
	// connections to it.
	s.Upstream = echoAPI(t)
	p := startCaddy(t, s.config(t), "", s.Admin)

	// Caddy v2.11.9 itself, without this plugin, now and then resets or
	// closes a client connection while a reload swaps its servers, so a
	// request that fails before its response is sent again. The API echoes
	// each request's number, and every number that got a 201 must arrive
	// in some event.
	const requests = 300
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ordersURL := s.url("/orders")
	answered := make(chan int, requests)
	done := make(chan error, 1)
	go func() {
		defer close(answered)
		for i := range requests {
			status, err := postWithRetries(client, ordersURL, fmt.Sprintf(`{"n":%d}`, i))
			if err != nil {
				done <- err
				return
			}
			if status != http.StatusCreated {
				done <- fmt.Errorf("request %d: status %d", i, status)
				return
			}
			answered <- i
		}
		done <- nil
	}()

	// Reload with alternating retry schedules while the requests flow.
	for i := range 4 {
		s.Retry = []string{"1s", "2s"}[i%2]
		p.load(s.config(t))
		time.Sleep(100 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var expected []int
	for i := range answered {
		expected = append(expected, i)
	}

	waitFor(t, 60*time.Second, "an event for every answered request", func() error {
		seen := make(map[int]bool)
		for _, d := range rc.all() {
			var envelope struct {
				Data struct {
					Response struct {
						Body struct {
							N int `json:"n"`
						} `json:"body"`
					} `json:"response"`
				} `json:"data"`
			}
			if err := json.Unmarshal(d.Body, &envelope); err != nil {
				return err
			}
			seen[envelope.Data.Response.Body.N] = true
		}
		missing := 0
		for _, i := range expected {
			if !seen[i] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d answered requests have no event yet", missing, len(expected))
		}
		return nil
	})
	if got := len(p.logEntries("embedded NATS server started")); got != 1 {
		t.Errorf("the embedded NATS server started %d times, expected once across reloads", got)
	}
}

// echoAPI starts an API on 127.0.0.1 that responds to POST /orders with 201 and
// the request body, and returns its address.
func echoAPI(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	})}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Close() })
	return ln.Addr().String()
}

// postWithRetries sends a POST, sending it again when the connection fails
// before a response arrives.
func postWithRetries(client *http.Client, url, body string) (int, error) {
	var lastErr error
	for range 5 {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			lastErr = err
			continue
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	return 0, fmt.Errorf("POST %s failed 5 times: %w", url, lastErr)
}

func TestHangingEndpointDoesNotDelayHealthyOne(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hanging := newReceiver(t, func(int, delivery) int {
		<-release
		return http.StatusOK
	})
	healthy := newReceiver(t, nil)

	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port, apiPort := freePort(t), freePort(t)
	config := fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	webhooks {
		endpoint slow %s {
			events order.*
			timeout 30s
			concurrency 2
			allow_private
		}
		endpoint fast %s {
			events order.*
			allow_private
		}
	}
}
`, admin, hanging.URL, healthy.URL) + ordersSites(port, apiPort)
	startCaddy(t, config, "", admin)

	const events = 10
	for range events {
		if got := send(t, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/orders", port), `{}`); got != 201 {
			t.Fatalf("POST /orders: status %d", got)
		}
	}
	healthy.waitCount(t, 10*time.Second, events)
	if got := len(hanging.all()); got > 2 {
		t.Errorf("the hanging endpoint has %d attempts in flight, expected at most its concurrency of 2", got)
	}
}

func TestSIGTERMDuringSlowRequestKeepsEvent(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSite(t, rc.URL, "1s")
	p, answered := startSlowRequest(t, &s)

	p.stop()
	if status := <-answered; status != http.StatusCreated {
		t.Fatalf("the request in flight during SIGTERM got status %d, expected 201", status)
	}
	if dropped := p.logEntries("event dropped"); len(dropped) > 0 {
		t.Fatalf("the event of the request in flight was dropped at shutdown: %v", dropped[0])
	}

	// The event was stored before the broker stopped, so the next start
	// delivers it.
	startCaddy(t, s.config(t), p.HomeDir, s.Admin)
	rc.waitCount(t, 60*time.Second, 1)
}

// startSlowRequest points the site at an upstream that answers after two
// seconds, starts Caddy, and sends a POST /orders. It returns once the
// request has reached the upstream, with a channel for the response status.
func startSlowRequest(t *testing.T, s *site) (*caddyProcess, <-chan int) {
	t.Helper()
	arrived := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(2 * time.Second)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"slow":true}`))
	})}
	go func() { _ = upstream.Serve(ln) }()
	t.Cleanup(func() { _ = upstream.Close() })

	s.Upstream = ln.Addr().String()
	p := startCaddy(t, s.config(t), "", s.Admin)

	answered := make(chan int, 1)
	ordersURL := s.url("/orders")
	go func() {
		status, err := postWithRetries(http.DefaultClient, ordersURL, `{}`)
		if err != nil {
			t.Error(err)
		}
		answered <- status
	}()
	<-arrived
	return p, answered
}

func TestRejectedReloadKeepsRunningConsumers(t *testing.T) {
	first := newReceiver(t, nil)
	second := newReceiver(t, nil)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port, apiPort := freePort(t), freePort(t)

	// A port held here makes the reloaded config fail in the HTTP app,
	// after the webhooks app of that config may already have started.
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer occupied.Close()

	config := func(withSecond bool, extraSite string) string {
		endpoints := fmt.Sprintf("endpoint first %s {\n\t\t\tevents order.*\n\t\t\tallow_private\n\t\t}\n", first.URL)
		if withSecond {
			endpoints += fmt.Sprintf("\t\tendpoint second %s {\n\t\t\tevents order.*\n\t\t\tallow_private\n\t\t}\n", second.URL)
		}
		return fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	webhooks {
		%s
	}
}
`, admin, endpoints) + ordersSites(port, apiPort) + extraSite
	}
	p := startCaddy(t, config(true, ""), "", admin)

	// The rejected config drops the second endpoint. Caddy starts apps in
	// random order, so a few tries make it likely that its webhooks app
	// started before its HTTP app failed.
	rejected := config(false, fmt.Sprintf("http://%s {\n\tbind 127.0.0.1\n\trespond 200\n}\n", occupied.Addr()))
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/load", strings.NewReader(rejected))
		req.Header.Set("Content-Type", "text/caddyfile")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the config with a port in use was loaded, expected it to be rejected")
		}
	}

	// The running config still delivers to both endpoints.
	if got := send(t, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/orders", port), `{}`); got != 201 {
		t.Fatalf("POST /orders: status %d", got)
	}
	first.waitCount(t, 15*time.Second, 1)
	second.waitCount(t, 15*time.Second, 1)
	if entries := p.logEntries("deleted consumer of removed endpoint"); len(entries) > 0 {
		t.Errorf("a rejected reload deleted a consumer: %v", entries[0])
	}
}

func TestReloadToOtherStoreKeepsEventInFlight(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSite(t, rc.URL, "1s")
	p, answered := startSlowRequest(t, &s)

	// The new config keeps its store elsewhere, so the request's own
	// config is the last user of the first store.
	other := strings.Replace(s.config(t), "webhooks {\n\t\tendpoint",
		"webhooks {\n\t\tnats embedded {\n\t\t\tstore_dir "+t.TempDir()+"\n\t\t}\n\t\tendpoint", 1)
	p.load(other)
	if status := <-answered; status != http.StatusCreated {
		t.Fatalf("the request in flight during the reload got status %d, expected 201", status)
	}
	p.waitLog(10*time.Second, "embedded NATS server stopped")
	if dropped := p.logEntries("event dropped"); len(dropped) > 0 {
		t.Fatalf("the event of the request in flight was dropped: %v", dropped[0])
	}
}
