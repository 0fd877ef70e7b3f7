package payload

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// BodyEncodingBase64 is the value of "body_encoding" when the body is a
// base64 string.
const BodyEncodingBase64 = "base64"

// encodeBody returns the envelope value for a captured body and its encoding
// name, which is empty unless the value is base64. A complete body that is
// valid JSON in UTF-8 becomes a json.RawMessage, which the JSON encoder
// checks again and compacts. Valid UTF-8 text becomes a string. A truncated
// body loses the incomplete character at its end, if any, before that test.
// Everything else becomes a base64 string. An empty body returns nil.
func encodeBody(body []byte, truncated bool) (any, string) {
	if len(body) == 0 {
		return nil, ""
	}
	if !truncated && utf8.Valid(body) && json.Valid(body) {
		return json.RawMessage(body), ""
	}

	text := body
	if truncated {
		text = trimPartialRune(body)
	}
	if utf8.Valid(text) {
		return string(text), ""
	}
	return base64.StdEncoding.EncodeToString(body), BodyEncodingBase64
}

// trimPartialRune cuts an incomplete UTF-8 sequence from the end of b, which
// a capture limit can leave in the middle of a character.
func trimPartialRune(b []byte) []byte {
	// A UTF-8 sequence is at most utf8.UTFMax bytes long, so its first byte
	// lies within the last utf8.UTFMax bytes.
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			return b
		}
	}
	return b
}
