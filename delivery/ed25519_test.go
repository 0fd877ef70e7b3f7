package delivery

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// testKeyPair is an ed25519 key pair serialized by the test itself, so the
// checks below do not depend on the code under test.
type testKeyPair struct {
	seed       []byte
	signingKey string // whsk_ followed by the base64 seed
	publicKey  string // whpk_ followed by the base64 public key
}

// newTestKeyPair derives a key pair from a seed whose 32 bytes all equal b.
func newTestKeyPair(b byte) testKeyPair {
	seed := bytes.Repeat([]byte{b}, ed25519.SeedSize)
	public := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return testKeyPair{
		seed:       seed,
		signingKey: "whsk_" + base64.StdEncoding.EncodeToString(seed),
		publicKey:  "whpk_" + base64.StdEncoding.EncodeToString(public),
	}
}

// verifyV1a checks a webhook-signature header the way a receiver written
// from the Standard Webhooks specification does: it decodes the whpk_ public
// key, and succeeds when one v1a signature in the space-separated list is a
// valid ed25519 signature of "<webhook-id>.<webhook-timestamp>.<body>".
func verifyV1a(publicKey string, req recordedRequest) error {
	encoded, ok := strings.CutPrefix(publicKey, "whpk_")
	if !ok {
		return errors.New("public key does not start with whpk_")
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("public key is not 32 bytes in base64 (err %v)", err)
	}
	timestamp, err := strconv.ParseInt(req.header.Get("Webhook-Timestamp"), 10, 64)
	if err != nil {
		return fmt.Errorf("parsing webhook-timestamp: %w", err)
	}
	content := fmt.Sprintf("%s.%d.%s", req.header.Get("Webhook-Id"), timestamp, req.body)
	for _, entry := range strings.Split(req.header.Get("Webhook-Signature"), " ") {
		encodedSignature, ok := strings.CutPrefix(entry, "v1a,")
		if !ok {
			continue
		}
		signature, err := base64.StdEncoding.DecodeString(encodedSignature)
		if err != nil {
			continue
		}
		if ed25519.Verify(ed25519.PublicKey(key), []byte(content), signature) {
			return nil
		}
	}
	return fmt.Errorf("no v1a signature in %q verifies with %s", req.header.Get("Webhook-Signature"), publicKey)
}

// deliverOne starts the workers for e, publishes one event and returns the
// request that the receiver got.
func deliverOne(t *testing.T, e *Endpoint, rcv *receiver, opts Options, id string, payload []byte) recordedRequest {
	t.Helper()
	js := startJetStream(t)
	startWorkers(t, js, opts, e)
	publishEvent(t, js, id, "order.created", payload)
	waitUntil(t, 5*time.Second, func() error {
		if n := len(rcv.received()); n != 1 {
			return fmt.Errorf("receiver got %d requests, want 1", n)
		}
		return nil
	})
	return rcv.received()[0]
}

func TestEd25519DeliveryVerifies(t *testing.T) {
	pair := newTestKeyPair('k')
	rcv := newReceiver(t, nil)
	e := newEndpoint(t, "signed", rcv.URL, func(e *Endpoint) {
		e.SigningKeys = []string{pair.signingKey}
	})
	core, logs := observer.New(zapcore.InfoLevel)
	payload := []byte(`{"type":"order.created","data":{"name":"Zoë 日本","id":42}}`)
	req := deliverOne(t, e, rcv, Options{Logger: zap.New(core)}, "01HZED25519000000000000001", payload)

	signature := req.header.Get("Webhook-Signature")
	if !strings.HasPrefix(signature, "v1a,") || strings.Contains(signature, " ") {
		t.Errorf("webhook-signature = %q, want exactly one v1a signature", signature)
	}
	if err := verifyV1a(pair.publicKey, req); err != nil {
		t.Error(err)
	}
	if err := verifyV1a(newTestKeyPair('o').publicKey, req); err == nil {
		t.Error("signature verifies with an unrelated public key")
	}

	tampered := req
	tampered.body = append(bytes.Clone(req.body[:len(req.body)-1]), ' ', '}')
	if err := verifyV1a(pair.publicKey, tampered); err == nil {
		t.Error("signature verifies for a changed body")
	}

	announced := logs.FilterMessage("signing webhooks with ed25519").All()
	if len(announced) != 1 {
		t.Fatalf("got %d public key log lines, want 1", len(announced))
	}
	fields := announced[0].ContextMap()
	if fields["public_key"] != pair.publicKey || fields["destination"] != "signed" {
		t.Errorf("public key log fields = %v, want public_key %s and destination signed", fields, pair.publicKey)
	}
	if n := logs.FilterMessageSnippet("unsigned").Len(); n != 0 {
		t.Errorf("got %d unsigned warnings for an endpoint with a signing key, want 0", n)
	}
}

