package payload

import (
	"fmt"
	"net/textproto"
	"strings"

	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

// Names that only a stored event resolves.
const (
	storedTimestampName = "webhook.event.timestamp"
	storedDataName      = "webhook.data"
)

// CheckStoredName returns an error for a webhook.* name that
// StoredResolver does not resolve. Other names belong to the fallback
// resolver and are not checked.
func CheckStoredName(name string) error {
	if !strings.HasPrefix(name, namePrefix) || name == storedTimestampName || name == storedDataName {
		return nil
	}
	if _, ok := dataPath(name); ok {
		return nil
	}
	if kind, _ := parseName(name); kind != nameUnknown {
		return nil
	}
	return fmt.Errorf("unknown placeholder {%s}: use webhook.event.id, webhook.event.type, webhook.event.timestamp, "+
		"webhook.data or webhook.data.<path>, or, for events with the default payload, webhook.request.*, "+
		"webhook.response.status, webhook.response.header.<field> or webhook.response.body.<path>", name)
}

// StoredResolver returns a resolver for the webhook.* placeholders of a
// stored event, for texts rendered at delivery time such as e-mail
// subjects. It passes every other name to fallback, and a nil fallback
// resolves nothing.
//
// webhook.event.id is eventID. webhook.event.type, webhook.event.timestamp
// and webhook.data.<path> come from the envelope. The request and response
// names of Exchange.Resolver read the default envelope's data, so they
// have no value in events whose payload template replaced it, and a body
// kept as base64 or cut short has no value at any path. A payload that is
// not a JSON envelope resolves only webhook.event.id.
func StoredResolver(eventID string, stored []byte, fallback placeholder.Resolver) placeholder.Resolver {
	r := &storedResolver{eventID: eventID, fallback: fallback}
	if v, err := decodeValue(stored); err == nil {
		r.envelope, _ = v.(map[string]any)
	}
	return r
}

type storedResolver struct {
	eventID  string
	envelope map[string]any
	fallback placeholder.Resolver
}

func (r *storedResolver) Resolve(name string) (any, bool) {
	if !strings.HasPrefix(name, namePrefix) {
		if r.fallback == nil {
			return nil, false
		}
		return r.fallback.Resolve(name)
	}

	switch name {
	case "webhook.event.id":
		return r.eventID, true
	case "webhook.event.type":
		return r.field("type")
	case storedTimestampName:
		return r.field("timestamp")
	case storedDataName:
		return r.field("data")
	}
	if path, ok := dataPath(name); ok {
		return r.lookup("data." + path)
	}

	kind, arg := parseName(name)
	switch kind {
	case nameRequestMethod:
		return r.lookup("data.request.method")
	case nameRequestHost:
		return r.lookup("data.request.host")
	case nameRequestPath:
		return r.lookup("data.request.path")
	case nameRequestQuery:
		return r.first(r.lookup("data.request.query." + arg))
	case nameRequestHeader:
		return r.header("request", arg)
	case nameRequestBody:
		return r.body("request", arg)
	case nameResponseStatus:
		return r.lookup("data.response.status")
	case nameResponseHeader:
		return r.header("response", arg)
	case nameResponseBody:
		return r.body("response", arg)
	}
	return nil, false
}

func (r *storedResolver) field(key string) (any, bool) {
	v, ok := r.envelope[key]
	return v, ok && v != nil
}

func (r *storedResolver) lookup(path string) (any, bool) {
	if r.envelope == nil {
		return nil, false
	}
	return placeholder.Lookup(r.envelope, path)
}

// first returns the first element of a list of values, such as a query
// parameter's.
func (r *storedResolver) first(v any, ok bool) (any, bool) {
	values, isList := v.([]any)
	if !ok || !isList || len(values) == 0 {
		return nil, false
	}
	return values[0], true
}

// header returns the values of a captured header field joined with ", ",
// as Exchange.Resolver does.
func (r *storedResolver) header(side, field string) (any, bool) {
	v, ok := r.lookup("data." + side + ".headers")
	headers, isObject := v.(map[string]any)
	if !ok || !isObject {
		return nil, false
	}
	values, isList := headers[textproto.CanonicalMIMEHeaderKey(field)].([]any)
	if !isList || len(values) == 0 {
		return nil, false
	}
	texts := make([]string, len(values))
	for i, value := range values {
		texts[i] = placeholder.FormatText(value)
	}
	return strings.Join(texts, ", "), true
}

// body returns a body of the default envelope or a value in it. A body
// kept as base64 has no value, because its text is not the body's.
func (r *storedResolver) body(side, path string) (any, bool) {
	if encoding, _ := r.lookup("data." + side + ".body_encoding"); encoding != nil {
		return nil, false
	}
	if path == "" {
		return r.lookup("data." + side + ".body")
	}
	if strings.HasPrefix(path, "[") {
		return r.lookup("data." + side + ".body" + path)
	}
	return r.lookup("data." + side + ".body." + path)
}

// dataPath returns the path of a webhook.data.<path> name.
func dataPath(name string) (string, bool) {
	return bodyPath(name, storedDataName)
}
