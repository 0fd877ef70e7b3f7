package delivery

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// rawState returns the stored value of an endpoint's state.
func rawState(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), defaultLayout.StateBucket())
	if err != nil {
		t.Fatalf("opening state bucket: %v", err)
	}
	entry, err := kv.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("reading state of %s: %v", name, err)
	}
	return string(entry.Value())
}

func TestGoneStoresURLHash(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, respondWith(http.StatusGone))
	url := rcv.URL + "/hook?token=secret-abc"
	startWorkers(t, js, Options{}, newEndpoint(t, "gone", url, nil))

	publishEvent(t, js, "evt1", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		state, err := getState(t, js, "gone")
		if err != nil {
			return err
		}
		if state.State != StateDisabled {
			return fmt.Errorf("state = %q, want disabled", state.State)
		}
		return nil
	})
	state, _ := getState(t, js, "gone")
	if state.URLSHA256 != sha256Hex(url) {
		t.Errorf("url_sha256 = %q, want the SHA-256 hex of the endpoint url", state.URLSHA256)
	}
	if raw := rawState(t, js, "gone"); strings.Contains(raw, "secret-abc") || strings.Contains(raw, rcv.URL) {
		t.Errorf("stored state %s contains the endpoint url", raw)
	}
}

func TestURLChangeEnablesGoneEndpoint(t *testing.T) {
	js := startJetStream(t)
	oldURLReceiver := newReceiver(t, respondWith(http.StatusGone))
	first := startWorkers(t, js, Options{}, newEndpoint(t, "moved", oldURLReceiver.URL, nil))

	publishEvent(t, js, "evt-kept", "order.created", []byte(`{}`))
	waitUntil(t, 5*time.Second, func() error {
		state, err := getState(t, js, "moved")
		if err != nil {
			return err
		}
		if state.State != StateDisabled {
			return fmt.Errorf("state = %q, want disabled", state.State)
		}
		return nil
	})
	first.Stop(5 * time.Second)

	// The receiver moved, and the config now names its new URL.
	newURLReceiver := newReceiver(t, nil)
	core, logs := observer.New(zapcore.InfoLevel)
	startWorkers(t, js, Options{Logger: zap.New(core)}, newEndpoint(t, "moved", newURLReceiver.URL, nil))

	state, err := getState(t, js, "moved")
	if err != nil {
		t.Fatal(err)
	}
	if state.State != StateEnabled || state.Reason != urlChangedReason {
		t.Errorf("state after Start = %+v, want enabled because the url changed", state)
	}
	entries := logs.FilterMessage("endpoint url changed since it was disabled; enabling it").AllUntimed()
	if len(entries) != 1 || entries[0].ContextMap()["destination"] != "moved" {
		t.Errorf("log lines about the url change = %v, want one with destination moved", entries)
	}
	waitUntil(t, 5*time.Second, func() error {
		if n := len(newURLReceiver.requestsFor("evt-kept")); n != 1 {
			return fmt.Errorf("new url got the kept event %d times, want 1", n)
		}
		return nil
	})
}

func TestDisabledEndpointStaysDisabled(t *testing.T) {
	const url = "https://hooks.example.com/orders"
	tests := []struct {
		name  string
		state string
	}{
		{name: "same url", state: fmt.Sprintf(`{"state":"disabled","url_sha256":%q}`, sha256Hex(url))},
		{name: "no url hash", state: `{"state":"disabled","reason":"disabled by an operator"}`},
		{name: "paused", state: fmt.Sprintf(`{"state":"paused","url_sha256":%q}`, sha256Hex("https://old.example.com/"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startJetStream(t)
			kv, err := js.KeyValue(t.Context(), defaultLayout.StateBucket())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(t.Context(), "orders", []byte(tt.state)); err != nil {
				t.Fatal(err)
			}
			startWorkers(t, js, Options{}, newEndpoint(t, "orders", url, nil))

			if raw := rawState(t, js, "orders"); raw != tt.state {
				t.Errorf("state after Start = %s, want it unchanged: %s", raw, tt.state)
			}
		})
	}
}