func TestTwoSigningKeysAndSecret(t *testing.T) {
	oldPair, newPair := newTestKeyPair('1'), newTestKeyPair('2')
	secret := testSecret('h')
	t.Setenv("ED25519_TEST_SIGNING_KEY", newPair.signingKey)
	rcv := newReceiver(t, nil)
	e := newEndpoint(t, "rotating", rcv.URL, func(e *Endpoint) {
		e.Secrets = []string{secret}
		e.SigningKeys = []string{oldPair.signingKey, "{env.ED25519_TEST_SIGNING_KEY}"}
	})
	req := deliverOne(t, e, rcv, Options{}, "01HZED25519000000000000002", []byte(`{"id":7}`))

	entries := strings.Split(req.header.Get("Webhook-Signature"), " ")
	if len(entries) != 3 {
		t.Fatalf("webhook-signature has %d entries, want 3: %q", len(entries), req.header.Get("Webhook-Signature"))
	}
	wantVersions := []string{"v1,", "v1a,", "v1a,"}
	for i, want := range wantVersions {
		if !strings.HasPrefix(entries[i], want) {
			t.Errorf("signature %d = %q, want prefix %q", i+1, entries[i], want)
		}
	}

	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("creating verifier: %v", err)
	}
	if err := wh.Verify(req.body, req.header); err != nil {
		t.Errorf("v1 signature does not verify with the Standard Webhooks library: %v", err)
	}
	// Each v1a entry verifies on its own with its own key, in key order,
	// and not with the other key.
	pairs := []testKeyPair{oldPair, newPair}
	for i, pair := range pairs {
		alone := recordedRequest{header: headerWith(req, entries[1+i]), body: req.body}
		if err := verifyV1a(pair.publicKey, alone); err != nil {
			t.Errorf("v1a signature %d: %v", i+1, err)
		}
		other := pairs[1-i]
		if verifyV1a(other.publicKey, alone) == nil {
			t.Errorf("v1a signature %d also verifies with the other key", i+1)
		}
	}
}

// headerWith returns a copy of req's headers whose webhook-signature is
// only signature.
func headerWith(req recordedRequest, signature string) http.Header {
	header := req.header.Clone()
	header.Set("Webhook-Signature", signature)
	return header
}

func TestParseSigningKey(t *testing.T) {
	pair := newTestKeyPair('s')
	full := ed25519.NewKeyFromSeed(pair.seed)
	mismatched := append(bytes.Clone(pair.seed), newTestKeyPair('m').seed...)
	encode := func(b []byte) string { return "whsk_" + base64.StdEncoding.EncodeToString(b) }

	tests := []struct {
		name string
		key  string
		want string // substring of the error, "" for success
	}{
		{name: "32-byte seed", key: pair.signingKey},
		{name: "64-byte seed and public key", key: encode(full)},
		{name: "64 bytes with foreign public half", key: encode(mismatched), want: "not the public key of its first 32"},
		{name: "hmac secret", key: testSecret('s'), want: `starts with "whsec_", which marks an HMAC secret`},
		{name: "public key", key: pair.publicKey, want: `starts with "whpk_", which marks a public key`},
		{name: "missing prefix", key: base64.StdEncoding.EncodeToString(pair.seed), want: `does not start with "whsk_"`},
		{name: "invalid base64", key: "whsk_" + strings.Repeat("*", 44), want: "decoding signing key"},
		{name: "31 bytes", key: encode(pair.seed[:31]), want: "decodes to 31 bytes but must have 32"},
		{name: "33 bytes", key: encode(append(bytes.Clone(pair.seed), 0)), want: "decodes to 33 bytes"},
		{name: "empty", key: "whsk_", want: "decodes to 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseSigningKey(tt.key)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseSigningKey() = %v", err)
				}
				if !bytes.Equal(key.Seed(), pair.seed) {
					t.Errorf("seed = %x, want %x", key.Seed(), pair.seed)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseSigningKey() = %v, want an error containing %q", err, tt.want)
			}
			encoded := tt.key[strings.IndexByte(tt.key, '_')+1:]
			if encoded != "" && strings.Contains(err.Error(), encoded) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
}

