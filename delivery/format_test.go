package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/caddy-webhooks/caddy-webhooks/payload"
)

// envelopeFor builds a stored payload with the default envelope of package
// payload, as the webhooks handler publishes it.
func envelopeFor(t *testing.T, host string, observed time.Time) []byte {
	t.Helper()
	stored, err := payload.Default(&payload.Exchange{
		EventID:   "01HZCLOUDEVENT00000000001",
		EventType: "order.created",
		Timestamp: observed,
		Request: payload.Request{
			Method: http.MethodPost,
			Host:   host,
			Path:   "/orders",
			Query:  url.Values{"dry_run": {"false"}},
		},
		Response: payload.Response{
			Status: http.StatusCreated,
			Body:   []byte(`{"id":42,"note":"<b>fish & chips</b>","total":"12.50"}`),
		},
	})
	if err != nil {
		t.Fatalf("building envelope: %v", err)
	}
	return stored
}

// parseCloudEvent parses a request body with the CloudEvents SDK and
// validates it against CloudEvents 1.0.
func parseCloudEvent(t *testing.T, body []byte) cloudevents.Event {
	t.Helper()
	ce := cloudevents.New()
	if err := json.Unmarshal(body, &ce); err != nil {
		t.Fatalf("parsing CloudEvent %s: %v", body, err)
	}
	if err := ce.Validate(); err != nil {
		t.Fatalf("validating CloudEvent %s: %v", body, err)
	}
	return ce
}

func TestCloudEventDeliveryVerifies(t *testing.T) {
	secret := testSecret('c')
	keys := newTestKeyPair(7)
	rcv := newReceiver(t, nil)
	e := newEndpoint(t, "cloud", rcv.URL, func(e *Endpoint) {
		e.Format = FormatCloudEvents
		e.Secrets = []string{secret}
		e.SigningKeys = []string{keys.signingKey}
	})
	observed := time.Date(2026, 12, 4, 19, 20, 0, 123e6, time.UTC)
	stored := envelopeFor(t, "api.example.com", observed)
	const id = "01HZCLOUDEVENT00000000001"

	req := deliverOne(t, e, rcv, Options{}, id, stored)

	if got := req.header.Get("Content-Type"); got != "application/cloudevents+json" {
		t.Errorf("content-type = %q, want application/cloudevents+json", got)
	}
	ce := parseCloudEvent(t, req.body)
	if ce.SpecVersion() != "1.0" {
		t.Errorf("specversion = %q, want 1.0", ce.SpecVersion())
	}
	if ce.ID() != id {
		t.Errorf("id = %q, want %q", ce.ID(), id)
	}
	if ce.ID() != req.header.Get("Webhook-Id") {
		t.Errorf("id = %q, want the webhook-id %q", ce.ID(), req.header.Get("Webhook-Id"))
	}
	if ce.Type() != "order.created" {
		t.Errorf("type = %q, want order.created", ce.Type())
	}
	if ce.Source() != "//api.example.com" {
		t.Errorf("source = %q, want //api.example.com", ce.Source())
	}
	if !ce.Time().Equal(observed) {
		t.Errorf("time = %s, want %s", ce.Time(), observed)
	}
	if ce.DataContentType() != "application/json" {
		t.Errorf("datacontenttype = %q, want application/json", ce.DataContentType())
	}

	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(stored, &env); err != nil {
		t.Fatalf("parsing stored envelope: %v", err)
	}
	if !bytes.Equal(ce.Data(), env.Data) {
		t.Errorf("data = %s, want the envelope's data %s", ce.Data(), env.Data)
	}
	var data struct {
		Response struct {
			Body struct {
				ID int `json:"id"`
			} `json:"body"`
		} `json:"response"`
	}
	if err := ce.DataAs(&data); err != nil {
		t.Fatalf("decoding data: %v", err)
	}
	if data.Response.Body.ID != 42 {
		t.Errorf("data.response.body.id = %d, want 42", data.Response.Body.ID)
	}

	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("creating verifier: %v", err)
	}
	if err := wh.Verify(req.body, req.header); err != nil {
		t.Errorf("v1 signature does not verify over the CloudEvent: %v", err)
	}
	if err := verifyV1a(keys.publicKey, req); err != nil {
		t.Errorf("v1a signature does not verify over the CloudEvent: %v", err)
	}
}

