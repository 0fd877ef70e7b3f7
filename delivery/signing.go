package delivery

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SecretPrefix starts every Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// Secret lengths in bytes after base64 decoding: the Standard Webhooks
// specification 1.0.0 requires 192 to 512 bits for HMAC-SHA256 keys.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// secretHelp is the hint in secret errors on how to make a valid secret.
const secretHelp = "make one with: echo whsec_$(openssl rand -base64 32)"

// ParseSecret decodes a Standard Webhooks secret, `whsec_` followed by 24 to
// 64 bytes in standard base64, into the HMAC key. Errors never contain the
// secret.
func ParseSecret(secret string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("secret does not start with %q; %s", SecretPrefix, secretHelp)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// The base64 error gives only the byte offset, never the input.
		return nil, fmt.Errorf("decoding secret after %q: %w; %s", SecretPrefix, err, secretHelp)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("secret decodes to %d bytes but must have %d to %d; %s", len(key), minSecretBytes, maxSecretBytes, secretHelp)
	}
	return key, nil
}

// Sign returns the value of the webhook-signature header for one attempt:
// one "v1,<base64 HMAC-SHA256>" per key, separated by spaces. Each HMAC
// covers "<id>.<unix seconds of timestamp>.<body>" as the Standard Webhooks
// specification defines. Sign returns "" when keys is empty.
func Sign(keys [][]byte, id string, timestamp time.Time, body []byte) string {
	return NewSigner(keys).Sign(id, timestamp, body)
}

// Signer computes the v1 signatures of one set of secrets, as Sign does.
// It keeps the HMAC state of each secret in a pool, so that an attempt
// reuses the keyed state instead of deriving it from the secret again. It
// is safe for concurrent use.
type Signer struct {
	macs []sync.Pool
}

// NewSigner returns a Signer for keys, the decoded secrets.
func NewSigner(keys [][]byte) *Signer {
	s := &Signer{macs: make([]sync.Pool, len(keys))}
	for i, key := range keys {
		s.macs[i].New = func() any { return hmac.New(sha256.New, key) }
	}
	return s
}

// Sign returns the v1 signatures of one attempt, separated by spaces, or
// "" when the Signer is nil or has no secrets.
func (s *Signer) Sign(id string, timestamp time.Time, body []byte) string {
	if s == nil || len(s.macs) == 0 {
		return ""
	}
	prefix := make([]byte, 0, len(id)+22)
	prefix = append(prefix, id...)
	prefix = append(prefix, '.')
	prefix = strconv.AppendInt(prefix, timestamp.Unix(), 10)
	prefix = append(prefix, '.')

	// "v1," and the base64 of a SHA-256 sum take 47 bytes, and a space
	// separates signatures.
	header := make([]byte, 0, len(s.macs)*48)
	for i := range s.macs {
		mac := s.macs[i].Get().(hash.Hash)
		mac.Reset()
		mac.Write(prefix)
		mac.Write(body)
		var sum [sha256.Size]byte
		if i > 0 {
			header = append(header, ' ')
		}
		header = append(header, "v1,"...)
		header = base64.StdEncoding.AppendEncode(header, mac.Sum(sum[:0]))
		s.macs[i].Put(mac)
	}
	return string(header)
}

// Prefixes of the asymmetric Standard Webhooks keys: a signing key is the
// ed25519 private key of the sender, a public key is what receivers verify
// with.
const (
	SigningKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
)

// signingKeyHelp is the hint in signing key errors on how to make a valid
// key. The DER form of an ed25519 private key ends with its 32-byte seed.
const signingKeyHelp = "make one with: echo whsk_$(openssl genpkey -algorithm ed25519 -outform DER | tail -c 32 | base64)"

