package cli

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

const (
	verifySecret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	verifyOtherSecret = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh"
	verifyID          = "01JE7XK9Q4M5T2V8B6N3C1D0FZ"
	verifyBody        = `{"type":"order.created","data":{"id":42}}`
)

// verifyTimestamp is a timestamp one minute before testNow.
var verifyTimestamp = testNow.Add(-time.Minute)

// librarySignature signs with the Standard Webhooks Go library.
func librarySignature(t *testing.T, secret, id string, timestamp time.Time, body string) string {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	signature, err := wh.Sign(id, timestamp, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return signature
}

// testKeyPair returns an ed25519 key pair from a seed of repeated b.
func testKeyPair(b byte) (ed25519.PrivateKey, string) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	return key, delivery.FormatPublicKey(key.Public().(ed25519.PublicKey))
}

// specSignature signs "<id>.<timestamp>.<body>" with ed25519 as the
// Standard Webhooks specification defines v1a, independently of delivery.
func specSignature(key ed25519.PrivateKey, id string, timestamp time.Time, body string) string {
	content := id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "." + body
	return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(key, []byte(content)))
}

// writeBody writes body to a file and returns its path.
func writeBody(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifyAccepts(t *testing.T) {
	signingKey, publicKey := testKeyPair(7)
	_, otherPublicKey := testKeyPair(8)
	hmacSignature := librarySignature(t, verifySecret, verifyID, verifyTimestamp, verifyBody)
	otherHMAC := librarySignature(t, verifyOtherSecret, verifyID, verifyTimestamp, verifyBody)
	edSignature := specSignature(signingKey, verifyID, verifyTimestamp, verifyBody)
	caddySignature := delivery.SignAsymmetric([]ed25519.PrivateKey{signingKey}, verifyID, verifyTimestamp, []byte(verifyBody))
	timestamp := strconv.FormatInt(verifyTimestamp.Unix(), 10)

	tests := []struct {
		name      string
		keys      []string
		signature string
		want      string
	}{
		{
			name:      "library v1",
			keys:      []string{"--secret", verifySecret},
			signature: hmacSignature,
			want:      "signature 1 of 1 (v1) matches --secret 1\n",
		},
		{
			name:      "rotated secrets",
			keys:      []string{"--secret", verifyOtherSecret, "--secret", verifySecret},
			signature: "v1,bm90IGEgbWF0Y2g= " + hmacSignature,
			want:      "signature 2 of 2 (v1) matches --secret 2\n",
		},
		{
			name:      "both secrets match",
			keys:      []string{"--secret", verifySecret, "--secret", verifyOtherSecret},
			signature: otherHMAC + " " + hmacSignature,
			want:      "signature 1 of 2 (v1) matches --secret 2\nsignature 2 of 2 (v1) matches --secret 1\n",
		},
		{
			name:      "spec ed25519",
			keys:      []string{"--public-key", publicKey},
			signature: edSignature,
			want:      "signature 1 of 1 (v1a) matches --public-key 1\n",
		},
		{
			name:      "caddy ed25519",
			keys:      []string{"--public-key", otherPublicKey, "--public-key", publicKey},
			signature: caddySignature,
			want:      "signature 1 of 1 (v1a) matches --public-key 2\n",
		},
		{
			name:      "mixed header and unknown version",
			keys:      []string{"--public-key", publicKey},
			signature: "v2,c29tZXRoaW5n  " + hmacSignature + " " + edSignature,
			want:      "signature 3 of 3 (v1a) matches --public-key 1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify", "--id", verifyID, "--timestamp", timestamp, "--signature", tt.signature}, tt.keys...)
			res := runCLI(t, "", append(args, writeBody(t, verifyBody))...)
			if res.err != nil {
				t.Fatalf("unexpected error: %v", res.err)
			}
			if res.stdout != tt.want {
				t.Errorf("stdout = %q, want %q", res.stdout, tt.want)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	signingKey, publicKey := testKeyPair(7)
	_, otherPublicKey := testKeyPair(9)
	hmacSignature := librarySignature(t, verifySecret, verifyID, verifyTimestamp, verifyBody)
	edSignature := specSignature(signingKey, verifyID, verifyTimestamp, verifyBody)
	timestamp := strconv.FormatInt(verifyTimestamp.Unix(), 10)
	tamperedBody := strings.Replace(verifyBody, "42", "43", 1)

	tests := []struct {
		name      string
		keys      []string
		timestamp string
		signature string
		body      string
		wantErr   []string
	}{
		{
			name: "tampered body", keys: []string{"--secret", verifySecret},
			timestamp: timestamp, signature: hmacSignature, body: tamperedBody,
			wantErr: []string{"no signature matches: checked 1 v1 signature against 1 secret and 0 v1a signatures against 0 public keys"},
		},
		{
			name: "tampered timestamp", keys: []string{"--secret", verifySecret},
			timestamp: strconv.FormatInt(verifyTimestamp.Unix()+1, 10), signature: hmacSignature, body: verifyBody,
			wantErr: []string{"no signature matches", "--id and --timestamp are the webhook-id and webhook-timestamp headers"},
		},
		{
			name: "wrong secret", keys: []string{"--secret", verifyOtherSecret},
			timestamp: timestamp, signature: hmacSignature, body: verifyBody,
			wantErr: []string{"no signature matches"},
		},
		{
			name: "tampered ed25519 body", keys: []string{"--public-key", publicKey},
			timestamp: timestamp, signature: edSignature, body: tamperedBody,
			wantErr: []string{"checked 0 v1 signatures against 0 secrets and 1 v1a signature against 1 public key"},
		},
		{
			name: "wrong public key", keys: []string{"--public-key", otherPublicKey},
			timestamp: timestamp, signature: edSignature, body: verifyBody,
			wantErr: []string{"no signature matches"},
		},
		{
			name: "v1 header with public key only", keys: []string{"--public-key", publicKey},
			timestamp: timestamp, signature: hmacSignature, body: verifyBody,
			wantErr: []string{"the header has v1 signatures, which need --secret"},
		},
		{
			name: "v1a header with secret only", keys: []string{"--secret", verifySecret},
			timestamp: timestamp, signature: edSignature, body: verifyBody,
			wantErr: []string{"the header has v1a signatures, which need --public-key"},
		},
		{
			name: "unknown versions only", keys: []string{"--secret", verifySecret},
			timestamp: timestamp, signature: "v2,abc v1b,def", body: verifyBody,
			wantErr: []string{"and skipped 2 signatures of other versions"},
		},
		{
			name: "body with added line break", keys: []string{"--secret", verifySecret},
			timestamp: timestamp, signature: hmacSignature, body: verifyBody + "\n",
			wantErr: []string{"FILE ends with a line break"},
		},
		{
			name: "malformed v1a signature", keys: []string{"--public-key", publicKey},
			timestamp: timestamp, signature: "v1a,not*base64", body: verifyBody,
			wantErr: []string{"no signature matches"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify", "--id", verifyID, "--timestamp", tt.timestamp, "--signature", tt.signature}, tt.keys...)
			res := runCLI(t, "", append(args, writeBody(t, tt.body))...)
			if res.err == nil {
				t.Fatalf("expected an error, got stdout %q", res.stdout)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(res.err.Error(), want) {
					t.Errorf("error %q lacks %q", res.err, want)
				}
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
		})
	}
}

func TestVerifyInputErrors(t *testing.T) {
	signingKey, publicKey := testKeyPair(7)
	signingKeyText := "whsk_" + base64.StdEncoding.EncodeToString(signingKey.Seed())
	shortPublicKey := "whpk_" + base64.StdEncoding.EncodeToString([]byte("too short"))
	shortSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))
	valid := []string{"--id", verifyID, "--timestamp", "1733340000", "--signature", "v1,abc"}

	tests := []struct {
		name    string
		args    []string
		wantErr string
		secret  string // must not appear in the output
	}{
		{name: "no key", args: valid, wantErr: "missing --secret or --public-key"},
		{
			name:    "missing id",
			args:    []string{"--timestamp", "1733340000", "--signature", "v1,abc", "--secret", verifySecret},
			wantErr: "missing --id: give the value of the webhook-id header",
		},
		{
			name:    "missing timestamp",
			args:    []string{"--id", verifyID, "--signature", "v1,abc", "--secret", verifySecret},
			wantErr: "missing --timestamp",
		},
		{
			name:    "blank signature",
			args:    []string{"--id", verifyID, "--timestamp", "1", "--signature", "  ", "--secret", verifySecret},
			wantErr: "missing --signature",
		},
		{
			name:    "timestamp not seconds",
			args:    []string{"--id", verifyID, "--timestamp", "2026-12-04T19:20:00Z", "--signature", "v1,abc", "--secret", verifySecret},
			wantErr: `invalid --timestamp "2026-12-04T19:20:00Z": give the webhook-timestamp header, a whole number of seconds`,
		},
		{
			name:    "negative tolerance",
			args:    append([]string{"--tolerance", "-5m", "--secret", verifySecret}, valid...),
			wantErr: "invalid --tolerance -5m0s",
		},
		{
			name:    "secret without prefix",
			args:    append([]string{"--secret", verifySecret, "--secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, valid...),
			wantErr: `invalid --secret 2 of 2: secret does not start with "whsec_"`,
			secret:  "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		},
		{
			name:    "short secret",
			args:    append([]string{"--secret", shortSecret}, valid...),
			wantErr: "invalid --secret 1 of 1: secret decodes to 5 bytes but must have 24 to 64",
			secret:  shortSecret,
		},
		{
			name:    "public key as secret",
			args:    append([]string{"--secret", publicKey}, valid...),
			wantErr: `invalid --secret 1 of 1: it starts with "whpk_", which marks an ed25519 public key: pass it with --public-key`,
		},
		{
			name:    "signing key as secret",
			args:    append([]string{"--secret", signingKeyText}, valid...),
			wantErr: `it starts with "whsk_", which marks the sender's private ed25519 signing key`,
			secret:  signingKeyText,
		},
		{
			name:    "signing key as public key",
			args:    append([]string{"--public-key", signingKeyText}, valid...),
			wantErr: `invalid --public-key 1 of 1: it starts with "whsk_", which marks the sender's private signing key`,
			secret:  signingKeyText,
		},
		{
			name:    "public key without prefix",
			args:    append([]string{"--public-key", strings.TrimPrefix(publicKey, "whpk_")}, valid...),
			wantErr: `invalid --public-key 1 of 1: it does not start with "whpk_"`,
		},
		{
			name:    "public key wrong length",
			args:    append([]string{"--public-key", shortPublicKey}, valid...),
			wantErr: "invalid --public-key 1 of 1: it decodes to 9 bytes, but an ed25519 public key has 32",
		},
		{
			name:    "public key bad base64",
			args:    append([]string{"--public-key", "whpk_!!!"}, valid...),
			wantErr: `invalid --public-key 1 of 1: decoding the base64 after "whpk_"`,
		},
		{
			name:    "missing file",
			args:    append([]string{"--secret", verifySecret}, valid...),
			wantErr: "missing FILE: usage:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify"}, tt.args...)
			if tt.name != "missing file" {
				args = append(args, writeBody(t, verifyBody))
			}
			res := runCLI(t, "", args...)
			if res.err == nil {
				t.Fatal("expected an error, got none")
			}
			if !strings.Contains(res.err.Error(), tt.wantErr) {
				t.Errorf("error %q lacks %q", res.err, tt.wantErr)
			}
			if tt.secret != "" && strings.Contains(res.stdout+res.stderr, tt.secret) {
				t.Errorf("output contains the secret: %q", res.stderr)
			}
		})
	}
}

func TestVerifyStdinAndMissingFile(t *testing.T) {
	signature := librarySignature(t, verifySecret, verifyID, verifyTimestamp, verifyBody)
	args := []string{"verify", "--secret", verifySecret, "--id", verifyID,
		"--timestamp", strconv.FormatInt(verifyTimestamp.Unix(), 10), "--signature", signature}

	res := runCLI(t, verifyBody, append(args, "-")...)
	if res.err != nil {
		t.Fatalf("stdin: unexpected error: %v", res.err)
	}
	if want := "signature 1 of 1 (v1) matches --secret 1\n"; res.stdout != want {
		t.Errorf("stdin: stdout = %q, want %q", res.stdout, want)
	}

	missing := filepath.Join(t.TempDir(), "missing.json")
	res = runCLI(t, "", append(args, missing)...)
	if res.err == nil || !strings.Contains(res.err.Error(), "reading the body: open "+missing) {
		t.Errorf("missing file: error = %v, want one that names %s", res.err, missing)
	}
}

func TestVerifyTolerance(t *testing.T) {
	tests := []struct {
		name      string
		timestamp time.Time
		wantOut   string
		wantErr   string
	}{
		{
			name:      "within",
			timestamp: testNow.Add(-time.Minute),
			wantOut:   "signature 1 of 1 (v1) matches --secret 1\ntimestamp is 1m0s before now, within --tolerance 5m0s\n",
		},
		{
			name:      "future within",
			timestamp: testNow.Add(90 * time.Second),
			wantOut:   "signature 1 of 1 (v1) matches --secret 1\ntimestamp is 1m30s after now, within --tolerance 5m0s\n",
		},
		{
			name:      "too old",
			timestamp: testNow.Add(-3 * time.Hour),
			wantOut:   "signature 1 of 1 (v1) matches --secret 1\n",
			wantErr:   "timestamp 1796403600 (2026-12-04 17:00:00 UTC) is 3h0m0s before now, beyond --tolerance 5m0s",
		},
		{
			name:      "too new",
			timestamp: testNow.Add(10 * time.Minute),
			wantOut:   "signature 1 of 1 (v1) matches --secret 1\n",
			wantErr:   "is 10m0s after now, beyond --tolerance 5m0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signature := librarySignature(t, verifySecret, verifyID, tt.timestamp, verifyBody)
			res := runCLI(t, verifyBody, "verify", "--secret", verifySecret, "--id", verifyID,
				"--timestamp", strconv.FormatInt(tt.timestamp.Unix(), 10), "--signature", signature, "--tolerance", "5m", "-")
			if res.stdout != tt.wantOut {
				t.Errorf("stdout = %q, want %q", res.stdout, tt.wantOut)
			}
			switch {
			case tt.wantErr == "" && res.err != nil:
				t.Errorf("unexpected error: %v", res.err)
			case tt.wantErr != "" && (res.err == nil || !strings.Contains(res.err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", res.err, tt.wantErr)
			}
		})
	}
}

func TestVerifyIgnoresAgeByDefault(t *testing.T) {
	old := testNow.Add(-30 * 24 * time.Hour)
	signature := librarySignature(t, verifySecret, verifyID, old, verifyBody)
	res := runCLI(t, verifyBody, "verify", "--secret", verifySecret, "--id", verifyID,
		"--timestamp", strconv.FormatInt(old.Unix(), 10), "--signature", signature, "-")
	if res.err != nil {
		t.Fatalf("unexpected error for a 30-day-old timestamp without --tolerance: %v", res.err)
	}
}

// TestVerifyHelpExample runs the example of the help text, so it stays true.
func TestVerifyHelpExample(t *testing.T) {
	const (
		body      = `{"type":"order.created"}`
		timestamp = "1733340000"
		signature = "v1,XgqGaKRc4cAdpe2zJZqD8jMT1VdOdFF/di97TJTaJRc="
		output    = "signature 1 of 1 (v1) matches --secret 1"
	)
	example := verifyCommand(time.Now).Example
	for _, part := range []string{body, verifySecret, verifyID, timestamp, signature, output} {
		if !strings.Contains(example, part) {
			t.Errorf("help example lacks %q", part)
		}
	}

	res := runCLI(t, body, "verify", "--secret", verifySecret, "--id", "01JE7XK9Q4M5T2V8B6N3C1D0FZ",
		"--timestamp", timestamp, "--signature", signature, "-")
	if res.err != nil {
		t.Fatalf("unexpected error: %v", res.err)
	}
	if res.stdout != output+"\n" {
		t.Errorf("stdout = %q, want %q", res.stdout, output+"\n")
	}
}
