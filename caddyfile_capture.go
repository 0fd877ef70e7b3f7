package webhooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/caddy-webhooks/caddy-webhooks/payload"
)

// parseCapture parses the capture subdirective of an event rule:
//
//	capture none | <item...>
//	capture {
//		request_body
//		response_body [on|off]
//		request_header <field...>
//		response_header <field...>
//		max_body <size>
//		none
//	}
//
// The items on the capture line are request_body, response_body and none.
// Capture keeps the response body unless response_body off or none is
// given. none keeps nothing at all, so it cannot be combined with other
// items.
func (p *eventRuleParser) parseCapture(d *caddyfile.Dispenser) error {
	if p.rule.Capture != nil {
		return d.Errf("event %q: capture is given twice: put every item in one capture block", p.rule.Event)
	}
	c := new(Capture)
	p.rule.Capture = c
	none := false

	for d.NextArg() {
		switch d.Val() {
		case "request_body":
			c.RequestBody = true
		case "response_body":
			c.ResponseBody = boolPointer(true)
		case "none":
			none = true
		default:
			return d.Errf("event %q: unrecognized capture item %q on the capture line: use request_body, response_body or none, and put request_header, response_header and max_body in a capture block",
				p.rule.Event, d.Val())
		}
	}

	for nesting := d.Nesting(); d.NextBlock(nesting); {
		item := d.Val()
		args := d.RemainingArgs()
		switch item {
		case "request_body":
			if len(args) != 0 {
				return d.Errf("event %q: capture request_body takes no arguments, got %q", p.rule.Event, strings.Join(args, " "))
			}
			c.RequestBody = true
		case "response_body":
			on, err := parseOnOff(args)
			if err != nil {
				return d.Errf("event %q: capture response_body: %v", p.rule.Event, err)
			}
			c.ResponseBody = boolPointer(on)
		case "request_header", "response_header":
			if len(args) == 0 {
				return d.Errf("event %q: capture %s needs at least one field name, such as '%s X-Request-Id', or * for every field but credentials",
					p.rule.Event, item, item)
			}
			if item == "request_header" {
				c.RequestHeaders = append(c.RequestHeaders, args...)
			} else {
				c.ResponseHeaders = append(c.ResponseHeaders, args...)
			}
		case "max_body":
			if len(args) != 1 {
				return d.Errf("event %q: capture max_body takes one size, such as 'max_body 128KiB'", p.rule.Event)
			}
			size, err := humanize.ParseBytes(args[0])
			if err != nil || size == 0 || size > maxCaptureBody {
				return d.Errf("event %q: invalid capture max_body %q: use a size from 1B to 256KiB, such as 128KiB", p.rule.Event, args[0])
			}
			c.MaxBody = int(size)
		case "none":
			if len(args) != 0 {
				return d.Errf("event %q: capture none takes no arguments, got %q", p.rule.Event, strings.Join(args, " "))
			}
			none = true
		default:
			return d.Errf("event %q: unrecognized capture item %q: use request_body, response_body, request_header, response_header, max_body or none",
				p.rule.Event, item)
		}
	}

	if none {
		if c.RequestBody || c.ResponseBody != nil || len(c.RequestHeaders) > 0 || len(c.ResponseHeaders) > 0 || c.MaxBody > 0 {
			return d.Errf("event %q: capture none keeps nothing, so it cannot be combined with other items: remove none, or the other items", p.rule.Event)
		}
		c.ResponseBody = boolPointer(false)
	}
	return nil
}

// parseOnOff reads an optional on or off argument. No argument is on.
func parseOnOff(args []string) (bool, error) {
	switch {
	case len(args) == 0:
		return true, nil
	case len(args) == 1 && args[0] == "on":
		return true, nil
	case len(args) == 1 && args[0] == "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid value %q: use on or off", strings.Join(args, " "))
}

func boolPointer(b bool) *bool { return &b }

// parsePayload parses the payload subdirective of an event rule, a JSON
// template given as one quoted argument (best a heredoc or backticks), as
// unquoted JSON on the payload line, or as a block:
//
//	payload <<JSON
//	{"order_id": "{webhook.response.body.id}"}
//	JSON
//
//	payload {
//		"order_id": "{webhook.response.body.id}",
//		"customer": {
//			"id": "{webhook.request.body.customer.id}"
//		}
//		"status": "{webhook.response.status}"
//	}
//
// In the block, quoted strings are JSON strings, so JSON escapes such as
// \n and \u2028 work in them. A Caddyfile block closes only at a "}" token
// on its own, so the comma after a nested object that ends a line may be
// left out. The template is compiled here, so that errors carry the
// Caddyfile line.
func (p *eventRuleParser) parsePayload(d *caddyfile.Dispenser) error {
	if p.rule.Payload != nil {
		return d.Errf("event %q: payload is given twice: give one JSON template", p.rule.Event)
	}

	segment := d.NextSegment()
	var raw []byte
	switch {
	case len(segment) < 2:
		return d.Errf("event %q: payload needs a JSON template: a block, a heredoc, or JSON in backticks", p.rule.Event)
	case len(segment) == 2 && segment[1].Quoted():
		// One quoted argument, such as a heredoc, holds the JSON as is.
		raw = []byte(segment[1].Text)
	default:
		raw = jsonFromTokens(segment[1:])
	}

	if _, err := payload.CompileTemplate(raw); err != nil {
		return d.Errf("event %q: invalid payload template: %v", p.rule.Event, err)
	}
	p.rule.Payload = json.RawMessage(bytes.TrimSpace(raw))
	return nil
}

// jsonFromTokens rebuilds JSON text from the tokens of a payload block,
// which start with its "{" and end with its "}". Unquoted tokens are JSON
// text as written. Quoted tokens are the contents of JSON strings, in which
// the Caddyfile lexer has turned \" into ", so quotes and control
// characters are escaped again. A comma is added after a "}" token when a
// value follows it.
func jsonFromTokens(tokens []caddyfile.Token) []byte {
	var buf bytes.Buffer
	for i, tok := range tokens {
		if i > 0 {
			buf.WriteByte(' ')
		}
		if !tok.Quoted() {
			buf.WriteString(tok.Text)
		} else {
			writeJSONStringContent(&buf, tok.Text)
		}

		if tok.Text == "}" && !tok.Quoted() && i+1 < len(tokens) {
			next := tokens[i+1]
			if next.Quoted() || !strings.HasPrefix(next.Text, "}") && !strings.HasPrefix(next.Text, "]") && !strings.HasPrefix(next.Text, ",") {
				buf.WriteByte(',')
			}
		}
	}
	return buf.Bytes()
}

// writeJSONStringContent writes s as a JSON string whose escapes other
// than \" were left in s as written.
func writeJSONStringContent(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			buf.WriteString(`\"`)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '\r':
			buf.WriteString(`\r`)
		case c == '\t':
			buf.WriteString(`\t`)
		case c < 0x20:
			fmt.Fprintf(buf, `\u%04x`, c)
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}