func TestCloudEventRetrySendsSameBody(t *testing.T) {
	secret := testSecret('r')
	js := startJetStream(t)
	rcv := newReceiver(t, func(n int, _ recordedRequest, w http.ResponseWriter) {
		if n < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	startWorkers(t, js, Options{}, newEndpoint(t, "cloudretry", rcv.URL, func(e *Endpoint) {
		e.Format = FormatCloudEvents
		e.Secrets = []string{secret}
	}))

	publishEvent(t, js, "evtce1", "order.created", envelopeFor(t, "shop.example.com:8443", time.Now()))
	waitUntil(t, 10*time.Second, func() error {
		if n := len(rcv.requestsFor("evtce1")); n != 3 {
			return fmt.Errorf("receiver got %d requests, want 3", n)
		}
		return nil
	})

	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("creating verifier: %v", err)
	}
	requests := rcv.requestsFor("evtce1")
	for i, req := range requests {
		if !bytes.Equal(req.body, requests[0].body) {
			t.Errorf("attempt %d body = %s, want the body of attempt 1 %s", i+1, req.body, requests[0].body)
		}
		if err := wh.Verify(req.body, req.header); err != nil {
			t.Errorf("attempt %d: signature does not verify: %v", i+1, err)
		}
	}
	if ce := parseCloudEvent(t, requests[0].body); ce.Source() != "//shop.example.com:8443" {
		t.Errorf("source = %q, want //shop.example.com:8443", ce.Source())
	}
}

func TestCloudEventInvalidPayloadDeadLettered(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		payload string
		want    string // substring of the dead letter's error
	}{
		{name: "not JSON", id: "evtbad1", payload: "order 42 created", want: "parsing it failed"},
		{name: "array", id: "evtbad2", payload: `[1,2]`, want: "parsing it failed"},
		{name: "object without type", id: "evtbad3", payload: `{"n":1}`, want: `no "type"`},
		{name: "no timestamp", id: "evtbad4", payload: `{"type":"order.created","data":{}}`, want: `no "timestamp"`},
		{name: "bad timestamp", id: "evtbad5", payload: `{"type":"order.created","timestamp":"yesterday","data":{}}`, want: `"yesterday" is not an RFC 3339 time`},
		{name: "no data", id: "evtbad6", payload: `{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z"}`, want: `no "data"`},
		{name: "null data", id: "evtbad7", payload: `{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z","data":null}`, want: `no "data"`},
	}

	js := startJetStream(t)
	rcv := newReceiver(t, nil)
	startWorkers(t, js, Options{}, newEndpoint(t, "cloudstrict", rcv.URL, func(e *Endpoint) {
		e.Format = FormatCloudEvents
	}))
	for _, tt := range tests {
		publishEvent(t, js, tt.id, "order.created", []byte(tt.payload))
	}
	waitUntil(t, 10*time.Second, func() error {
		if n := len(deadLetters(t, js, "cloudstrict")); n != len(tests) {
			return fmt.Errorf("got %d dead letters, want %d", n, len(tests))
		}
		return nil
	})

	byID := make(map[string]DeadLetter)
	for _, dead := range deadLetters(t, js, "cloudstrict") {
		byID[dead.EventID] = dead
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dead, ok := byID[tt.id]
			if !ok {
				t.Fatalf("no dead letter for %s", tt.id)
			}
			if dead.ErrorClass != ClassInvalidEvent {
				t.Errorf("error class = %q, want %q", dead.ErrorClass, ClassInvalidEvent)
			}
			if !strings.Contains(dead.Error, tt.want) {
				t.Errorf("error = %q, want it to contain %q", dead.Error, tt.want)
			}
			if !strings.Contains(dead.Error, "use format standard") {
				t.Errorf("error = %q, want it to name the fix", dead.Error)
			}
			stored := dead.Payload
			if stored == nil {
				stored = dead.PayloadBase64
			}
			if string(stored) != tt.payload {
				t.Errorf("dead letter payload = %s, want the stored payload %s", stored, tt.payload)
			}
		})
	}
	if n := len(rcv.received()); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
}

