package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

// Template is a compiled JSON payload template. Every JSON string in it,
// object keys included, may contain placeholders:
//
//   - A string that is exactly one placeholder, such as
//     "{webhook.response.body.id}", becomes the value with its JSON type
//     (see placeholder.AppendJSON), or null when it has no value.
//   - Placeholders in a longer string, or in an object key, are replaced by
//     the text of their value (see placeholder.FormatText), or by nothing
//     when they have no value.
//
// Strings are decoded from JSON before their placeholders are parsed, so a
// literal brace is written "\\{" in the template. Numbers keep the digits
// they were written with. Values are always encoded, never copied in as raw
// text, so the result is valid JSON for any value.
//
// When keys of one object render equal, the last member with that key is
// kept in its place and the earlier ones are left out, as JSON.parse in
// JavaScript and encoding/json in Go keep the last of duplicate keys. Keys
// that are equal in the template itself are an error.
//
// A Template is immutable and may be rendered by several goroutines at
// once.
type Template struct {
	root  node
	names []string
	size  int // length of the compact template, to size the output buffer
}

// node is a compiled JSON value.
type node interface {
	appendJSON(dst []byte, r placeholder.Resolver) []byte
}

// literalNode is JSON without placeholders, encoded at compile time.
type literalNode []byte

func (n literalNode) appendJSON(dst []byte, _ placeholder.Resolver) []byte {
	return append(dst, n...)
}

// valueNode is a string that is exactly one placeholder, which renders
// as the value with its JSON type.
type valueNode string

func (n valueNode) appendJSON(dst []byte, r placeholder.Resolver) []byte {
	if r == nil {
		return append(dst, "null"...)
	}
	v, ok := r.Resolve(string(n))
	if !ok {
		return append(dst, "null"...)
	}
	return placeholder.AppendJSON(dst, v)
}

// textNode is a string with placeholders and text, which renders as a
// JSON string.
type textNode struct {
	text *placeholder.Text
}

func (n textNode) appendJSON(dst []byte, r placeholder.Resolver) []byte {
	return n.text.AppendJSONString(dst, r)
}

type arrayNode []node

func (n arrayNode) appendJSON(dst []byte, r placeholder.Resolver) []byte {
	dst = append(dst, '[')
	for i, item := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = item.appendJSON(dst, r)
	}
	return append(dst, ']')
}

type objectNode struct {
	members []member
	dynamic bool // whether a key has placeholders
}

// member is an object member. key is nil when the key has no placeholders
// and quotedKey holds it, encoded.
type member struct {
	key       *placeholder.Text
	quotedKey []byte
	value     node
}

func (n *objectNode) appendJSON(dst []byte, r placeholder.Resolver) []byte {
	if n.dynamic {
		return n.appendDynamic(dst, r)
	}
	dst = append(dst, '{')
	for i, m := range n.members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m.quotedKey...)
		dst = append(dst, ':')
		dst = m.value.appendJSON(dst, r)
	}
	return append(dst, '}')
}

// appendDynamic renders an object whose keys have placeholders. The keys
// are rendered first, so that a member can be left out when a later member
// renders the same key.
func (n *objectNode) appendDynamic(dst []byte, r placeholder.Resolver) []byte {
	var keys []byte
	ends := make([]int, len(n.members))
	for i, m := range n.members {
		if m.key != nil {
			keys = m.key.AppendJSONString(keys, r)
		} else {
			keys = append(keys, m.quotedKey...)
		}
		ends[i] = len(keys)
	}
	key := func(i int) []byte {
		if i == 0 {
			return keys[:ends[0]]
		}
		return keys[ends[i-1]:ends[i]]
	}
	last := lastIndexes(len(n.members), key)

	dst = append(dst, '{')
	written := 0
	for i, m := range n.members {
		if last(i) != i {
			continue
		}
		if written > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, key(i)...)
		dst = append(dst, ':')
		dst = m.value.appendJSON(dst, r)
		written++
	}
	return append(dst, '}')
}

// lastIndexes returns a function that maps each of n keys to the index of
// the last key equal to it. Small objects are searched directly, because
// a map costs more than a few comparisons.
func lastIndexes(n int, key func(int) []byte) func(int) int {
	const mapThreshold = 16
	if n <= mapThreshold {
		return func(i int) int {
			last := i
			for j := i + 1; j < n; j++ {
				if bytes.Equal(key(i), key(j)) {
					last = j
				}
			}
			return last
		}
	}
	lastOf := make(map[string]int, n)
	for i := range n {
		lastOf[string(key(i))] = i
	}
	return func(i int) int { return lastOf[string(key(i))] }
}

