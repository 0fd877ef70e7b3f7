// Package payload builds the JSON bodies of events from an observed HTTP
// exchange.
package payload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
func Default(x *Exchange) ([]byte, error) {
	query := x.Request.Query
	if query == nil {
		query = url.Values{}
	}
	request := envelopeRequest{
		Method:  x.Request.Method,
		Host:    x.Request.Host,
		Path:    x.Request.Path,
		Query:   query,
		Headers: headerObject(x.Request.Header),
	}
	if x.Request.BodyCaptured {
		request.Body, request.BodyEncoding = encodeBody(x.Request.Body, x.Request.BodyTruncated)
		request.BodyTruncated = x.Request.BodyTruncated
	}

	body, encoding := encodeBody(x.Response.Body, x.Response.BodyTruncated)
	env := envelope{
		Type:      x.EventType,
		Timestamp: x.Timestamp.UTC().Format(TimestampLayout),
		Data: envelopeData{
			Request: request,
			Response: envelopeResponse{
				Status:        x.Response.Status,
				Headers:       headerObject(x.Response.Header),
				Body:          body,
				BodyEncoding:  encoding,
				BodyTruncated: x.Response.BodyTruncated,
			},
		},
	}
	return marshal(env)
}

// headerObject returns h with canonical field names, merging fields that
// differ only in case and leaving out fields without values. It returns
// nil when nothing is left, so that the envelope has no "headers".
func headerObject(h http.Header) map[string][]string {
	var out map[string][]string
	for name, values := range h {
		if len(values) == 0 {
			continue
		}
		if out == nil {
			out = make(map[string][]string, len(h))
		}
		canonical := http.CanonicalHeaderKey(name)
		out[canonical] = append(out[canonical], values...)
	}
	return out
}

type envelope struct {
	Type      string       `json:"type"`
	Timestamp string       `json:"timestamp"`
	Data      envelopeData `json:"data"`
}

type envelopeData struct {
	Request  envelopeRequest  `json:"request"`
	Response envelopeResponse `json:"response"`
}

type envelopeRequest struct {
	Method        string              `json:"method"`
	Host          string              `json:"host"`
	Path          string              `json:"path"`
	Query         map[string][]string `json:"query"`
	Headers       map[string][]string `json:"headers,omitempty"`
	Body          any                 `json:"body,omitempty"`
	BodyEncoding  string              `json:"body_encoding,omitempty"`
	BodyTruncated bool                `json:"body_truncated,omitempty"`
}

type envelopeResponse struct {
	Status        int                 `json:"status"`
	Headers       map[string][]string `json:"headers,omitempty"`
	Body          any                 `json:"body,omitempty"`
	BodyEncoding  string              `json:"body_encoding,omitempty"`
	BodyTruncated bool                `json:"body_truncated,omitempty"`
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
