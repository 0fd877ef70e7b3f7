// Command receiver is a webhook receiver for caddy-webhooks. It verifies
// each request's Standard Webhooks signature, skips webhook ids it has
// already accepted, responds at once, and processes the events one by one
// on a worker goroutine.
//
// Configuration, from the environment:
//
//	WEBHOOK_SECRET      the endpoint's secret (whsec_...), to verify v1 signatures
//	WEBHOOK_PUBLIC_KEY  the endpoint's ed25519 public key (whpk_...), to verify v1a signatures
//	ADDR                the listen address; default 127.0.0.1:8000
//
// At least one of WEBHOOK_SECRET and WEBHOOK_PUBLIC_KEY is required. Run it
// from the repository root with `go run ./docs/examples/receivers/go`.
package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const (
	// maxBody bounds the request body, above the largest event you expect.
	maxBody = 1 << 20

	// tolerance is the maximum age of webhook-timestamp, as in the
	// Standard Webhooks libraries. Caddy sets it when each attempt starts,
	// so retries carry a fresh one.
	tolerance = 5 * time.Minute

	// keepIDs is how long accepted webhook ids are remembered. Caddy keeps
	// events for 7 days by default and can send them again until then.
	keepIDs = 7 * 24 * time.Hour
)

// event is the part of the envelope that this receiver reads.
type event struct {
	ID   string `json:"-"`
	Type string `json:"type"`
}

// receiver handles webhook requests.
type receiver struct {
	secret    *standardwebhooks.Webhook // nil without WEBHOOK_SECRET
	publicKey ed25519.PublicKey         // nil without WEBHOOK_PUBLIC_KEY
	seen      *seenIDs
	queue     chan event
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "webhooks are POST requests", http.StatusMethodNotAllowed)
		return
	}
	// Verify the raw bytes: parsing and encoding the JSON again would change
	// them and break the signature.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	if err := rc.verify(body, r.Header); err != nil {
		slog.Warn("rejected webhook", "webhook_id", r.Header.Get("webhook-id"), "error", err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}

	var ev event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "body is not JSON", http.StatusBadRequest)
		return
	}
	ev.ID = r.Header.Get("webhook-id")
	if !rc.seen.add(ev.ID) {
		// A retry of an event that was accepted: respond with 2xx, or Caddy keeps retrying.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	select {
	case rc.queue <- ev:
		w.WriteHeader(http.StatusNoContent)
	default:
		// The worker is behind. Caddy honours Retry-After on 503.
		rc.seen.remove(ev.ID)
		w.Header().Set("Retry-After", "30")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}
}

// verify accepts the request when a v1 signature matches the secret or a
// v1a signature matches the public key.
func (rc *receiver) verify(body []byte, header http.Header) error {
	var errs []error
	if rc.secret != nil {
		// Verify checks the timestamp and every v1 signature of the header.
		err := rc.secret.Verify(body, header)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("v1: %w", err))
	}
	if rc.publicKey != nil {
		err := verifyEd25519(rc.publicKey, body, header, time.Now())
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("v1a: %w", err))
	}
	return errors.Join(errs...)
}

// verifyEd25519 checks the v1a signatures over "<id>.<timestamp>.<body>",
// which the Standard Webhooks libraries do not verify.
func verifyEd25519(publicKey ed25519.PublicKey, body []byte, header http.Header, now time.Time) error {
	id, timestamp := header.Get("webhook-id"), header.Get("webhook-timestamp")
	seconds, err := strconv.ParseInt(timestamp, 10, 64)
	if id == "" || err != nil {
		return errors.New("missing webhook-id or invalid webhook-timestamp")
	}
	if age := now.Sub(time.Unix(seconds, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("webhook-timestamp is %s away from now", age.Round(time.Second))
	}
	signed := []byte(id + "." + timestamp + "." + string(body))
	for _, entry := range strings.Fields(header.Get("webhook-signature")) {
		encoded, ok := strings.CutPrefix(entry, "v1a,")
		if !ok {
			continue
		}
		signature, err := base64.StdEncoding.DecodeString(encoded)
		if err == nil && ed25519.Verify(publicKey, signed, signature) {
			return nil
		}
	}
	return errors.New("no matching v1a signature")
}

// seenIDs remembers accepted webhook ids for keepIDs. Being in memory, it
// loses them on restart: a production receiver stores them with the
// effects of each event, in one transaction.
type seenIDs struct {
	mu     sync.Mutex
	ids    map[string]time.Time
	pruned time.Time
}

// add records id and reports whether it was new.
func (s *seenIDs) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.pruned) > time.Minute {
		for old, at := range s.ids {
			if now.Sub(at) > keepIDs {
				delete(s.ids, old)
			}
		}
		s.pruned = now
	}
	if _, ok := s.ids[id]; ok {
		return false
	}
	s.ids[id] = now
	return true
}

func (s *seenIDs) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, id)
}

// process does the work of one event after the response went out. Events
// of one type may arrive in any order.
func process(ev event) {
	slog.Info("processing event", "webhook_id", ev.ID, "type", ev.Type)
}

func main() {
	rc := &receiver{seen: &seenIDs{ids: make(map[string]time.Time)}, queue: make(chan event, 1000)}
	if secret := os.Getenv("WEBHOOK_SECRET"); secret != "" {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			slog.Error("invalid WEBHOOK_SECRET: expected whsec_ followed by base64", "error", err)
			os.Exit(1)
		}
		rc.secret = wh
	}
	if publicKey := os.Getenv("WEBHOOK_PUBLIC_KEY"); publicKey != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(publicKey, "whpk_"))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			slog.Error("invalid WEBHOOK_PUBLIC_KEY: expected whpk_ followed by 32 bytes in base64")
			os.Exit(1)
		}
		rc.publicKey = raw
	}
	if rc.secret == nil && rc.publicKey == nil {
		slog.Error("set WEBHOOK_SECRET (whsec_...) or WEBHOOK_PUBLIC_KEY (whpk_...), as configured for the endpoint in Caddy")
		os.Exit(1)
	}

	go func() {
		for ev := range rc.queue {
			process(ev)
		}
	}()

	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8000"
	}
	server := &http.Server{Addr: addr, Handler: rc, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	slog.Info("receiving webhooks", "addr", addr, "v1", rc.secret != nil, "v1a", rc.publicKey != nil)
	if err := server.ListenAndServe(); err != nil {
		slog.Error("serving failed", "error", err)
		os.Exit(1)
	}
}
