package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
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
	var header strings.Builder
	prefix := id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."
	for i, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(prefix))
		mac.Write(body)
		if i > 0 {
			header.WriteByte(' ')
		}
		header.WriteString("v1,")
		header.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return header.String()
}
