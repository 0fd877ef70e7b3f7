package delivery

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestSignMatchesStandardWebhooks(t *testing.T) {
	secrets := []string{testSecret('a'), testSecret('b')}
	keys := make([][]byte, len(secrets))
	for i, secret := range secrets {
		key, err := ParseSecret(secret)
		if err != nil {
			t.Fatalf("parsing secret %d: %v", i+1, err)
		}
		keys[i] = key
	}
	timestamp := time.Unix(1764876000, 0)
	body := []byte(`{"name":"Zoë","note":"\u00e9 \"quoted\""}`)

	got := strings.Split(Sign(keys, "evt_123", timestamp, body), " ")
	if len(got) != len(secrets) {
		t.Fatalf("Sign returned %d signatures, want %d", len(got), len(secrets))
	}
	for i, secret := range secrets {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		want, err := wh.Sign("evt_123", timestamp, body)
		if err != nil {
			t.Fatal(err)
		}
		if got[i] != want {
			t.Errorf("signature %d = %q, want %q", i+1, got[i], want)
		}
	}
}

func TestSignWithoutKeys(t *testing.T) {
	if got := Sign(nil, "evt", time.Now(), []byte(`{}`)); got != "" {
		t.Errorf("Sign without keys = %q, want empty", got)
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		wantLen int
		wantErr string
	}{
		{name: "32 bytes", secret: testSecret('a'), wantLen: 32},
		{name: "24 bytes", secret: "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wantLen: 24},
		{name: "no prefix", secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wantErr: `does not start with "whsec_"`},
		{name: "not base64", secret: "whsec_%%%%", wantErr: "illegal base64 data at input byte 0"},
		{name: "too long", secret: "whsec_" + strings.Repeat("AAAA", 22), wantErr: "66 bytes"},
		{name: "empty", secret: "whsec_", wantErr: "0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseSecret(tt.secret)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSecret() = %v", err)
				}
				if len(key) != tt.wantLen {
					t.Errorf("key has %d bytes, want %d", len(key), tt.wantLen)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseSecret() = %v, want an error containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "openssl rand") {
				t.Errorf("error %q does not say how to make a secret", err)
			}
		})
	}
}

// A Signer reuses HMAC state from its pools, which must give the same
// signatures as a fresh HMAC for every secret and attempt, also when
// attempts run at once.
func TestSignerMatchesFreshHMAC(t *testing.T) {
	keys := [][]byte{
		bytes.Repeat([]byte{1}, 24),
		bytes.Repeat([]byte{2}, 32),
		bytes.Repeat([]byte{3}, 64),
	}
	signer := NewSigner(keys)
	timestamp := time.Unix(1733366400, 0)

	var wg sync.WaitGroup
	for worker := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("msg_%d_%d", worker, i)
				body := []byte(fmt.Sprintf(`{"n":%d}`, i))
				var want []string
				for _, key := range keys {
					mac := hmac.New(sha256.New, key)
					fmt.Fprintf(mac, "%s.%d.", id, timestamp.Unix())
					mac.Write(body)
					want = append(want, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
				}
				if got := signer.Sign(id, timestamp, body); got != strings.Join(want, " ") {
					t.Errorf("Sign(%s) = %q, want %q", id, got, strings.Join(want, " "))
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSignerWithoutSecrets(t *testing.T) {
	if got := NewSigner(nil).Sign("id", time.Unix(1, 0), []byte("{}")); got != "" {
		t.Errorf("Sign() = %q, want empty", got)
	}
}
