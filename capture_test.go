package webhooks_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// captureConfig is a Caddyfile whose upload site captures request bodies
// on their way to an upstream that hashes them, whose order site renders a
// payload template, and whose ignore site never reads the request body.
const captureConfig = `{
	admin {{.Admin}}
	persist_config off
	auto_https off
	grace_period 2s
	webhooks {
		endpoint main {{.Receiver}} {
			events upload.* order.* ignored.*
			secret ` + testSecret + `
			timeout 5s
			retry 1s
			allow_private
		}
	}
}

http://127.0.0.1:{{.Port}} {
	bind 127.0.0.1
	webhooks {
		event upload.received {
			method POST PUT
			path /upload
			capture {
				request_body
				request_header X-Case
				response_header X-Upstream-Sha256
				max_body 64KiB
			}
		}
		event order.created {
			method POST
			path /orders
			status 201
			payload {
				"order_id": "{webhook.response.body.id}",
				"first_sku": "{webhook.request.body.items.0.sku}",
				"tenant": "{webhook.request.header.X-Tenant}",
				"status": "{webhook.response.status}",
				"summary": "order {webhook.response.body.id} for {webhook.request.header.X-Tenant}",
				"missing": "{webhook.response.body.nope}",
				"event": {
					"id": "{webhook.event.id}",
					"type": "{webhook.event.type}"
				}
				"method": "{http.request.method}"
			}
		}
		event ignored.upload {
			path /ignore
			capture request_body
		}
	}
	handle /ignore {
		respond "not read" 200
	}
	reverse_proxy {{.Upstream}}
}
`