func TestEncodeCloudEvent(t *testing.T) {
	tests := []struct {
		name   string
		stored string
		want   string
	}{
		{
			name:   "default envelope",
			stored: `{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z","data":{"request":{"method":"POST","host":"api.example.com","path":"/orders","query":{}},"response":{"status":201,"body":{"id":42}}}}`,
			want:   `{"specversion":"1.0","id":"evt1","source":"//api.example.com","type":"order.created","time":"2026-12-04T19:20:00.123Z","datacontenttype":"application/json","data":{"request":{"method":"POST","host":"api.example.com","path":"/orders","query":{}},"response":{"status":201,"body":{"id":42}}}}`,
		},
		{
			name:   "whitespace in data is compacted",
			stored: "{\"type\":\"x\",\"timestamp\":\"2026-12-04T19:20:00Z\",\"data\": {\n  \"request\": {\"host\": \"a.example\"},\n  \"n\": [1, 2]\n}}",
			want:   `{"specversion":"1.0","id":"evt1","source":"//a.example","type":"order.created","time":"2026-12-04T19:20:00Z","datacontenttype":"application/json","data":{"request":{"host":"a.example"},"n":[1,2]}}`,
		},
		{
			name:   "HTML characters and large numbers kept",
			stored: `{"type":"x","timestamp":"2026-12-04T19:20:00+02:00","data":{"request":{"host":"a.example"},"note":"<b>&</b>","big":12345678901234567890123}}`,
			want:   `{"specversion":"1.0","id":"evt1","source":"//a.example","type":"order.created","time":"2026-12-04T19:20:00+02:00","datacontenttype":"application/json","data":{"request":{"host":"a.example"},"note":"<b>&</b>","big":12345678901234567890123}}`,
		},
		{
			name:   "IPv6 host with port",
			stored: `{"type":"x","timestamp":"2026-12-04T19:20:00Z","data":{"request":{"host":"[::1]:8443"}}}`,
			want:   `{"specversion":"1.0","id":"evt1","source":"//[::1]:8443","type":"order.created","time":"2026-12-04T19:20:00Z","datacontenttype":"application/json","data":{"request":{"host":"[::1]:8443"}}}`,
		},
		{
			name:   "empty host",
			stored: `{"type":"x","timestamp":"2026-12-04T19:20:00Z","data":{"request":{"host":""}}}`,
			want:   `{"specversion":"1.0","id":"evt1","source":"/","type":"order.created","time":"2026-12-04T19:20:00Z","datacontenttype":"application/json","data":{"request":{"host":""}}}`,
		},
		{
			name:   "data without request",
			stored: `{"type":"x","timestamp":"2026-12-04T19:20:00Z","data":["a",1]}`,
			want:   `{"specversion":"1.0","id":"evt1","source":"/","type":"order.created","time":"2026-12-04T19:20:00Z","datacontenttype":"application/json","data":["a",1]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeCloudEvent("evt1", "order.created", []byte(tt.stored))
			if err != nil {
				t.Fatalf("encodeCloudEvent: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("body =\n%s\nwant\n%s", got, tt.want)
			}
			again, err := encodeCloudEvent("evt1", "order.created", []byte(tt.stored))
			if err != nil {
				t.Fatalf("encodeCloudEvent again: %v", err)
			}
			if !bytes.Equal(again, got) {
				t.Errorf("second encoding = %s, want the same bytes %s", again, got)
			}
			parseCloudEvent(t, got)
		})
	}
}

func TestStandardFormatSendsStoredPayload(t *testing.T) {
	rcv := newReceiver(t, nil)
	stored := envelopeFor(t, "api.example.com", time.Now())
	req := deliverOne(t, newEndpoint(t, "standard", rcv.URL, nil), rcv, Options{}, "evtstd1", stored)

	if !bytes.Equal(req.body, stored) {
		t.Errorf("body = %s, want the stored payload %s", req.body, stored)
	}
	if got := req.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("content-type = %q, want application/json", got)
	}
}

func TestEndpointFormatValidate(t *testing.T) {
	tests := []struct {
		format string
		valid  bool
	}{
		{format: "", valid: true},
		{format: "standard", valid: true},
		{format: "cloudevents", valid: true},
		{format: "CloudEvents"},
		{format: "json"},
		{format: "cloudevents "},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.format), func(t *testing.T) {
			e := validEndpoint()
			e.Format = tt.format
			err := e.Validate()
			if tt.valid {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted format %q", tt.format)
			}
			for _, want := range []string{fmt.Sprintf("invalid format %q", tt.format), "standard", "cloudevents"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestEndpointFormatDefault(t *testing.T) {
	e := validEndpoint()
	if err := e.Provision(nil); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if e.Format != FormatStandard {
		t.Errorf("format = %q, want %q after Provision", e.Format, FormatStandard)
	}
}
