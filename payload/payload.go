// Package payload builds the JSON bodies of events from an observed HTTP
// exchange.
package payload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// TimestampLayout is the layout of the envelope's timestamp: RFC 3339 in
// UTC with milliseconds, such as "2026-12-04T19:20:00.123Z".
const TimestampLayout = "2006-01-02T15:04:05.000Z07:00"

// Exchange is one observed request and its response, as an event describes
// them.
type Exchange struct {
	// EventID is the event's unique id (a ULID). The default envelope does
	// not contain it, because receivers get it in the webhook-id header.
	EventID string

	// EventType is the event type, such as "order.created".
	EventType string

	// Timestamp is when the handler observed the response.
	Timestamp time.Time

	Request  Request
	Response Response
}

// Request is the part of the request that the envelope describes. Its
// fields are taken before later handlers can rewrite the request.
type Request struct {
	Method string
	Host   string
	Path   string
	Query  url.Values

	// Header contains the captured request header fields only, nil when
	// none were captured.
	Header http.Header

	// Body is the captured start of the request body.
	Body []byte

	// BodyTruncated reports whether the request body was longer than Body.
	BodyTruncated bool

	// BodyCaptured reports whether the request body was captured. When it
	// is false, the envelope and the template placeholders ignore Body.
	BodyCaptured bool
}

// Response is the part of the response that the envelope describes.
type Response struct {
	Status int

	// Header contains the captured response header fields only, nil when
	// none were captured.
	Header http.Header

	// Body is the captured start of the response body.
	Body []byte

	// BodyTruncated reports whether the response body was longer than Body.
	BodyTruncated bool
}

// Default builds the default envelope, which follows the payload shape of
// the Standard Webhooks specification:
//
//	{"type":"order.created","timestamp":"2026-12-04T19:20:00.123Z",
//	 "data":{"request":{"method":"POST","host":"api.example.com","path":"/orders","query":{}},
//	         "response":{"status":201,"body":{"id":42}}}}
//
// The body is embedded as JSON when it is complete, valid JSON in UTF-8. Other
// UTF-8 text becomes a JSON string, and anything else a base64 string with
// "body_encoding": "base64". A truncated body sets "body_truncated": true and
// is never embedded as JSON. An empty body leaves out the body field.
//
// Captured header fields appear as "headers", an object of canonical field
// names and their values, in the request and the response. A captured
// request body appears in the request with the same rules as the response
// body.
//
// Default writes the envelope in one pass, with the same bytes as
// encoding/json with HTML escaping off: object keys in the order above,
// map keys sorted, strings escaped as encoding/json does, and a JSON body
// compacted while it is checked.
func Default(x *Exchange) ([]byte, error) {
	size := envelopeBaseSize + len(x.Response.Body)
	if x.Request.BodyCaptured {
		size += len(x.Request.Body)
	}
	buf := make([]byte, 0, size)

	buf = append(buf, `{"type":`...)
	buf = appendJSONString(buf, x.EventType)
	buf = append(buf, `,"timestamp":"`...)
	buf = x.Timestamp.UTC().AppendFormat(buf, TimestampLayout)
	buf = append(buf, `","data":{"request":{"method":`...)
	buf = appendJSONString(buf, x.Request.Method)
	buf = append(buf, `,"host":`...)
	buf = appendJSONString(buf, x.Request.Host)
	buf = append(buf, `,"path":`...)
	buf = appendJSONString(buf, x.Request.Path)
	buf = append(buf, `,"query":`...)
	buf = appendValues(buf, x.Request.Query)
	buf = appendHeaders(buf, x.Request.Header)
	if x.Request.BodyCaptured {
		buf = appendBody(buf, x.Request.Body, x.Request.BodyTruncated)
	}

	buf = append(buf, `},"response":{"status":`...)
	buf = strconv.AppendInt(buf, int64(x.Response.Status), 10)
	buf = appendHeaders(buf, x.Response.Header)
	buf = appendBody(buf, x.Response.Body, x.Response.BodyTruncated)
	buf = append(buf, "}}}"...)
	return buf, nil
}

// envelopeBaseSize is an estimate of the envelope's size without its
// bodies, so that most envelopes need a single allocation.
const envelopeBaseSize = 320

// appendHeaders appends the "headers" member of a request or response, or
// nothing when h has no field with a value.
func appendHeaders(buf []byte, h http.Header) []byte {
	headers := headerObject(h)
	if len(headers) == 0 {
		return buf
	}
	buf = append(buf, `,"headers":`...)
	return appendValues(buf, headers)
}

// appendValues appends m as a JSON object with sorted keys, each value an
// array of strings, or null for a nil slice as encoding/json writes it. A
// nil map becomes {}.
func appendValues(buf []byte, m map[string][]string) []byte {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)

	buf = append(buf, '{')
	for i, key := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, key)
		buf = append(buf, ':')
		values := m[key]
		if values == nil {
			buf = append(buf, "null"...)
			continue
		}
		buf = append(buf, '[')
		for j, v := range values {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, v)
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

// headerObject returns h with canonical field names, merging fields that
// differ only in case and leaving out fields without values. Merged fields
// keep their values in the byte order of their names, so the result does
// not depend on the order of map iteration. It returns nil when nothing is
// left, so that the envelope has no "headers".
func headerObject(h http.Header) map[string][]string {
	var out map[string][]string
	add := func(name string, values []string) {
		if len(values) == 0 {
			return
		}
		if out == nil {
			out = make(map[string][]string, len(h))
		}
		canonical := http.CanonicalHeaderKey(name)
		out[canonical] = append(out[canonical], values...)
	}

	if !hasNonCanonicalName(h) {
		for name, values := range h {
			add(name, values)
		}
		return out
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		add(name, h[name])
	}
	return out
}

// hasNonCanonicalName reports whether a field name of h is not in canonical
// form, which net/http uses for every header it parses.
func hasNonCanonicalName(h http.Header) bool {
	for name := range h {
		if http.CanonicalHeaderKey(name) != name {
			return true
		}
	}
	return false
}

// marshal encodes v without escaping <, > and & so that bodies stay
// readable. The result has no trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding event envelope: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