// hashingAPI is an upstream that reads the request body and responds with
// its SHA-256 and the framing it arrived with. POST /orders echoes the body
// with an id added.
func hashingAPI(t *testing.T) *httptest.Server {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/orders" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":42,"echo":` + string(body) + `}`))
			return
		}
		sum := sha256.Sum256(body)
		reply, _ := json.Marshal(map[string]any{
			"sha256":            hex.EncodeToString(sum[:]),
			"length":            len(body),
			"content_length":    r.ContentLength,
			"transfer_encoding": r.TransferEncoding,
		})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Sha256", hex.EncodeToString(sum[:]))
		w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
		_, _ = w.Write(reply)
	}))
	t.Cleanup(server.Close)
	return server
}

type captureSite struct {
	caddy *caddyProcess
	rc    *receiver
	port  int
}

func startCaptureSite(t *testing.T) *captureSite {
	t.Helper()
	api := hashingAPI(t)
	rc := newReceiver(t, nil)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port := freePort(t)
	config := renderConfig(t, captureConfig, map[string]any{
		"Admin": admin, "Receiver": rc.URL, "Port": port,
		"Upstream": strings.TrimPrefix(api.URL, "http://"),
	})
	return &captureSite{caddy: startCaddy(t, config, "", admin), rc: rc, port: port}
}

func (s *captureSite) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path)
}

// upstreamView is what the hashing API reports about the body it received.
type upstreamView struct {
	SHA256           string   `json:"sha256"`
	Length           int      `json:"length"`
	ContentLength    int64    `json:"content_length"`
	TransferEncoding []string `json:"transfer_encoding"`
}

// eventData is the data of a default envelope with a captured request body.
type eventData struct {
	Request struct {
		Headers       map[string][]string `json:"headers"`
		Body          json.RawMessage     `json:"body"`
		BodyEncoding  string              `json:"body_encoding"`
		BodyTruncated bool                `json:"body_truncated"`
	} `json:"request"`
	Response struct {
		Status  int                 `json:"status"`
		Headers map[string][]string `json:"headers"`
	} `json:"response"`
}

func TestRequestBodyTeeKeepsUpstreamBytes(t *testing.T) {
	s := startCaptureSite(t)

	random := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	_ = mw.WriteField("name", "invoice")
	fw, _ := mw.CreateFormFile("file", "invoice.pdf")
	_, _ = fw.Write(random[:100<<10])
	_ = mw.Close()

	cases := []struct {
		name        string
		body        []byte
		contentType string
		chunked     bool
	}{
		{"json", []byte(`{"sku":"A-1","qty":2,"note":"caf\u00e9"}`), "application/json", false},
		{"multipart", form.Bytes(), mw.FormDataContentType(), false},
		{"chunked", bytes.Repeat([]byte(`{"line":1}`+"\n"), 3000), "application/x-ndjson", true},
		{"empty", nil, "", false},
		{"five-mib", random, "application/octet-stream", false},
	}

	for i, tc := range cases {
		var body io.Reader = bytes.NewReader(tc.body)
		if tc.chunked {
			// A reader of unknown length makes the client send chunks.
			body = io.MultiReader(bytes.NewReader(tc.body))
		}
		req, err := http.NewRequest(http.MethodPost, s.url("/upload"), body)
		if err != nil {
			t.Fatal(err)
		}
		if tc.body == nil {
			req.Body = http.NoBody
		}
		req.Header.Set("X-Case", tc.name)
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: POST /upload: %v", tc.name, err)
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tc.name, resp.StatusCode, reply)
		}
		if resp.ContentLength != int64(len(reply)) {
			t.Errorf("%s: client saw Content-Length %d, upstream sent %d bytes", tc.name, resp.ContentLength, len(reply))
		}

		var view upstreamView
		if err := json.Unmarshal(reply, &view); err != nil {
			t.Fatalf("%s: upstream reply %q: %v", tc.name, reply, err)
		}
		want := sha256.Sum256(tc.body)
		if view.SHA256 != hex.EncodeToString(want[:]) || view.Length != len(tc.body) {
			t.Errorf("%s: upstream got %d bytes with SHA-256 %s, client sent %d bytes with %x",
				tc.name, view.Length, view.SHA256, len(tc.body), want)
		}
		switch {
		case tc.chunked:
			if view.ContentLength != -1 || !slices.Equal(view.TransferEncoding, []string{"chunked"}) {
				t.Errorf("%s: upstream saw Content-Length %d and Transfer-Encoding %v, want a chunked body",
					tc.name, view.ContentLength, view.TransferEncoding)
			}
		default:
			if view.ContentLength != int64(len(tc.body)) {
				t.Errorf("%s: upstream saw Content-Length %d, client sent %d", tc.name, view.ContentLength, len(tc.body))
			}
		}

		// The events arrive in order, because each request waits for its
		// response and one endpoint worker delivers them.
		deliveries := s.rc.waitCount(t, 30*time.Second, i+1)
		checkUploadEvent(t, tc.name, tc.body, view.SHA256, deliveries[i])
	}
}

// checkUploadEvent checks the captured request body and headers in the
// event of one upload.
func checkUploadEvent(t *testing.T, name string, sent []byte, upstreamSHA string, d delivery) {
	t.Helper()
	verifySignature(t, d)

	var env struct {
		Type string    `json:"type"`
		Data eventData `json:"data"`
	}
	if err := json.Unmarshal(d.Body, &env); err != nil {
		t.Fatalf("%s: event body %q: %v", name, d.Body, err)
	}
	if got := env.Data.Request.Headers["X-Case"]; !slices.Equal(got, []string{name}) {
		t.Errorf("%s: event request headers %v, want X-Case [%s] for this case", name, env.Data.Request.Headers, name)
	}
	if got := env.Data.Response.Headers["X-Upstream-Sha256"]; !slices.Equal(got, []string{upstreamSHA}) {
		t.Errorf("%s: event response headers %v, want X-Upstream-Sha256 [%s]", name, env.Data.Response.Headers, upstreamSHA)
	}

	kept := sent
	if len(kept) > 64<<10 {
		kept = kept[:64<<10]
		if !env.Data.Request.BodyTruncated {
			t.Errorf("%s: body_truncated is false for a body of %d bytes", name, len(sent))
		}
	} else if env.Data.Request.BodyTruncated {
		t.Errorf("%s: body_truncated is true for a body of %d bytes", name, len(sent))
	}

	var got []byte
	switch {
	case len(kept) == 0:
		if len(env.Data.Request.Body) != 0 {
			t.Errorf("%s: event has request body %s for an empty body", name, env.Data.Request.Body)
		}
		return
	case env.Data.Request.BodyEncoding == "base64":
		var encoded string
		if err := json.Unmarshal(env.Data.Request.Body, &encoded); err != nil {
			t.Fatalf("%s: base64 body: %v", name, err)
		}
		decoded, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			t.Fatalf("%s: base64 body: %v", name, err)
		}
		got = decoded
	case json.Valid(kept) && kept[0] == '{':
		var compact bytes.Buffer
		if err := json.Compact(&compact, kept); err != nil {
			t.Fatal(err)
		}
		kept = compact.Bytes()
		got = env.Data.Request.Body
	default:
		var text string
		if err := json.Unmarshal(env.Data.Request.Body, &text); err != nil {
			t.Fatalf("%s: text body %s: %v", name, env.Data.Request.Body, err)
		}
		got = []byte(text)
	}
	if !bytes.Equal(got, kept) {
		t.Errorf("%s: event kept %d request body bytes that differ from the first %d sent", name, len(got), len(kept))
	}
}

func TestUnreadRequestBodyStillEmits(t *testing.T) {
	s := startCaptureSite(t)

	if status := send(t, http.MethodPost, s.url("/ignore"), `{"never":"read"}`); status != http.StatusOK {
		t.Fatalf("POST /ignore: status %d, want 200", status)
	}

	d := s.rc.waitCount(t, 30*time.Second, 1)[0]
	var env struct {
		Type string    `json:"type"`
		Data eventData `json:"data"`
	}
	if err := json.Unmarshal(d.Body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "ignored.upload" {
		t.Fatalf("event type %q, want ignored.upload", env.Type)
	}
	if !env.Data.Request.BodyTruncated {
		t.Errorf("body_truncated is false for a request body that nobody read: %s", d.Body)
	}
	if len(env.Data.Request.Body) != 0 {
		t.Errorf("event has request body %s, but nothing read it", env.Data.Request.Body)
	}
}

func TestPayloadTemplateRendersEvent(t *testing.T) {
	s := startCaptureSite(t)

	req, err := http.NewRequest(http.MethodPost, s.url("/orders"), strings.NewReader(`{"items":[{"sku":"A-1"},{"sku":"B-2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Tenant", "acme \"north\"")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /orders: status %d, want 201", resp.StatusCode)
	}

	d := s.rc.waitCount(t, 30*time.Second, 1)[0]
	verifySignature(t, d)
	id := d.Header.Get("webhook-id")

	var env struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(d.Body, &env); err != nil {
		t.Fatalf("event body %q: %v", d.Body, err)
	}
	if env.Type != "order.created" || env.Timestamp == "" {
		t.Errorf("envelope type %q timestamp %q, want order.created and a time", env.Type, env.Timestamp)
	}

	want := fmt.Sprintf(`{"order_id":42,"first_sku":"A-1","tenant":"acme \"north\"","status":201,`+
		`"summary":"order 42 for acme \"north\"","missing":null,`+
		`"event":{"id":%q,"type":"order.created"},"method":"POST"}`, id)
	var gotData, wantData any
	if err := json.Unmarshal(env.Data, &gotData); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &wantData); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(gotData)
	wantJSON, _ := json.Marshal(wantData)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("data = %s\nwant   %s", gotJSON, wantJSON)
	}
}

