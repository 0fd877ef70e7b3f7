package webhooks

import (
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/caddy-webhooks/caddy-webhooks/capture"
	"github.com/caddy-webhooks/caddy-webhooks/payload"
)

// maxCaptureBody is the largest max_body a rule may set. An event carries
// up to two bodies, and base64 makes a binary body a third larger, while
// JetStream stores at most 1 MiB per message by default.
const maxCaptureBody = 256 << 10

// Capture selects what an event keeps of the request and response besides
// the method, host, path, query and status, which every event has.
type Capture struct {
	// RequestBody keeps the start of the request body, read as the next
	// handler reads it, so the upstream still receives the body unchanged.
	// Default: false.
	RequestBody bool `json:"request_body,omitempty"`

	// ResponseBody keeps the start of the response body, decoded from its
	// Content-Encoding. Default: true.
	ResponseBody *bool `json:"response_body,omitempty"`

	// RequestHeaders lists request header fields to keep. "*" keeps every
	// field except Authorization, Cookie, Set-Cookie and
	// Proxy-Authorization, which are kept only when listed by name.
	// Default: none.
	RequestHeaders []string `json:"request_headers,omitempty"`

	// ResponseHeaders lists response header fields to keep, with the same
	// rules as RequestHeaders. Default: none.
	ResponseHeaders []string `json:"response_headers,omitempty"`

	// MaxBody is the maximum number of bytes kept of each body, from 1 to
	// 262144 (256 KiB). Longer bodies pass through whole, and the event
	// keeps their first MaxBody bytes and marks them truncated. Default:
	// 65536 (64 KiB).
	MaxBody int `json:"max_body,omitempty"`
}

// sensitiveHeaders are kept only when named, never through "*".
var sensitiveHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization", "Set-Cookie"}

// headerSelection is a set of header fields to keep.
type headerSelection struct {
	all   bool
	names []string // canonical, sorted, without duplicates
}

func newHeaderSelection(fields []string) (headerSelection, error) {
	var sel headerSelection
	for _, field := range fields {
		if field == "*" {
			sel.all = true
			continue
		}
		if !httpguts.ValidHeaderFieldName(field) {
			return sel, fmt.Errorf("invalid header field name %q: use a name such as X-Tenant-Id, or * for every field but credentials", field)
		}
		sel.add(field)
	}
	return sel, nil
}

func (sel *headerSelection) add(field string) {
	name := textproto.CanonicalMIMEHeaderKey(field)
	if i, found := slices.BinarySearch(sel.names, name); !found {
		sel.names = slices.Insert(sel.names, i, name)
	}
}

func (sel headerSelection) empty() bool {
	return !sel.all && len(sel.names) == 0
}

// union returns a selection of the fields of both.
func (sel headerSelection) union(other headerSelection) headerSelection {
	out := headerSelection{all: sel.all || other.all, names: slices.Clone(sel.names)}
	for _, name := range other.names {
		out.add(name)
	}
	return out
}

// pick copies the selected fields of h. It returns nil when none is present.
func (sel headerSelection) pick(h http.Header) http.Header {
	if sel.empty() || len(h) == 0 {
		return nil
	}
	var out http.Header
	keep := func(name string, values []string) {
		if out == nil {
			out = make(http.Header)
		}
		out[name] = slices.Clone(values)
	}
	if sel.all {
		for name, values := range h {
			if !slices.Contains(sensitiveHeaders, name) || slices.Contains(sel.names, name) {
				keep(name, values)
			}
		}
		return out
	}
	for _, name := range sel.names {
		if values, ok := h[name]; ok {
			keep(name, values)
		}
	}
	return out
}

// capturePlan is the capture setting of one rule: its Capture config plus
// the bodies and header fields its payload template reads.
type capturePlan struct {
	requestBody     bool
	responseBody    bool
	requestHeaders  headerSelection
	responseHeaders headerSelection
	maxBody         int

	// recordedFields are the response header fields the recorder copies:
	// the captured ones, those the response matcher reads, and
	// Content-Encoding for decoding the body.
	recordedFields headerSelection
}

// defaultCapturePlan keeps the start of the response body only.
var defaultCapturePlan = capturePlan{responseBody: true, maxBody: capture.DefaultMaxBody}