func TestDerivePublicKey(t *testing.T) {
	pair := newTestKeyPair('d')
	got, err := DerivePublicKey(pair.signingKey)
	if err != nil {
		t.Fatal(err)
	}
	if got != pair.publicKey {
		t.Errorf("DerivePublicKey() = %s, want %s", got, pair.publicKey)
	}
	if _, err := DerivePublicKey(testSecret('d')); err == nil {
		t.Error("DerivePublicKey accepted a whsec_ secret")
	}
}

func TestSignatureHeaderWithoutKeys(t *testing.T) {
	if got := SignatureHeader(nil, nil, "id", time.Unix(1, 0), []byte("{}")); got != "" {
		t.Errorf("SignatureHeader() = %q, want empty", got)
	}
}

func TestEndpointSigningKeyErrors(t *testing.T) {
	pair := newTestKeyPair('e')
	t.Setenv("ED25519_TEST_HMAC_SECRET", testSecret('e'))
	encodedSeed := pair.signingKey[len("whsk_"):]

	tests := []struct {
		name    string
		key     string
		stage   string // "validate" or "provision"
		want    string
		leakage string
	}{
		{name: "malformed", key: "whsk_not base64!", stage: "validate", want: `endpoint "orders": signing key 2: decoding signing key`, leakage: "not base64"},
		{name: "hmac secret", key: testSecret('e'), stage: "validate", want: `endpoint "orders": signing key 2: signing key starts with "whsec_"`, leakage: testSecret('e')[len("whsec_"):]},
		{name: "wrong length", key: "whsk_" + base64.StdEncoding.EncodeToString(pair.seed[:16]), stage: "validate", want: `endpoint "orders": signing key 2: signing key decodes to 16 bytes`, leakage: base64.StdEncoding.EncodeToString(pair.seed[:16])},
		{name: "unset variable", key: "{env.ED25519_TEST_UNSET}", stage: "provision", want: `endpoint "orders": resolving signing key 2: evaluated placeholder {env.ED25519_TEST_UNSET} is empty`},
		{name: "hmac secret from variable", key: "{env.ED25519_TEST_HMAC_SECRET}", stage: "provision", want: `endpoint "orders": signing key 2: signing key starts with "whsec_"`, leakage: testSecret('e')[len("whsec_"):]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEndpoint()
			e.SigningKeys = []string{pair.signingKey, tt.key}
			var err error
			if tt.stage == "validate" {
				err = e.Validate()
			} else {
				if verr := e.Validate(); verr != nil {
					t.Fatalf("Validate() = %v, want nil because placeholders are checked at provisioning", verr)
				}
				err = e.Provision(nil)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%s error = %v, want one containing %q", tt.stage, err, tt.want)
			}
			for _, secret := range []string{tt.leakage, encodedSeed} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a key", err)
				}
			}
		})
	}
}

// TestSigningKeyStaysOutOfLogs delivers to a failing receiver, so retries,
// failures and the dead letter are logged, and checks that no log line
// contains the signing key, its base64 or its raw seed.
func TestSigningKeyStaysOutOfLogs(t *testing.T) {
	pair := newTestKeyPair('L')
	t.Setenv("ED25519_TEST_LOG_KEY", pair.signingKey)
	full := ed25519.NewKeyFromSeed(pair.seed)
	forbidden := []string{
		pair.signingKey,
		pair.signingKey[len("whsk_"):],
		base64.StdEncoding.EncodeToString(full),
		string(pair.seed),
	}

	js := startJetStream(t)
	rcv := newReceiver(t, respondWith(http.StatusInternalServerError))
	e := newEndpoint(t, "leaky", rcv.URL, func(e *Endpoint) {
		e.SigningKeys = []string{"{env.ED25519_TEST_LOG_KEY}"}
		e.Retry = []caddy.Duration{ms(50)}
	})
	core, logs := observer.New(zapcore.DebugLevel)
	startWorkers(t, js, Options{Logger: zap.New(core)}, e)
	publishEvent(t, js, "01HZED25519000000000000003", "order.created", []byte(`{"id":3}`))
	waitUntil(t, 10*time.Second, func() error {
		if dead := deadLetters(t, js, "leaky"); len(dead) != 1 {
			return fmt.Errorf("endpoint has %d dead letters, want 1", len(dead))
		}
		return nil
	})

	if logs.Len() == 0 {
		t.Fatal("no log lines were written")
	}
	if logs.FilterMessage("signing webhooks with ed25519").Len() != 1 {
		t.Error("the public key was not logged")
	}
	for _, entry := range logs.All() {
		line := fmt.Sprintf("%s %v", entry.Message, entry.ContextMap())
		for _, secret := range forbidden {
			if strings.Contains(line, secret) {
				t.Errorf("log line %q contains the signing key", entry.Message)
			}
		}
	}
}
