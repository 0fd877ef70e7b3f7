package payload

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

// namePrefix starts every placeholder name that an Exchange resolves.
const namePrefix = "webhook."

// nameKind is the part of an exchange that a webhook.* placeholder name
// refers to.
type nameKind int

const (
	nameUnknown nameKind = iota
	nameEventID
	nameEventType
	nameRequestMethod
	nameRequestHost
	nameRequestPath
	nameRequestQuery  // argument: the query parameter
	nameRequestHeader // argument: the header field
	nameRequestBody   // argument: the JSON path, empty for the whole body
	nameResponseStatus
	nameResponseHeader // argument: the header field
	nameResponseBody   // argument: the JSON path, empty for the whole body
)

var fixedNames = map[string]nameKind{
	"webhook.event.id":        nameEventID,
	"webhook.event.type":      nameEventType,
	"webhook.request.method":  nameRequestMethod,
	"webhook.request.host":    nameRequestHost,
	"webhook.request.path":    nameRequestPath,
	"webhook.response.status": nameResponseStatus,
	"webhook.request.body":    nameRequestBody,
	"webhook.response.body":   nameResponseBody,
}

// parseName returns what a placeholder name refers to and its argument,
// such as the header field of webhook.request.header.X-Tenant. Names that
// this package does not resolve, including malformed webhook.* names,
// return nameUnknown.
func parseName(name string) (nameKind, string) {
	if !strings.HasPrefix(name, namePrefix) {
		return nameUnknown, ""
	}
	if kind, ok := fixedNames[name]; ok {
		return kind, ""
	}
	if arg, ok := strings.CutPrefix(name, "webhook.request.query."); ok && arg != "" {
		return nameRequestQuery, arg
	}
	if arg, ok := strings.CutPrefix(name, "webhook.request.header."); ok && arg != "" {
		return nameRequestHeader, arg
	}
	if arg, ok := strings.CutPrefix(name, "webhook.response.header."); ok && arg != "" {
		return nameResponseHeader, arg
	}
	if path, ok := bodyPath(name, "webhook.request.body"); ok {
		return nameRequestBody, path
	}
	if path, ok := bodyPath(name, "webhook.response.body"); ok {
		return nameResponseBody, path
	}
	return nameUnknown, ""
}

// bodyPath returns the JSON path of a body placeholder such as
// webhook.response.body.items[0].sku or webhook.response.body[0].id. It
// reports false for other names and for paths with an empty part, which
// Lookup never finds.
func bodyPath(name, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return "", false
	}
	switch rest[0] {
	case '.':
		rest = rest[1:]
	case '[':
	default:
		return "", false
	}
	if rest == "" || strings.HasPrefix(rest, ".") || strings.HasSuffix(rest, ".") || strings.Contains(rest, "..") {
		return "", false
	}
	return rest, true
}

// ReadsRequestBody reports whether the placeholder name reads the request
// body, so that the body must be captured for it.
func ReadsRequestBody(name string) bool {
	kind, _ := parseName(name)
	return kind == nameRequestBody
}

// ReadsResponseBody reports whether the placeholder name reads the response
// body, so that the body must be captured for it.
func ReadsResponseBody(name string) bool {
	kind, _ := parseName(name)
	return kind == nameResponseBody
}

// CheckName returns an error for a name that starts with "webhook." but is
// not one that Exchange.Resolver resolves, such as a misspelled one. Other
// names belong to the fallback resolver and are not checked.
func CheckName(name string) error {
	if !strings.HasPrefix(name, namePrefix) {
		return nil
	}
	if kind, _ := parseName(name); kind != nameUnknown {
		return nil
	}
	return fmt.Errorf("unknown placeholder {%s}: use webhook.event.id, webhook.event.type, "+
		"webhook.request.method, webhook.request.host, webhook.request.path, webhook.request.query.<name>, "+
		"webhook.request.header.<field>, webhook.request.body, webhook.request.body.<path>, "+
		"webhook.response.status, webhook.response.header.<field>, webhook.response.body "+
		"or webhook.response.body.<path>, where a path such as items.0.sku or items[0].sku has no empty part", name)
}

