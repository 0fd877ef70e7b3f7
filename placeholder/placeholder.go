// Package placeholder parses strings with Caddy-style {name} placeholders
// once and renders them many times with values from a Resolver.
//
// Parse follows the scanner of Caddy v2.11.9 (Replacer.replace in
// replacer.go), so a string means the same here as in a Caddy config:
//
//   - A placeholder runs from an unescaped "{" to the next "}" that is not
//     preceded by a backslash. Its name is everything between them, escapes
//     included, so "{a{b}" is the placeholder "a{b" and "{}" is the
//     placeholder with the empty name.
//   - "\{" and "\}" outside a placeholder are a literal brace. The
//     backslash itself cannot be escaped: "\\{" is a backslash and a
//     literal brace.
//   - A "{" with no "}" after it is literal text.
package placeholder

import (
	"errors"
	"strings"
	"sync"
)

// Resolver returns the value of a placeholder. ok is false when the name is
// unknown or has no value.
type Resolver interface {
	Resolve(name string) (value any, ok bool)
}

// ResolverFunc adapts a function, such as caddy.Replacer.Get, to Resolver.
type ResolverFunc func(name string) (any, bool)

// Resolve calls f(name).
func (f ResolverFunc) Resolve(name string) (any, bool) {
	return f(name)
}

// maxUnclosed is the number of unclosed placeholders that Caddy's replacer
// tolerates in one string before it gives up with an error.
const maxUnclosed = 100

// ErrTooManyUnclosed is returned by Parse for a string with more than 100
// "{" that have no matching "}", which Caddy's replacer rejects too.
var ErrTooManyUnclosed = errors.New("too many unclosed placeholders")

// Text is a parsed string: literal text and placeholders in order. It is
// immutable, so one Text may be rendered by many goroutines at once.
type Text struct {
	segments []segment
}

// segment is literal text, or a placeholder whose name is text.
type segment struct {
	text        string
	placeholder bool
}

// Parse splits s into literal text and placeholders. Its only error is
// ErrTooManyUnclosed. Escaped braces in literal text are unescaped.
func Parse(s string) (*Text, error) {
	t := &Text{}
	if !strings.ContainsAny(s, "{}") {
		t.addLiteral(s)
		return t, nil
	}

	var literal strings.Builder
	cursor := 0 // start of the text not yet added to literal
	unclosed := 0

scan:
	for i := 0; i < len(s); i++ {
		if i > 0 && s[i-1] == '\\' && (s[i] == '{' || s[i] == '}') {
			literal.WriteString(s[cursor : i-1])
			cursor = i
			continue
		}
		if s[i] != '{' {
			continue
		}
		if unclosed > maxUnclosed {
			return nil, ErrTooManyUnclosed
		}

		end := strings.IndexByte(s[i:], '}') + i
		if end < i {
			unclosed++
			continue
		}
		// An escaped "}" does not close the placeholder, except as the last
		// byte of s, where Caddy's scanner stops looking.
		for end < len(s)-1 && s[end-1] == '\\' {
			next := strings.IndexByte(s[end+1:], '}')
			if next < 0 {
				unclosed++
				continue scan
			}
			end += next + 1
		}

		literal.WriteString(s[cursor:i])
		t.addLiteral(literal.String())
		literal.Reset()
		t.segments = append(t.segments, segment{text: s[i+1 : end], placeholder: true})
		i = end
		cursor = end + 1
	}
	literal.WriteString(s[cursor:])
	t.addLiteral(literal.String())
	return t, nil
}

// addLiteral appends literal text, merging it with a literal before it.
func (t *Text) addLiteral(text string) {
	if text == "" {
		return
	}
	if n := len(t.segments); n > 0 && !t.segments[n-1].placeholder {
		t.segments[n-1].text += text
		return
	}
	t.segments = append(t.segments, segment{text: text})
}

// Single returns the name of the placeholder when t is exactly one
// placeholder with no text around it.
func (t *Text) Single() (name string, ok bool) {
	if len(t.segments) == 1 && t.segments[0].placeholder {
		return t.segments[0].text, true
	}
	return "", false
}

// Names returns the name of every placeholder in t, in order of first
// appearance and without duplicates. It returns nil for literal text.
func (t *Text) Names() []string {
	var names []string
	for _, seg := range t.segments {
		if seg.placeholder && !contains(names, seg.text) {
			names = append(names, seg.text)
		}
	}
	return names
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// Render returns t with every placeholder replaced by the text of its value
// (see FormatText). A placeholder without a value becomes empty text. A nil
// r resolves nothing.
func (t *Text) Render(r Resolver) string {
	if len(t.segments) == 1 && !t.segments[0].placeholder {
		return t.segments[0].text
	}
	return string(t.AppendText(nil, r))
}

// AppendText appends the result of Render to dst and returns the extended
// buffer.
func (t *Text) AppendText(dst []byte, r Resolver) []byte {
	for _, seg := range t.segments {
		if !seg.placeholder {
			dst = append(dst, seg.text...)
			continue
		}
		if v, ok := resolve(r, seg.text); ok {
			dst = appendText(dst, v)
		}
	}
	return dst
}

// AppendJSONString appends the result of Render to dst as a JSON string,
// quoted and escaped as AppendJSON escapes strings, and returns the extended
// buffer.
func (t *Text) AppendJSONString(dst []byte, r Resolver) []byte {
	if len(t.segments) == 1 && !t.segments[0].placeholder {
		return appendQuoted(dst, t.segments[0].text)
	}

	// The text is rendered whole before it is escaped, because escaping
	// each part on its own would differ where bytes of two parts together
	// form a valid UTF-8 sequence.
	scratch := scratchPool.Get().(*[]byte)
	text := t.AppendText((*scratch)[:0], r)
	dst = appendQuoted(dst, text)
	if cap(text) <= maxPooledScratch {
		*scratch = text
		scratchPool.Put(scratch)
	}
	return dst
}

// scratchPool contains buffers for AppendJSONString, which renders into
// them before escaping.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledScratch is the capacity above which a buffer is left to the
// garbage collector instead of kept in scratchPool, so that one large
// value does not keep its memory alive.
const maxPooledScratch = 64 << 10

func resolve(r Resolver, name string) (any, bool) {
	if r == nil {
		return nil, false
	}
	return r.Resolve(name)
}
