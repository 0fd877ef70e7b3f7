package cli

import (
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
)

func verifyCommand(now func() time.Time) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify --id ID --timestamp SECONDS --signature SIGNATURES (--secret whsec_... | --public-key whpk_...)... FILE",
		Short: "Checks a Standard Webhooks signature",
		Long: `
Checks the webhook-signature header of a received webhook, for developers of
receivers. It needs no running Caddy.

FILE contains the request body exactly as received (- reads standard input).
--id, --timestamp and --signature take the values of the webhook-id,
webhook-timestamp and webhook-signature headers. --secret takes an HMAC secret
(whsec_...) and checks the v1 signatures, --public-key takes an ed25519 public
key (whpk_...) and checks the v1a signatures. Both may repeat, as during a key
rotation.

verify prints each signature that matches and which key it matches, or fails
with the reason. By default it does not check the timestamp's age, so a saved
webhook still verifies; receivers must check it to reject replays. --tolerance
checks it as a receiver would: 5m rejects timestamps more than five minutes
before or after now.
`,
		Example: `  $ printf '%s' '{"type":"order.created"}' | caddy webhooks verify \
      --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \
      --id 01JE7XK9Q4M5T2V8B6N3C1D0FZ --timestamp 1733340000 \
      --signature 'v1,XgqGaKRc4cAdpe2zJZqD8jMT1VdOdFF/di97TJTaJRc=' -
  signature 1 of 1 (v1) matches --secret 1`,
		Args: argNames([]string{"FILE"}),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, args[0], now)
		},
	}
	flags := cmd.Flags()
	flags.StringArray("secret", nil, "HMAC secret (whsec_...) that v1 signatures are checked against; may repeat")
	flags.StringArray("public-key", nil, "ed25519 public key (whpk_...) that v1a signatures are checked against; may repeat")
	flags.String("id", "", "Value of the webhook-id header")
	flags.String("timestamp", "", "Value of the webhook-timestamp header, in Unix seconds")
	flags.String("signature", "", "Value of the webhook-signature header: space-separated v1,... and v1a,... signatures")
	flags.Duration("tolerance", 0, "Maximum difference between the timestamp and now, such as 5m (default: not checked)")
	return cmd
}

// verifyInput contains the parsed flags and body of the verify subcommand.
type verifyInput struct {
	secrets    [][]byte
	publicKeys []ed25519.PublicKey
	id         string
	timestamp  int64
	signatures []string
	body       []byte
	tolerance  time.Duration
}

func runVerify(cmd *cobra.Command, file string, now func() time.Time) error {
	input, err := parseVerifyFlags(cmd)
	if err != nil {
		return err
	}
	if input.body, err = readBody(cmd, file); err != nil {
		return err
	}

	matches := matchSignatures(input)
	if len(matches) == 0 {
		return noMatchError(input)
	}
	out := cmd.OutOrStdout()
	for _, m := range matches {
		if _, err := fmt.Fprintln(out, m); err != nil {
			return err
		}
	}
	return checkTolerance(out, input, now())
}

