package packaging

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

// goReceiverDir is the Go receiver example of docs/receivers.md.
const goReceiverDir = "docs/examples/receivers/go"

// receiverKeys are the keys that the example receiver verifies with and
// the test signs with, the way Caddy signs.
type receiverKeys struct {
	secret     string // whsec_...
	hmacKey    []byte
	signingKey ed25519.PrivateKey
	publicKey  string // whpk_...
}

func newReceiverKeys(t *testing.T) receiverKeys {
	t.Helper()
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	secret := delivery.SecretPrefix + base64.StdEncoding.EncodeToString(random)
	hmacKey, err := delivery.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return receiverKeys{secret: secret, hmacKey: hmacKey, signingKey: private, publicKey: delivery.FormatPublicKey(public)}
}

// TestGoReceiverExample builds the Go receiver example, runs it, and sends
// it webhooks signed by the delivery package, valid and invalid ones.
func TestGoReceiverExample(t *testing.T) {
	goBin := requireGo(t)
	root := repoRoot(t)
	binary := filepath.Join(t.TempDir(), "receiver")
	runCommand(t, commandTimeout(t, 5*time.Minute), goBin, []string{"build", "-o", binary, "./" + goReceiverDir}, root, goEnv())

	keys := newReceiverKeys(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProcess(t, binary, nil, append(goEnv(),
		"WEBHOOK_SECRET="+keys.secret,
		"WEBHOOK_PUBLIC_KEY="+keys.publicKey,
		"ADDR="+addr))
	checkReceiver(t, p, addr, keys)
}

// checkReceiver sends webhooks to a receiver example listening on addr and
// checks its responses and which events it processed. The examples print
// "processing event webhook_id=<id> type=<type>" for each event they process.
func checkReceiver(t *testing.T, p *process, addr string, keys receiverKeys) {
	t.Helper()
	waitFor(t, 30*time.Second, "the receiver to listen on "+addr, func() error {
		if err := p.exited(); err != nil {
			return err
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	url := "http://" + addr + "/hooks"

	body := []byte(`{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z","data":{"id":42}}`)
	now := time.Now()
	otherSecret, err := delivery.ParseSecret(delivery.SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		id          string
		secrets     [][]byte
		signingKeys []ed25519.PrivateKey
		signedAt    time.Time
		sentBody    []byte // the body sent, when it differs from the signed one
		status      int
	}{
		{"v1 and v1a", "evt-both", [][]byte{keys.hmacKey}, []ed25519.PrivateKey{keys.signingKey}, now, nil, http.StatusNoContent},
		{"duplicate id", "evt-both", [][]byte{keys.hmacKey}, nil, now, nil, http.StatusNoContent},
		{"v1 only", "evt-v1", [][]byte{keys.hmacKey}, nil, now, nil, http.StatusNoContent},
		{"v1a only", "evt-v1a", nil, []ed25519.PrivateKey{keys.signingKey}, now, nil, http.StatusNoContent},
		{"rotated secrets", "evt-rotated", [][]byte{otherSecret, keys.hmacKey}, nil, now, nil, http.StatusNoContent},
		{"wrong secret", "evt-wrong", [][]byte{otherSecret}, nil, now, nil, http.StatusUnauthorized},
		{"changed body", "evt-changed", [][]byte{keys.hmacKey}, []ed25519.PrivateKey{keys.signingKey}, now, append(body, ' '), http.StatusUnauthorized},
		{"old timestamp", "evt-old", [][]byte{keys.hmacKey}, []ed25519.PrivateKey{keys.signingKey}, now.Add(-10 * time.Minute), nil, http.StatusUnauthorized},
		{"unsigned", "evt-unsigned", nil, nil, now, nil, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := body
			if tt.sentBody != nil {
				sent = tt.sentBody
			}
			header := http.Header{}
			header.Set("Content-Type", "application/json")
			header.Set("webhook-id", tt.id)
			header.Set("webhook-timestamp", strconv.FormatInt(tt.signedAt.Unix(), 10))
			header.Set("webhook-signature", delivery.SignatureHeader(tt.secrets, tt.signingKeys, tt.id, tt.signedAt, body))
			if status := postWebhook(t, url, header, sent); status != tt.status {
				t.Errorf("the receiver answered %d, expected %d", status, tt.status)
			}
		})
	}

	t.Run("GET rejected", func(t *testing.T) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET answered %d, expected 405", resp.StatusCode)
		}
	})

	t.Run("processed once each", func(t *testing.T) {
		processed := func(id string) string { return "processing event webhook_id=" + id + " " }
		for _, id := range []string{"evt-both", "evt-v1", "evt-v1a", "evt-rotated"} {
			line := processed(id)
			waitFor(t, 10*time.Second, "the receiver to process "+id, func() error {
				if p.countLines(line) == 0 {
					return fmt.Errorf("not processed yet")
				}
				return nil
			})
		}
		if n := p.countLines(processed("evt-both")); n != 1 {
			t.Errorf("event evt-both was processed %d times, expected once although it arrived twice", n)
		}
		for _, id := range []string{"evt-wrong", "evt-changed", "evt-old", "evt-unsigned"} {
			if p.countLines(processed(id)) != 0 {
				t.Errorf("event %s was processed, although its signature is invalid", id)
			}
		}
	})
}

// postWebhook sends one webhook and returns the status.
func postWebhook(t *testing.T, url string, header http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