// Resolver returns a resolver for the webhook.* placeholders of x, which
// passes every other name to fallback. A nil fallback resolves nothing.
// Each body is decoded at most once, by a sync.Once, when a placeholder
// first reads it. The resolver may be used by several
// goroutines at once, and x must not change while it is in use.
//
// The values are:
//
//   - webhook.event.id, webhook.event.type, webhook.request.method,
//     webhook.request.host and webhook.request.path: strings.
//   - webhook.response.status: a number.
//   - webhook.request.query.<name>: the first value of the query parameter.
//   - webhook.request.header.<field> and webhook.response.header.<field>:
//     the values of the captured header field joined with ", ".
//   - webhook.request.body and webhook.response.body: the body as a JSON
//     value when it is complete, valid JSON in UTF-8, and otherwise as
//     text, cut at the last complete character when it is truncated. An
//     empty body, or a request body that was not captured, has no value.
//   - webhook.request.body.<path> and webhook.response.body.<path>: the
//     value at the path (see placeholder.Lookup) of a JSON body. A body
//     that is truncated or not JSON has no value at any path.
//
// A query parameter, header field or path that is not there has no value.
func (x *Exchange) Resolver(fallback placeholder.Resolver) placeholder.Resolver {
	return &exchangeResolver{
		x:        x,
		fallback: fallback,
		request:  lazyBody{raw: x.Request.Body, truncated: x.Request.BodyTruncated, captured: x.Request.BodyCaptured},
		response: lazyBody{raw: x.Response.Body, truncated: x.Response.BodyTruncated, captured: true},
	}
}

type exchangeResolver struct {
	x        *Exchange
	fallback placeholder.Resolver
	request  lazyBody
	response lazyBody
}

func (r *exchangeResolver) Resolve(name string) (any, bool) {
	kind, arg := parseName(name)
	switch kind {
	case nameEventID:
		return r.x.EventID, true
	case nameEventType:
		return r.x.EventType, true
	case nameRequestMethod:
		return r.x.Request.Method, true
	case nameRequestHost:
		return r.x.Request.Host, true
	case nameRequestPath:
		return r.x.Request.Path, true
	case nameRequestQuery:
		values := r.x.Request.Query[arg]
		if len(values) == 0 {
			return nil, false
		}
		return values[0], true
	case nameRequestHeader:
		return headerValue(r.x.Request.Header, arg)
	case nameRequestBody:
		return r.request.resolve(arg)
	case nameResponseStatus:
		return r.x.Response.Status, true
	case nameResponseHeader:
		return headerValue(r.x.Response.Header, arg)
	case nameResponseBody:
		return r.response.resolve(arg)
	}
	if r.fallback == nil {
		return nil, false
	}
	return r.fallback.Resolve(name)
}

// headerValue returns the values of a header field joined with ", ", the
// form in which HTTP allows several field lines to be combined.
func headerValue(h http.Header, field string) (any, bool) {
	values := h[http.CanonicalHeaderKey(field)]
	if values == nil {
		values = h[field]
	}
	if len(values) == 0 {
		return nil, false
	}
	if len(values) == 1 {
		return values[0], true
	}
	return strings.Join(values, ", "), true
}

// lazyBody decodes a captured body on first use.
type lazyBody struct {
	raw       []byte
	truncated bool
	captured  bool

	once    sync.Once
	whole   any // the value of the whole body
	present bool
	isJSON  bool // whether whole is decoded JSON, which paths can read
}

func (b *lazyBody) resolve(path string) (any, bool) {
	b.once.Do(b.decode)
	if !b.present {
		return nil, false
	}
	if path == "" {
		return b.whole, true
	}
	if !b.isJSON {
		return nil, false
	}
	return placeholder.Lookup(b.whole, path)
}

// decode sets whole with the rules of the default envelope's body: JSON
// only when complete and valid UTF-8, otherwise text.
func (b *lazyBody) decode() {
	if !b.captured || len(b.raw) == 0 {
		return
	}
	b.present = true
	if !b.truncated && utf8.Valid(b.raw) && json.Valid(b.raw) {
		if v, err := decodeValue(b.raw); err == nil {
			b.whole, b.isJSON = v, true
			return
		}
	}
	text := b.raw
	if b.truncated {
		text = trimPartialRune(text)
	}
	b.whole = string(text)
}