// TestLargeResponseStreamsWhole sends a 100 MiB response through a rule
// that captures the response body, and checks that the client gets every
// byte while the event keeps only max_body of it.
func TestLargeResponseStreamsWhole(t *testing.T) {
	const size = 100 << 20
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = io.Copy(w, io.LimitReader(newPattern(), size))
	}))
	t.Cleanup(upstream.Close)

	rc := newReceiver(t, nil)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port := freePort(t)
	config := renderConfig(t, compressedConfig, map[string]any{
		"Admin": admin, "Receiver": rc.URL, "Port": port,
		"Upstream": strings.TrimPrefix(upstream.URL, "http://"),
	})
	startCaddy(t, config, "", admin)

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/orders/export", port))
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("client read %d bytes (err %v), want %d", n, err, size)
	}
	want := sha256.New()
	_, _ = io.Copy(want, io.LimitReader(newPattern(), size))
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("client got a 100 MiB body that differs from the upstream's")
	}

	d := rc.waitCount(t, 30*time.Second, 1)[0]
	var env struct {
		Data struct {
			Response struct {
				Body          json.RawMessage `json:"body"`
				BodyEncoding  string          `json:"body_encoding"`
				BodyTruncated bool            `json:"body_truncated"`
			} `json:"response"`
		} `json:"data"`
	}
	if err := json.Unmarshal(d.Body, &env); err != nil {
		t.Fatal(err)
	}
	if !env.Data.Response.BodyTruncated {
		t.Error("body_truncated is false for a 100 MiB response")
	}
	var text string
	if err := json.Unmarshal(env.Data.Response.Body, &text); err != nil {
		t.Fatalf("response body in event: %v", err)
	}
	if len(text) != 64<<10 {
		t.Errorf("event kept %d bytes of the response body, want the 64 KiB maximum", len(text))
	}
}

// newPattern returns an endless reader of printable text.
func newPattern() io.Reader {
	line := []byte("0123456789abcdefghijklmnopqrstuvwxyz\n")
	return &repeatReader{line: line}
}

type repeatReader struct {
	line []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.line[r.off]
		r.off = (r.off + 1) % len(r.line)
	}
	return len(p), nil
}
