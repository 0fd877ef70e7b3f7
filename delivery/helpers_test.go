package delivery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

func TestMain(m *testing.M) {
	// Shorter pull requests let each test's workers stop sooner.
	fetchWait = 200 * time.Millisecond
	// No test may query DNS or connect beyond loopback, even when the guard
	// under test is broken.
	resolveHost = testResolver.lookup
	afterGuard = safetyNet
	os.Exit(m.Run())
}

// defaultLayout is the JetStream layout without a prefix.
var defaultLayout emitter.Layout

// startJetStream runs an embedded nats-server with JetStream in a temporary
// directory, creates the default JetStream layout and returns a connected
// client.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := startServer(t)
	ensureLayout(t, js, defaultLayout)
	return js
}

// startServer runs an embedded nats-server with JetStream in a temporary
// directory and returns a connected client. It creates no streams.
func startServer(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		JetStream:  true,
		StoreDir:   t.TempDir(),
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatalf("creating nats-server: %v", err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready after 10s")
	}

	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatalf("connecting to nats-server: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("creating JetStream client: %v", err)
	}
	return js
}

// ensureLayout creates the streams and the state bucket of layout.
func ensureLayout(t *testing.T, js jetstream.JetStream, layout emitter.Layout) {
	t.Helper()
	if err := emitter.EnsureStreams(t.Context(), js, layout, emitter.StreamOptions{}); err != nil {
		t.Fatalf("creating streams with prefix %q: %v", layout.Prefix(), err)
	}
}

// publishEvent stores an event in the default layout the way the emitter
// does.
func publishEvent(t *testing.T, js jetstream.JetStream, id, eventType string, payload []byte) {
	t.Helper()
	publishEventIn(t, js, defaultLayout, id, eventType, payload)
}

// publishEventIn stores an event in layout the way the emitter does.
func publishEventIn(t *testing.T, js jetstream.JetStream, layout emitter.Layout, id, eventType string, payload []byte) {
	t.Helper()
	msg := nats.NewMsg(layout.Subject(eventType))
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Data = payload
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatalf("publishing event %s: %v", id, err)
	}
}

// recordedRequest is one request that a test receiver got.
type recordedRequest struct {
	header http.Header
	body   []byte
	at     time.Time
}

func (r recordedRequest) id() string { return r.header.Get("Webhook-Id") }

// receiver is an HTTP server on 127.0.0.1 that records every request and
// lets respond write the response. respond gets the request's number,
// counted from 1, and 204 No Content is written when respond is nil.
type receiver struct {
	*httptest.Server

	mu       sync.Mutex
	requests []recordedRequest
	respond  func(n int, req recordedRequest, w http.ResponseWriter)
}

func newReceiver(t *testing.T, respond func(n int, req recordedRequest, w http.ResponseWriter)) *receiver {
	t.Helper()
	rcv := &receiver{respond: respond}
	rcv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := recordedRequest{header: r.Header.Clone(), body: body, at: time.Now()}
		rcv.mu.Lock()
		rcv.requests = append(rcv.requests, req)
		n := len(rcv.requests)
		rcv.mu.Unlock()
		if rcv.respond == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		rcv.respond(n, req, w)
	}))
	t.Cleanup(rcv.Close)
	return rcv
}

func (rcv *receiver) received() []recordedRequest {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]recordedRequest(nil), rcv.requests...)
}

// requestsFor returns the requests that carried the event id.
func (rcv *receiver) requestsFor(id string) []recordedRequest {
	var matched []recordedRequest
	for _, req := range rcv.received() {
		if req.id() == id {
			matched = append(matched, req)
		}
	}
	return matched
}

// respondWith returns a respond function that always writes status.
func respondWith(status int) func(int, recordedRequest, http.ResponseWriter) {
	return func(_ int, _ recordedRequest, w http.ResponseWriter) { w.WriteHeader(status) }
}

// testSecret returns a valid whsec_ secret whose 32 key bytes all equal b.
func testSecret(b byte) string {
	return SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), 32)))
}

// ms converts milliseconds to a caddy.Duration.
func ms(n int) caddy.Duration { return caddy.Duration(time.Duration(n) * time.Millisecond) }

