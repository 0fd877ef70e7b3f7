package payload

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// BodyEncodingBase64 is the value of "body_encoding" when the body is a
// base64 string.
const BodyEncodingBase64 = "base64"

// appendBody appends the "body" member of a captured body, and the
// "body_encoding" and "body_truncated" members where they apply. A complete
// body that is valid JSON in UTF-8 is embedded compacted, and json.Compact
// checks it in the same pass. Valid UTF-8 text becomes a string. A
// truncated body loses the incomplete character at its end, if any, before
// that test. Everything else becomes a base64 string. An empty body appends
// nothing but "body_truncated".
func appendBody(buf []byte, body []byte, truncated bool) []byte {
	if len(body) > 0 {
		buf = appendBodyValue(buf, body, truncated)
	}
	if truncated {
		buf = append(buf, `,"body_truncated":true`...)
	}
	return buf
}

func appendBodyValue(buf []byte, body []byte, truncated bool) []byte {
	buf = append(buf, `,"body":`...)
	if !truncated && utf8.Valid(body) {
		// json.Compact writes into the free capacity of buf, and it
		// leaves dst unchanged when body is not valid JSON.
		dst := bytes.NewBuffer(buf)
		if json.Compact(dst, body) == nil {
			return dst.Bytes()
		}
	}

	text := body
	if truncated {
		text = trimPartialRune(body)
	}
	if utf8.Valid(text) {
		return appendJSONString(buf, text)
	}
	buf = append(buf, '"')
	buf = base64.StdEncoding.AppendEncode(buf, body)
	return append(buf, `","body_encoding":"`+BodyEncodingBase64+`"`...)
}

// appendJSONString appends s as a JSON string with the escapes that
// encoding/json uses when HTML escaping is off. These are \" \\ \b \f \n
// \r \t, \u00XX for the other control characters, \u2028 and \u2029, and
// \ufffd in place of each byte that is not valid UTF-8.
func appendJSONString[Text string | []byte](buf []byte, s Text) []byte {
	const hexDigits = "0123456789abcdef"
	buf = append(buf, '"')
	plain := 0 // start of the bytes not yet appended
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf = append(buf, s[plain:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\b':
				buf = append(buf, `\b`...)
			case '\f':
				buf = append(buf, `\f`...)
			case '\n':
				buf = append(buf, `\n`...)
			case '\r':
				buf = append(buf, `\r`...)
			case '\t':
				buf = append(buf, `\t`...)
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			plain = i
			continue
		}

		r, size := decodeRune(s[i:])
		var escape string
		switch {
		case r == utf8.RuneError && size == 1:
			escape = `\ufffd`
		case r == '\u2028':
			escape = `\u2028`
		case r == '\u2029':
			escape = `\u2029`
		default:
			i += size
			continue
		}
		buf = append(buf, s[plain:i]...)
		buf = append(buf, escape...)
		i += size
		plain = i
	}
	buf = append(buf, s[plain:]...)
	return append(buf, '"')
}

// plainASCII marks the bytes that a JSON string contains unescaped: ASCII
// from space on, except '"' and '\\'.
var plainASCII = func() (table [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		table[c] = c != '"' && c != '\\'
	}
	return table
}()

// decodeRune decodes the first UTF-8 sequence of s.
func decodeRune[Text string | []byte](s Text) (rune, int) {
	if b, ok := any(s).([]byte); ok {
		return utf8.DecodeRune(b)
	}
	return utf8.DecodeRuneInString(string(s))
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
