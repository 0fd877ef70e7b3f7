package webhooks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/internal/codingtest"
)

// compressedConfig is a Caddyfile that proxies to an upstream which sends
// compressed JSON, and emits an event for every successful order read.
const compressedConfig = `{
	admin {{.Admin}}
	persist_config off
	auto_https off
	grace_period 2s
	webhooks {
		endpoint main {{.Receiver}} {
			events order.*
			secret ` + testSecret + `
			timeout 2s
			retry 1s
			allow_private
		}
	}
}

http://127.0.0.1:{{.Port}} {
	bind 127.0.0.1
	webhooks {
		event order.read GET /orders/* 200
	}
	reverse_proxy {{.Upstream}}
}
`

func TestCompressedResponseDecodedInEvent(t *testing.T) {
	codings := []string{"gzip", "zstd", "br"}

	// Each path /orders/<coding> returns the JSON of an order whose id
	// names the coding, compressed with that coding. The note makes the
	// body long enough that the compressed bytes differ clearly from it.
	bodies := make(map[string][]byte)
	for _, coding := range codings {
		order := fmt.Sprintf(`{"id":"order-%s","note":%q}`, coding, strings.Repeat("compressible text ", 400))
		bodies[coding] = codingtest.Encode(t, coding, []byte(order))
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		coding := strings.TrimPrefix(r.URL.Path, "/orders/")
		body, ok := bodies[coding]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if !strings.Contains(r.Header.Get("Accept-Encoding"), coding) {
			http.Error(w, "Accept-Encoding does not list "+coding, http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", coding)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
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

	// The client sets Accept-Encoding itself and does not decode, so it
	// receives the bytes exactly as Caddy sent them.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}
	for _, coding := range codings {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/orders/%s", port, coding), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", "gzip, br, zstd")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET /orders/%s: %v", coding, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reading /orders/%s: %v", coding, err)
		}

		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /orders/%s: status %d, expected 200: %s", coding, resp.StatusCode, got)
		}
		if !bytes.Equal(got, bodies[coding]) {
			t.Errorf("GET /orders/%s: client got %d bytes that differ from the %d compressed bytes the upstream sent", coding, len(got), len(bodies[coding]))
		}
		if ce := resp.Header.Get("Content-Encoding"); ce != coding {
			t.Errorf("GET /orders/%s: Content-Encoding = %q, expected %q", coding, ce, coding)
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(bodies[coding])) {
			t.Errorf("GET /orders/%s: Content-Length = %q, expected %d", coding, cl, len(bodies[coding]))
		}
	}

	ds := rc.waitCount(t, 30*time.Second, len(codings))
	seen := make(map[string]bool)
	for _, d := range ds {
		verifySignature(t, d)
		var envelope struct {
			Data struct {
				Request struct {
					Path string `json:"path"`
				} `json:"request"`
				Response struct {
					Body          json.RawMessage `json:"body"`
					BodyEncoding  string          `json:"body_encoding"`
					BodyTruncated bool            `json:"body_truncated"`
				} `json:"response"`
			} `json:"data"`
		}
		if err := json.Unmarshal(d.Body, &envelope); err != nil {
			t.Fatalf("delivery body is not JSON: %v\n%s", err, d.Body)
		}
		coding := strings.TrimPrefix(envelope.Data.Request.Path, "/orders/")
		response := envelope.Data.Response

		var order struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(response.Body, &order); err != nil {
			t.Errorf("%s: response body is not embedded JSON: %v: %.100s", coding, err, response.Body)
			continue
		}
		if order.ID != "order-"+coding {
			t.Errorf("%s: response body id = %q, expected %q", coding, order.ID, "order-"+coding)
		}
		if response.BodyEncoding != "" || response.BodyTruncated {
			t.Errorf("%s: body_encoding = %q and body_truncated = %v, expected neither", coding, response.BodyEncoding, response.BodyTruncated)
		}
		seen[coding] = true
	}
	for _, coding := range codings {
		if !seen[coding] {
			t.Errorf("no delivery for GET /orders/%s", coding)
		}
	}
}
