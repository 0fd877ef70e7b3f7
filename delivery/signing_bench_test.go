package delivery_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

// Benchmark keys, made for these benchmarks only.
const (
	benchSecret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	benchSecretOther = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

// benchBodies are webhook bodies: a small envelope, and one with a 64 KiB
// captured response body, the most that the default capture limit keeps.
var benchBodies = []struct {
	name string
	body []byte
}{
	{"1 KiB body", []byte(`{"type":"order.created","data":{"note":"` + strings.Repeat("x", 1000) + `"}}`)},
	{"64 KiB body", []byte(`{"type":"order.created","data":{"note":"` + strings.Repeat("x", 64<<10) + `"}}`)},
}

func parseBenchSecrets(b *testing.B, secrets ...string) [][]byte {
	b.Helper()
	keys := make([][]byte, len(secrets))
	for i, secret := range secrets {
		key, err := delivery.ParseSecret(secret)
		if err != nil {
			b.Fatalf("parsing benchmark secret %d: %v", i+1, err)
		}
		keys[i] = key
	}
	return keys
}

func newBenchSigningKey(b *testing.B) ed25519.PrivateKey {
	b.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	key, err := delivery.ParseSigningKey(delivery.SigningKeyPrefix + base64.StdEncoding.EncodeToString(seed))
	if err != nil {
		b.Fatalf("parsing benchmark signing key: %v", err)
	}
	return key
}

// BenchmarkSign measures the v1 signatures of one attempt with the Signer
// that an endpoint's workers share, as deliveries make them.
func BenchmarkSign(b *testing.B) {
	timestamp := time.Unix(1796419200, 0)
	keySets := []struct {
		name string
		keys [][]byte
	}{
		{"one secret", parseBenchSecrets(b, benchSecret)},
		{"two secrets while rotating", parseBenchSecrets(b, benchSecret, benchSecretOther)},
	}
	for _, keySet := range keySets {
		for _, tc := range benchBodies {
			b.Run(keySet.name+"/"+tc.name, func(b *testing.B) {
				signer := delivery.NewSigner(keySet.keys)
				b.SetBytes(int64(len(tc.body)))
				b.ReportAllocs()
				for b.Loop() {
					if header := signer.Sign("01JEX3Q5V6M2B8K7T9W4R1N0ZC", timestamp, tc.body); header == "" {
						b.Fatal("Sign returned no signature")
					}
				}
			})
		}
	}
}

func BenchmarkSignAsymmetric(b *testing.B) {
	timestamp := time.Unix(1796419200, 0)
	keys := []ed25519.PrivateKey{newBenchSigningKey(b)}
	for _, tc := range benchBodies {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if header := delivery.SignAsymmetric(keys, "01JEX3Q5V6M2B8K7T9W4R1N0ZC", timestamp, tc.body); header == "" {
					b.Fatal("SignAsymmetric returned no signature")
				}
			}
		})
	}
}

func BenchmarkSignatureHeaderBoth(b *testing.B) {
	timestamp := time.Unix(1796419200, 0)
	secrets := parseBenchSecrets(b, benchSecret)
	signingKeys := []ed25519.PrivateKey{newBenchSigningKey(b)}
	body := benchBodies[0].body
	b.SetBytes(int64(len(body)))

	b.ReportAllocs()
	for b.Loop() {
		header := delivery.SignatureHeader(secrets, signingKeys, "01JEX3Q5V6M2B8K7T9W4R1N0ZC", timestamp, body)
		if !strings.Contains(header, "v1,") || !strings.Contains(header, "v1a,") {
			b.Fatalf("SignatureHeader = %q, want a v1 and a v1a signature", header)
		}
	}
}