// CompileTemplate parses a JSON payload template. Invalid JSON is an error
// that gives the line, column and byte offset and a hint. Keys that appear
// twice in one object are an error too, and so are strings with more than
// 100 unclosed braces, which Caddy rejects as well. Placeholder names that
// start with "webhook." must be ones that Exchange.Resolver resolves (see
// CheckName).
func CompileTemplate(raw json.RawMessage) (*Template, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errors.New(`empty template: write a JSON value, such as {"id": "{webhook.response.body.id}"}`)
	}
	var check json.RawMessage
	if err := json.Unmarshal(raw, &check); err != nil {
		return nil, syntaxError(raw, err)
	}

	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	c := &compiler{raw: raw, dec: dec}
	root, err := c.value()
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		// Unmarshal has checked that one value fills raw.
		return nil, fmt.Errorf("reading the template after its value at offset %d: %v", dec.InputOffset(), err)
	}
	return &Template{root: root, names: c.names, size: len(check)}, nil
}

// Names returns the name of every placeholder in the template, keys
// included, in order of first appearance and without duplicates.
func (t *Template) Names() []string {
	return slices.Clone(t.names)
}

// Render renders the template with the values of r. A nil r resolves
// nothing. The result is valid JSON in UTF-8 for any values, which
// FuzzTemplateRender checks.
//
// The error is always nil in this version. The error result keeps the
// signature stable for limits that may come, such as a maximum size.
func (t *Template) Render(r placeholder.Resolver) (json.RawMessage, error) {
	return t.root.appendJSON(make([]byte, 0, t.size), r), nil
}

// WithTemplate builds the envelope around data rendered from a template:
// {"type":…,"timestamp":…,"data":<data>}, in the shape of Default. Empty
// data becomes null. It returns an error when data is not valid JSON.
func WithTemplate(x *Exchange, data json.RawMessage) ([]byte, error) {
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return marshal(templateEnvelope{
		Type:      x.EventType,
		Timestamp: x.Timestamp.UTC().Format(TimestampLayout),
		Data:      data,
	})
}

type templateEnvelope struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// compiler builds nodes from the tokens of a template that is known to be
// valid JSON.
type compiler struct {
	raw   []byte
	dec   *json.Decoder
	names []string
}