// parseVerifyFlags reads and validates the flags of the verify subcommand.
// Errors never contain a secret.
func parseVerifyFlags(cmd *cobra.Command) (verifyInput, error) {
	flags := cmd.Flags()
	secrets, _ := flags.GetStringArray("secret")
	publicKeys, _ := flags.GetStringArray("public-key")
	id, _ := flags.GetString("id")
	timestamp, _ := flags.GetString("timestamp")
	signature, _ := flags.GetString("signature")
	tolerance, _ := flags.GetDuration("tolerance")

	var input verifyInput
	switch {
	case len(secrets) == 0 && len(publicKeys) == 0:
		return input, fmt.Errorf("missing --secret or --public-key: give the endpoint's whsec_ secret for v1 signatures or its whpk_ public key for v1a signatures")
	case id == "":
		return input, fmt.Errorf("missing --id: give the value of the webhook-id header")
	case timestamp == "":
		return input, fmt.Errorf("missing --timestamp: give the value of the webhook-timestamp header")
	case strings.TrimSpace(signature) == "":
		return input, fmt.Errorf("missing --signature: give the value of the webhook-signature header")
	case tolerance < 0:
		return input, fmt.Errorf("invalid --tolerance %s: give a positive duration such as 5m", tolerance)
	}

	var err error
	input.id = id
	input.signatures = strings.Fields(signature)
	input.tolerance = tolerance
	if input.timestamp, err = strconv.ParseInt(timestamp, 10, 64); err != nil {
		return input, fmt.Errorf("invalid --timestamp %q: give the webhook-timestamp header, a whole number of seconds since 1970-01-01 UTC", timestamp)
	}
	for i, secret := range secrets {
		key, err := parseSecretFlag(secret)
		if err != nil {
			return input, fmt.Errorf("invalid --secret %d of %d: %w", i+1, len(secrets), err)
		}
		input.secrets = append(input.secrets, key)
	}
	for i, publicKey := range publicKeys {
		key, err := parsePublicKey(publicKey)
		if err != nil {
			return input, fmt.Errorf("invalid --public-key %d of %d: %w", i+1, len(publicKeys), err)
		}
		input.publicKeys = append(input.publicKeys, key)
	}
	return input, nil
}

// parseSecretFlag decodes a whsec_ secret with delivery.ParseSecret, with a
// clearer error when an ed25519 key was given instead.
func parseSecretFlag(secret string) ([]byte, error) {
	switch {
	case strings.HasPrefix(secret, delivery.PublicKeyPrefix):
		return nil, fmt.Errorf("it starts with %q, which marks an ed25519 public key: pass it with --public-key", delivery.PublicKeyPrefix)
	case strings.HasPrefix(secret, delivery.SigningKeyPrefix):
		return nil, fmt.Errorf("it starts with %q, which marks the sender's private ed25519 signing key: pass its whpk_ public key with --public-key instead", delivery.SigningKeyPrefix)
	}
	return delivery.ParseSecret(secret)
}