// newEndpoint returns a provisioned endpoint with a short retry schedule
// that may deliver to the test receivers on loopback; configure changes it
// before provisioning.
func newEndpoint(t *testing.T, name, url string, configure func(*Endpoint)) *Endpoint {
	t.Helper()
	e := &Endpoint{
		Name:         name,
		URL:          url,
		Events:       []string{"order.*"},
		Timeout:      ms(2000),
		Retry:        []caddy.Duration{ms(100), ms(200)},
		AllowPrivate: true,
	}
	if configure != nil {
		configure(e)
	}
	if err := e.Provision(nil); err != nil {
		t.Fatalf("provisioning endpoint %s: %v", name, err)
	}
	return e
}

// startWorkers starts delivery in the default layout and stops it, waiting
// for every worker, when the test ends.
func startWorkers(t *testing.T, js jetstream.JetStream, opts Options, endpoints ...*Endpoint) *Workers {
	t.Helper()
	return startWorkersIn(t, js, defaultLayout, opts, endpoints...)
}

// startWorkersIn starts delivery in layout and stops it, waiting for every
// worker, when the test ends.
func startWorkersIn(t *testing.T, js jetstream.JetStream, layout emitter.Layout, opts Options, endpoints ...*Endpoint) *Workers {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	// The setup context ends right after Start, which the workers must
	// outlive.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	w, err := Start(ctx, js, layout, endpoints, opts)
	cancel()
	if err != nil {
		t.Fatalf("starting workers: %v", err)
	}
	t.Cleanup(func() {
		w.Stop(5 * time.Second)
		w.wg.Wait()
	})
	return w
}

// waitUntil polls check every 20ms until it returns nil or timeout passes,
// and then fails the test with the last error.
func waitUntil(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readRecords decodes every message on subject in a stream.
func readRecords[T any](t *testing.T, js jetstream.JetStream, stream, subject string) []T {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatalf("reading %s: %v", subject, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("reading %s: %v", subject, err)
	}
	var records []T
	for uint64(len(records)) < info.NumPending {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatalf("reading %s: %v", subject, err)
		}
		var rec T
		if err := json.Unmarshal(msg.Data(), &rec); err != nil {
			t.Fatalf("decoding %s: %v", msg.Data(), err)
		}
		records = append(records, rec)
	}
	return records
}

// attemptRecords returns the attempt records of an event at a destination,
// leaving out those of other events in the same bucket.
func attemptRecords(t *testing.T, js jetstream.JetStream, destination, eventID string) []AttemptRecord {
	all := readRecords[AttemptRecord](t, js, defaultLayout.AttemptsStream(), defaultLayout.AttemptSubject(destination, eventID))
	var records []AttemptRecord
	for _, rec := range all {
		if rec.EventID == eventID {
			records = append(records, rec)
		}
	}
	return records
}

func deadLetters(t *testing.T, js jetstream.JetStream, destination string) []DeadLetter {
	return readRecords[DeadLetter](t, js, defaultLayout.DeadStream(), defaultLayout.DeadSubject(destination))
}

// hookLog records the calls of Hooks.
type hookLog struct {
	mu       sync.Mutex
	outcomes []string
	dead     int
}

func (h *hookLog) hooks() Hooks {
	return Hooks{
		Attempted: func(destination, outcome string, _ time.Duration) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.outcomes = append(h.outcomes, destination+":"+outcome)
		},
		DeadLettered: func(*DeadLetter) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.dead++
		},
	}
}

func (h *hookLog) snapshot() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.outcomes...), h.dead
}

// putState writes an endpoint state to the state bucket as the admin API
// would.
func putState(t *testing.T, js jetstream.JetStream, name, state string) {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), defaultLayout.StateBucket())
	if err != nil {
		t.Fatalf("opening state bucket: %v", err)
	}
	if _, err := kv.Put(t.Context(), name, fmt.Appendf(nil, `{"state":%q}`, state)); err != nil {
		t.Fatalf("writing state %s of %s: %v", state, name, err)
	}
}

func getState(t *testing.T, js jetstream.JetStream, name string) (EndpointState, error) {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), defaultLayout.StateBucket())
	if err != nil {
		return EndpointState{}, err
	}
	entry, err := kv.Get(t.Context(), name)
	if err != nil {
		return EndpointState{}, err
	}
	var state EndpointState
	err = json.Unmarshal(entry.Value(), &state)
	return state, err
}

// consumerInfo returns the current information of a consumer on the events
// stream.
func consumerInfo(t *testing.T, js jetstream.JetStream, name string) (*jetstream.ConsumerInfo, error) {
	t.Helper()
	cons, err := js.Consumer(t.Context(), defaultLayout.EventsStream(), name)
	if err != nil {
		return nil, fmt.Errorf("looking up consumer %s: %w", name, err)
	}
	return cons.Info(t.Context())
}