func (c *compiler) value() (node, error) {
	start := c.dec.InputOffset()
	tok, err := c.dec.Token()
	if err != nil {
		return nil, fmt.Errorf("reading the template at offset %d: %v", start, err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '{' {
			return c.object()
		}
		return c.array()
	case string:
		return c.str(tok, start)
	case json.Number:
		return literalNode(tok), nil
	case bool:
		return literalNode(fmt.Sprint(tok)), nil
	case nil:
		return literalNode("null"), nil
	}
	return nil, fmt.Errorf("reading the template at offset %d: unexpected token %v", start, tok)
}

func (c *compiler) array() (node, error) {
	var items arrayNode
	for c.dec.More() {
		item, err := c.value()
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	if _, err := c.dec.Token(); err != nil { // the closing ]
		return nil, err
	}

	literal := []byte{'['}
	for i, item := range items {
		lit, ok := item.(literalNode)
		if !ok {
			return items, nil
		}
		if i > 0 {
			literal = append(literal, ',')
		}
		literal = append(literal, lit...)
	}
	return literalNode(append(literal, ']')), nil
}

func (c *compiler) object() (node, error) {
	obj := &objectNode{}
	seen := make(map[string]bool)
	for c.dec.More() {
		start := c.dec.InputOffset()
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string) // the decoder returns object keys as strings

		text, err := c.parse(key, start)
		if err != nil {
			return nil, err
		}
		m := member{}
		if len(text.Names()) > 0 {
			m.key = text
			obj.dynamic = true
		} else {
			literal := text.Render(nil)
			if seen[literal] {
				line, col := position(c.raw, c.keyOffset(start))
				return nil, fmt.Errorf("duplicate key %q at line %d, column %d: remove one of the members", literal, line, col)
			}
			seen[literal] = true
			m.quotedKey = placeholder.AppendJSON(nil, literal)
		}

		if m.value, err = c.value(); err != nil {
			return nil, err
		}
		obj.members = append(obj.members, m)
	}
	if _, err := c.dec.Token(); err != nil { // the closing }
		return nil, err
	}

	if obj.dynamic {
		return obj, nil
	}
	literal := []byte{'{'}
	for i, m := range obj.members {
		lit, ok := m.value.(literalNode)
		if !ok {
			return obj, nil
		}
		if i > 0 {
			literal = append(literal, ',')
		}
		literal = append(literal, m.quotedKey...)
		literal = append(literal, ':')
		literal = append(literal, lit...)
	}
	return literalNode(append(literal, '}')), nil
}

// str compiles a JSON string value, which start is the offset before.
func (c *compiler) str(s string, start int64) (node, error) {
	text, err := c.parse(s, start)
	if err != nil {
		return nil, err
	}
	if name, ok := text.Single(); ok {
		return valueNode(name), nil
	}
	if len(text.Names()) > 0 {
		return textNode{text: text}, nil
	}
	return literalNode(placeholder.AppendJSON(nil, text.Render(nil))), nil
}

// parse parses the placeholders of a string of the template, checks their
// names and adds them to c.names.
func (c *compiler) parse(s string, start int64) (*placeholder.Text, error) {
	text, err := placeholder.Parse(s)
	if err != nil {
		line, col := position(c.raw, c.keyOffset(start))
		return nil, fmt.Errorf("parsing placeholders in the string at line %d, column %d: %w; escape literal braces as \\\\{ in JSON", line, col, err)
	}
	for _, name := range text.Names() {
		if err := CheckName(name); err != nil {
			line, col := position(c.raw, c.keyOffset(start))
			return nil, fmt.Errorf("line %d, column %d: %w", line, col, err)
		}
		if !slices.Contains(c.names, name) {
			c.names = append(c.names, name)
		}
	}
	return text, nil
}

// keyOffset returns the offset of the opening quote of the string token
// whose reading started at start. Token leaves the offset after the
// previous token, before any comma, colon and space.
func (c *compiler) keyOffset(start int64) int {
	i := int(start)
	for i < len(c.raw) && c.raw[i] != '"' {
		i++
	}
	return i
}

// syntaxError describes invalid JSON in a template with its position and a
// hint for the mistake it most likely is.
func syntaxError(raw []byte, err error) error {
	var serr *json.SyntaxError
	if !errors.As(err, &serr) {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	at := int(serr.Offset) - 1 // the offending byte; Offset counts it as read
	if at < 0 || serr.Error() == "unexpected end of JSON input" {
		at = len(raw)
	}
	line, col := position(raw, at)
	msg := fmt.Sprintf("invalid JSON at line %d, column %d (offset %d): %v", line, col, at, err)
	if hint := syntaxHint(raw, at, serr.Error()); hint != "" {
		msg += "; " + hint
	}
	return errors.New(msg)
}

// syntaxHint returns advice for common mistakes in a template, or "".
func syntaxHint(raw []byte, at int, msg string) string {
	var bad byte
	if at < len(raw) {
		bad = raw[at]
	}
	beforeAt := previousNonSpace(raw, at)
	var before byte
	if beforeAt >= 0 {
		before = raw[beforeAt]
	}
	isLetter := bad >= 'a' && bad <= 'z' || bad >= 'A' && bad <= 'Z' || bad == '_'

	switch {
	case msg == "unexpected end of JSON input":
		return "close every string, object and array"
	case bad == '\'':
		return "write strings and keys in double quotes"
	case isLetter && before == '{' && unquotedPlaceholder(raw, beforeAt):
		return `write the placeholder as a JSON string in double quotes, such as "{webhook.response.body.id}"`
	case isLetter:
		return "write strings and keys in double quotes"
	case (bad == '}' || bad == ']') && before == ',':
		return "remove the comma before it, as JSON has no trailing commas"
	case bytes.HasSuffix([]byte(msg), []byte("in string literal")):
		return `write line breaks and tabs in strings as \n and \t`
	case bytes.HasSuffix([]byte(msg), []byte("in string escape code")):
		return `JSON strings know the escapes \" \\ \/ \b \f \n \r \t and \uXXXX, so a literal brace for Caddy is written \\{`
	case bytes.HasSuffix([]byte(msg), []byte("after top-level value")):
		return "the template must be one JSON value, so put its members in one object"
	case bytes.HasSuffix([]byte(msg), []byte("after object key")):
		return "put a colon after each key"
	case bytes.HasSuffix([]byte(msg), []byte("after object key:value pair")) ||
		bytes.HasSuffix([]byte(msg), []byte("after array element")):
		return "separate members and elements with commas"
	}
	return ""
}

// unquotedPlaceholder reports whether raw has a placeholder such as
// {webhook.response.body.id} without quotes at offset open.
func unquotedPlaceholder(raw []byte, open int) bool {
	end := bytes.IndexByte(raw[open:], '}')
	if end < 0 {
		return false
	}
	return !bytes.ContainsAny(raw[open+1:open+end], "{\":, \t\r\n")
}

// previousNonSpace returns the offset of the last byte before at that is
// not JSON whitespace, or -1.
func previousNonSpace(raw []byte, at int) int {
	for i := min(at, len(raw)) - 1; i >= 0; i-- {
		switch raw[i] {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return i
	}
	return -1
}

// position returns the 1-based line and column of the byte at offset. The
// column counts bytes.
func position(raw []byte, offset int) (line, col int) {
	offset = min(offset, len(raw))
	line = 1 + bytes.Count(raw[:offset], []byte("\n"))
	return line, offset - bytes.LastIndexByte(raw[:offset], '\n')
}

// decodeValue decodes one JSON value, keeping numbers as json.Number so
// that no digits are lost.
func decodeValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