// newCapturePlan checks c and returns the plan for it, adding the bodies and
// header fields that the template's placeholders read. A template that
// reads a body that c turns off is an error.
func newCapturePlan(c *Capture, template *payload.Template) (capturePlan, error) {
	plan := defaultCapturePlan
	responseBodyOff := false
	if c != nil {
		if c.MaxBody < 0 || c.MaxBody > maxCaptureBody {
			return plan, fmt.Errorf("invalid capture max_body %d: use a size from 1 byte to 256KiB", c.MaxBody)
		}
		if c.MaxBody > 0 {
			plan.maxBody = c.MaxBody
		}
		plan.requestBody = c.RequestBody
		if c.ResponseBody != nil {
			plan.responseBody = *c.ResponseBody
			responseBodyOff = !*c.ResponseBody
		}
		var err error
		if plan.requestHeaders, err = newHeaderSelection(c.RequestHeaders); err != nil {
			return plan, fmt.Errorf("capture request_headers: %w", err)
		}
		if plan.responseHeaders, err = newHeaderSelection(c.ResponseHeaders); err != nil {
			return plan, fmt.Errorf("capture response_headers: %w", err)
		}
	}
	if template == nil {
		return plan, nil
	}

	for _, name := range template.Names() {
		switch {
		case payload.ReadsRequestBody(name):
			plan.requestBody = true
		case payload.ReadsResponseBody(name):
			if responseBodyOff {
				return plan, fmt.Errorf("payload reads {%s} but capture turns the response body off: remove 'response_body off' (or 'none') from capture, or the placeholder from the payload", name)
			}
			plan.responseBody = true
		case strings.HasPrefix(name, "webhook.request.header."):
			field := strings.TrimPrefix(name, "webhook.request.header.")
			if !httpguts.ValidHeaderFieldName(field) {
				return plan, fmt.Errorf("payload placeholder {%s}: invalid header field name %q", name, field)
			}
			plan.requestHeaders.add(field)
		case strings.HasPrefix(name, "webhook.response.header."):
			field := strings.TrimPrefix(name, "webhook.response.header.")
			if !httpguts.ValidHeaderFieldName(field) {
				return plan, fmt.Errorf("payload placeholder {%s}: invalid header field name %q", name, field)
			}
			plan.responseHeaders.add(field)
		}
	}
	return plan, nil
}

// union returns a plan that keeps everything either plan keeps, so that
// one capture serves every rule that matched a request.
func (p capturePlan) union(other capturePlan) capturePlan {
	return capturePlan{
		requestBody:     p.requestBody || other.requestBody,
		responseBody:    p.responseBody || other.responseBody,
		requestHeaders:  p.requestHeaders.union(other.requestHeaders),
		responseHeaders: p.responseHeaders.union(other.responseHeaders),
		maxBody:         max(p.maxBody, other.maxBody),
		recordedFields:  p.recordedFields.union(other.recordedFields),
	}
}

// recordFieldsOf sets the response header fields the recorder copies for
// a rule whose response matcher reads matcherFields.
func (p *capturePlan) recordFieldsOf(matcherFields http.Header) {
	p.recordedFields = p.responseHeaders.union(headerSelection{names: []string{"Content-Encoding"}})
	for field := range matcherFields {
		p.recordedFields.add(field)
	}
}

// recorderFields returns the field names for capture.Recorder's
// KeepHeaderFields: nil, which copies the whole header, when every field
// is captured.
func (p capturePlan) recorderFields() []string {
	if p.recordedFields.all || len(p.recordedFields.names) == 0 {
		return nil
	}
	return p.recordedFields.names
}

// responseMax returns how many response body bytes the recorder keeps.
func (p capturePlan) responseMax() int {
	if !p.responseBody {
		return 0
	}
	return p.maxBody
}

// view returns the part of x that this plan keeps. x was captured with a
// plan that keeps at least as much.
func (p capturePlan) view(x *payload.Exchange) *payload.Exchange {
	v := *x
	v.Request.Header = p.requestHeaders.pick(x.Request.Header)
	v.Response.Header = p.responseHeaders.pick(x.Response.Header)

	if p.requestBody {
		v.Request.Body, v.Request.BodyTruncated = cutBody(x.Request.Body, x.Request.BodyTruncated, p.maxBody)
	} else {
		v.Request.Body, v.Request.BodyTruncated, v.Request.BodyCaptured = nil, false, false
	}
	if p.responseBody {
		v.Response.Body, v.Response.BodyTruncated = cutBody(x.Response.Body, x.Response.BodyTruncated, p.maxBody)
	} else {
		v.Response.Body, v.Response.BodyTruncated = nil, false
	}
	return &v
}

func cutBody(body []byte, truncated bool, maxBody int) ([]byte, bool) {
	if len(body) > maxBody {
		return body[:maxBody], true
	}
	return body, truncated
}