// ParseSigningKey decodes an asymmetric Standard Webhooks signing key into
// an ed25519 private key. The Standard Webhooks specification 1.0.0, section
// "Signature scheme", serializes the secret key of a standard ed25519 key
// pair as `whsk_` followed by standard base64, without fixing the byte
// layout. So ParseSigningKey accepts both standard layouts: the 32-byte seed
// of RFC 8032, and the 64-byte seed followed by its public key that
// libsodium and Go's crypto/ed25519 use, whose public half must then match
// the seed. Errors never contain the key.
func ParseSigningKey(signingKey string) (ed25519.PrivateKey, error) {
	encoded, ok := strings.CutPrefix(signingKey, SigningKeyPrefix)
	if !ok {
		return nil, signingKeyPrefixError(signingKey)
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// The base64 error gives only the byte offset, never the input.
		return nil, fmt.Errorf("decoding signing key after %q: %w; %s", SigningKeyPrefix, err, signingKeyHelp)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		key := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if subtle.ConstantTimeCompare(key[ed25519.SeedSize:], raw[ed25519.SeedSize:]) != 1 {
			return nil, fmt.Errorf("signing key has %d bytes, but its last %d bytes are not the public key of its first %d: use the %d-byte seed alone; %s",
				len(raw), ed25519.PublicKeySize, ed25519.SeedSize, ed25519.SeedSize, signingKeyHelp)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("signing key decodes to %d bytes but must have %d (ed25519 seed) or %d (seed followed by public key); %s",
			len(raw), ed25519.SeedSize, ed25519.PrivateKeySize, signingKeyHelp)
	}
}

// signingKeyPrefixError explains a signing key without the whsk_ prefix,
// naming the kind of key when it has another Standard Webhooks prefix.
func signingKeyPrefixError(signingKey string) error {
	switch {
	case strings.HasPrefix(signingKey, SecretPrefix):
		return fmt.Errorf("signing key starts with %q, which marks an HMAC secret: move it to secret, or use an ed25519 key starting with %q; %s",
			SecretPrefix, SigningKeyPrefix, signingKeyHelp)
	case strings.HasPrefix(signingKey, PublicKeyPrefix):
		return fmt.Errorf("signing key starts with %q, which marks a public key that only receivers need: use the private key starting with %q",
			PublicKeyPrefix, SigningKeyPrefix)
	default:
		return fmt.Errorf("signing key does not start with %q; %s", SigningKeyPrefix, signingKeyHelp)
	}
}

// FormatPublicKey serializes an ed25519 public key as a Standard Webhooks
// public key: `whpk_` followed by the 32 bytes in standard base64.
func FormatPublicKey(publicKey ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(publicKey)
}

// DerivePublicKey returns the `whpk_` public key that receivers need to
// verify the signatures made with a `whsk_` signing key. Errors are those of
// ParseSigningKey and never contain the key.
func DerivePublicKey(signingKey string) (string, error) {
	key, err := ParseSigningKey(signingKey)
	if err != nil {
		return "", err
	}
	return FormatPublicKey(key.Public().(ed25519.PublicKey)), nil
}

// SignAsymmetric returns one "v1a,<base64 ed25519 signature>" per key,
// separated by spaces. Each signature covers the same content as the v1
// signatures of Sign. SignAsymmetric returns "" when keys is empty.
func SignAsymmetric(keys []ed25519.PrivateKey, id string, timestamp time.Time, body []byte) string {
	if len(keys) == 0 {
		return ""
	}
	content := signedContent(id, timestamp, body)
	var header strings.Builder
	for i, key := range keys {
		if i > 0 {
			header.WriteByte(' ')
		}
		header.WriteString("v1a,")
		header.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(key, content)))
	}
	return header.String()
}

// SignatureHeader returns the value of the webhook-signature header: every
// v1 signature of Sign followed by every v1a signature of SignAsymmetric,
// separated by spaces, or "" when there are no keys of either kind.
func SignatureHeader(secrets [][]byte, signingKeys []ed25519.PrivateKey, id string, timestamp time.Time, body []byte) string {
	return joinSignatures(Sign(secrets, id, timestamp, body), SignAsymmetric(signingKeys, id, timestamp, body))
}

// joinSignatures joins the v1 and v1a parts of a webhook-signature header.
func joinSignatures(symmetric, asymmetric string) string {
	if symmetric == "" || asymmetric == "" {
		return symmetric + asymmetric
	}
	return symmetric + " " + asymmetric
}

// signedContent builds "<id>.<unix seconds of timestamp>.<body>", the
// content that every Standard Webhooks signature covers.
func signedContent(id string, timestamp time.Time, body []byte) []byte {
	prefix := id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."
	content := make([]byte, 0, len(prefix)+len(body))
	content = append(content, prefix...)
	return append(content, body...)
}
