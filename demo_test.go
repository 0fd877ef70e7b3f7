package webhooks_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// TestDemoDeliversSignedWebhook runs testdata/demo.Caddyfile, with its fixed
// ports swapped for free ones, and follows the README's first curl.
func TestDemoDeliversSignedWebhook(t *testing.T) {
	data, err := os.ReadFile("testdata/demo.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("localhost:%d", freePort(t))
	api, upstream, receiver := freePort(t), freePort(t), freePort(t)
	config := strings.NewReplacer(
		"localhost:2019", admin,
		":8080", fmt.Sprintf(":%d", api),
		":9000", fmt.Sprintf(":%d", upstream),
		":9001", fmt.Sprintf(":%d", receiver),
	).Replace(string(data))
	p := startCaddy(t, config, "", admin)

	status := send(t, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/orders", api), `{"item":"book"}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /orders: status %d, expected 201", status)
	}

	// The receiver site logs each delivery it gets, with its headers and body.
	var logged map[string]any
	waitFor(t, 30*time.Second, "the receiver's log line", func() error {
		for _, entry := range p.logEntries("handled request") {
			if entry["webhook_id"] != nil && entry["webhook_id"] != "" {
				logged = entry
				return nil
			}
		}
		return fmt.Errorf("no delivery logged yet")
	})
	body, _ := logged["webhook_body"].(string)
	if !strings.Contains(body, `"type":"order.created"`) {
		t.Errorf("receiver logged body %q, expected an order.created event", body)
	}

	header := http.Header{}
	header.Set("webhook-id", fmt.Sprint(logged["webhook_id"]))
	header.Set("webhook-signature", fmt.Sprint(logged["webhook_signature"]))
	header.Set("webhook-timestamp", fmt.Sprint(logged["webhook_timestamp"]))
	wh, err := standardwebhooks.NewWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify([]byte(body), header); err != nil {
		t.Errorf("the demo delivery does not verify: %v", err)
	}
}