// parsePublicKey decodes a Standard Webhooks public key: `whpk_` followed by
// the 32-byte ed25519 public key in standard base64, the format of
// delivery.FormatPublicKey. Errors never contain the key.
func parsePublicKey(publicKey string) (ed25519.PublicKey, error) {
	encoded, ok := strings.CutPrefix(publicKey, delivery.PublicKeyPrefix)
	if !ok {
		if strings.HasPrefix(publicKey, delivery.SigningKeyPrefix) {
			return nil, fmt.Errorf("it starts with %q, which marks the sender's private signing key: use its public key, which Caddy logs at start as public_key in the message \"signing webhooks with ed25519\"", delivery.SigningKeyPrefix)
		}
		return nil, fmt.Errorf("it does not start with %q: give the ed25519 public key that Caddy logs at start as public_key", delivery.PublicKeyPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("decoding the base64 after %q: %w", delivery.PublicKeyPrefix, err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("it decodes to %d bytes, but an ed25519 public key has %d", len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// readBody reads the webhook body from file, or from standard input for "-".
func readBody(cmd *cobra.Command, file string) ([]byte, error) {
	if file == "-" {
		body, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("reading the body from standard input: %w", err)
		}
		return body, nil
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	return body, nil
}

// signatureMatch is a signature of the header that one of the keys verified.
type signatureMatch struct {
	position int    // 1-based position in the header
	total    int    // number of signatures in the header
	version  string // v1 or v1a
	keyFlag  string // --secret or --public-key
	keyIndex int    // 1-based position of the key among its flags
}

func (m signatureMatch) String() string {
	return fmt.Sprintf("signature %d of %d (%s) matches %s %d", m.position, m.total, m.version, m.keyFlag, m.keyIndex)
}

// matchSignatures checks every signature of the header against every key of
// its version and returns the matches. Signatures of other versions are
// skipped, so a header that also carries a newer scheme still verifies.
func matchSignatures(input verifyInput) []signatureMatch {
	timestamp := time.Unix(input.timestamp, 0)
	expectedV1 := make([]string, len(input.secrets))
	for i, key := range input.secrets {
		expectedV1[i] = delivery.Sign([][]byte{key}, input.id, timestamp, input.body)
	}
	content := signedContent(input.id, input.timestamp, input.body)

	var matches []signatureMatch
	for i, signature := range input.signatures {
		match := signatureMatch{position: i + 1, total: len(input.signatures)}
		version, encoded, _ := strings.Cut(signature, ",")
		switch version {
		case "v1":
			for j, expected := range expectedV1 {
				if hmac.Equal([]byte(signature), []byte(expected)) {
					match.version, match.keyFlag, match.keyIndex = version, "--secret", j+1
					matches = append(matches, match)
				}
			}
		case "v1a":
			decoded, err := base64.StdEncoding.DecodeString(encoded)
			if err != nil {
				continue
			}
			for j, key := range input.publicKeys {
				if ed25519.Verify(key, content, decoded) {
					match.version, match.keyFlag, match.keyIndex = version, "--public-key", j+1
					matches = append(matches, match)
				}
			}
		}
	}
	return matches
}

// signedContent builds "<id>.<timestamp>.<body>", the content that every
// Standard Webhooks signature covers.
//
// TODO: call the same builder in delivery once it is exported; delivery
// keeps it unexported (signedContent) today.
func signedContent(id string, timestamp int64, body []byte) []byte {
	prefix := id + "." + strconv.FormatInt(timestamp, 10) + "."
	return append([]byte(prefix), body...)
}

// noMatchError explains why no signature matched, with what to check next.
func noMatchError(input verifyInput) error {
	var v1, v1a, other int
	for _, signature := range input.signatures {
		version, _, _ := strings.Cut(signature, ",")
		switch version {
		case "v1":
			v1++
		case "v1a":
			v1a++
		default:
			other++
		}
	}

	reason := fmt.Sprintf("no signature matches: checked %s against %s and %s against %s",
		countNoun(v1, "v1 signature", "v1 signatures"), countNoun(len(input.secrets), "secret", "secrets"),
		countNoun(v1a, "v1a signature", "v1a signatures"), countNoun(len(input.publicKeys), "public key", "public keys"))
	if other > 0 {
		reason += fmt.Sprintf(", and skipped %s of other versions", countNoun(other, "signature", "signatures"))
	}
	var hints []string
	if v1 > 0 && len(input.secrets) == 0 {
		hints = append(hints, "the header has v1 signatures, which need --secret")
	}
	if v1a > 0 && len(input.publicKeys) == 0 {
		hints = append(hints, "the header has v1a signatures, which need --public-key")
	}
	if len(input.body) > 0 && input.body[len(input.body)-1] == '\n' {
		hints = append(hints, "FILE ends with a line break: remove it unless the received body had one")
	}
	hints = append(hints, "check that FILE contains the body bytes exactly as received and that --id and --timestamp are the webhook-id and webhook-timestamp headers of the same request")
	return fmt.Errorf("%s; %s", reason, strings.Join(hints, "; "))
}

// checkTolerance fails when --tolerance is set and the timestamp is further
// from now than it allows, and otherwise notes that the timestamp was checked.
func checkTolerance(out io.Writer, input verifyInput, now time.Time) error {
	if input.tolerance == 0 {
		return nil
	}
	sent := time.Unix(input.timestamp, 0)
	age := now.Sub(sent).Truncate(time.Second)
	direction := "before"
	if age < 0 {
		age, direction = -age, "after"
	}
	if age > input.tolerance {
		return fmt.Errorf("timestamp %d (%s UTC) is %s %s now, beyond --tolerance %s: a receiver that checks the age rejects this webhook as a possible replay",
			input.timestamp, sent.UTC().Format(tableTimeFormat), age, direction, input.tolerance)
	}
	_, err := fmt.Fprintf(out, "timestamp is %s %s now, within --tolerance %s\n", age, direction, input.tolerance)
	return err
}
