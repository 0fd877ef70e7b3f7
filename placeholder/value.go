package placeholder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Values reach the package as the Resolver returns them, and the package
// distinguishes these kinds:
//
//   - nil: JSON null, empty text.
//   - string: a JSON string, itself as text. []byte is text as well.
//   - bool, signed and unsigned integers, float32 and float64: a JSON
//     number or boolean, and the same JSON text as text. JSON has no NaN or
//     infinity, so non-finite floats are null.
//   - json.Number: the number as written, or a JSON string when it is not
//     a valid JSON number.
//   - json.RawMessage: the JSON value, compacted, or a JSON string of its
//     bytes when it is not valid JSON. As text, a JSON string is its
//     content, null is empty, and other values are their compact JSON.
//   - map[string]any and []any, as decoded from JSON, and other maps,
//     slices and arrays: compact JSON, with object keys sorted. As text, the
//     same compact JSON. A value that encoding/json cannot encode, such as
//     a map of channels, is treated as an "other" value.
//   - time.Time: a string in RFC 3339 with as many fractional second
//     digits as needed (time.RFC3339Nano), as encoding/json writes it.
//   - anything else: a string of its fmt.Sprint text, which uses its
//     String or Error method when it has one.
//
// Strings are escaped as encoding/json escapes them without HTML escaping:
// invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029 are written as \u2028
// and \u2029, so the output is valid JSON for any input.

// FormatText returns the text of v as Render interpolates it.
func FormatText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return string(appendText(nil, v))
}

// AppendJSON appends v to dst as a JSON value and returns the extended
// buffer. The result is valid JSON in UTF-8 for every v.
func AppendJSON(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendQuoted(dst, v)
	case []byte:
		return appendQuoted(dst, v)
	case bool:
		return strconv.AppendBool(dst, v)
	case json.Number:
		if validNumber(string(v)) {
			return append(dst, v...)
		}
		return appendQuoted(dst, string(v))
	case json.RawMessage:
		return appendRaw(dst, v)
	case map[string]any:
		return appendObject(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, item := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSON(dst, item)
		}
		return append(dst, ']')
	case []string:
		dst = append(dst, '[')
		for i, item := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, item)
		}
		return append(dst, ']')
	case time.Time:
		return appendQuoted(dst, v.Format(time.RFC3339Nano))
	}

	if out, ok := appendNumber(dst, v); ok {
		return out
	}
	if out, ok := appendReflected(dst, v); ok {
		return out
	}
	return appendQuoted(dst, fmt.Sprint(v))
}

// appendText appends the text of v, as FormatText returns it.
func appendText(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return dst
	case string:
		return append(dst, v...)
	case []byte:
		return append(dst, v...)
	case bool:
		return strconv.AppendBool(dst, v)
	case json.Number:
		return append(dst, v...)
	case json.RawMessage:
		return appendRawText(dst, v)
	case time.Time:
		return v.AppendFormat(dst, time.RFC3339Nano)
	}

	if out, ok := appendNumber(dst, v); ok {
		if isNull(out[len(dst):]) {
			return dst
		}
		return out
	}
	switch v.(type) {
	case map[string]any, []any, []string:
		return AppendJSON(dst, v)
	}
	if out, ok := appendReflected(dst, v); ok {
		return out
	}
	return append(dst, fmt.Sprint(v)...)
}

func isNull(b []byte) bool {
	return string(b) == "null"
}

// appendNumber appends v when it is a Go number type: integers as they
// are, floats in the shortest form that encoding/json writes, and
// non-finite floats as null.
func appendNumber(dst []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case int:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int8:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int16:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int64:
		return strconv.AppendInt(dst, v, 10), true
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case uint8:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case uint16:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case uint64:
		return strconv.AppendUint(dst, v, 10), true
	case float32:
		return appendFloat(dst, float64(v), 32), true
	case float64:
		return appendFloat(dst, v, 64), true
	}
	return dst, false
}

// appendFloat writes f as encoding/json does: decimal notation for
// magnitudes from 1e-6 to below 1e21 and exponent notation with at least one
// exponent digit otherwise, so 1e-7 is "1e-7", not "1e-07".
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		small, large := abs < 1e-6, abs >= 1e21
		if bits == 32 {
			small, large = float32(abs) < 1e-6, float32(abs) >= 1e21
		}
		if small || large {
			format = 'e'
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// strconv writes at least two exponent digits, such as e-07.
		n := len(dst)
		if n-start >= 4 && dst[n-4] == 'e' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendObject writes m with its keys in sorted order, as encoding/json
// does, so that the same value always renders the same bytes.
func appendObject(dst []byte, m map[string]any) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendQuoted(dst, k)
		dst = append(dst, ':')
		dst = AppendJSON(dst, m[k])
	}
	return append(dst, '}')
}

// appendRaw writes a json.RawMessage compacted. Valid JSON with invalid
// UTF-8 in its strings is decoded and encoded again, which replaces the
// invalid bytes with U+FFFD. Invalid JSON becomes a JSON string.
func appendRaw(dst []byte, raw json.RawMessage) []byte {
	if !json.Valid(raw) {
		return appendQuoted(dst, string(raw))
	}
	if utf8.Valid(raw) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err == nil {
			return append(dst, buf.Bytes()...)
		}
	}
	v, err := decode(raw)
	if err != nil {
		return appendQuoted(dst, string(raw))
	}
	return AppendJSON(dst, v)
}

// appendRawText writes the text of a json.RawMessage: the content of a JSON
// string, nothing for null, and compact JSON for everything else.
func appendRawText(dst []byte, raw json.RawMessage) []byte {
	if !json.Valid(raw) {
		return append(dst, raw...)
	}
	v, err := decode(raw)
	if err != nil {
		return append(dst, raw...)
	}
	switch v := v.(type) {
	case nil:
		return dst
	case string:
		return append(dst, v...)
	}
	return appendRaw(dst, raw)
}

// decode decodes one JSON value, keeping numbers as json.Number.
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// appendReflected writes maps, slices and arrays of other types with
// encoding/json. It reports false for other kinds and for values that
// encoding/json cannot encode.
func appendReflected(dst []byte, v any) ([]byte, bool) {
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Slice, reflect.Array:
	default:
		return dst, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, false
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), true
}

// appendQuoted writes s as a JSON string.
func appendQuoted[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendEscaped writes s escaped for the inside of a JSON string: quotes,
// backslashes and control characters are escaped, invalid UTF-8 becomes
// \ufffd, and U+2028 and U+2029 are escaped because JavaScript before
// ES2019 reads them as line ends. <, > and & stay as they are.
func appendEscaped[S ~string | ~[]byte](dst []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}

		// At most utf8.UTFMax bytes are converted, which needs no
		// allocation when S is []byte.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// validNumber reports whether s is a number in the JSON grammar (RFC 8259,
// section 6): an optional minus, an integer without leading zeros, an
// optional fraction and an optional exponent.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = skipDigits(s, i)
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := skipDigits(s, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

func skipDigits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
