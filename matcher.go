package webhooks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
	"github.com/caddy-webhooks/caddy-webhooks/payload"
)

// Rule maps matching requests and responses to an event type. A request
// matches when any of the request matcher sets matches it, and its response
// must then match the response matcher.
type Rule struct {
	// Event is the type of the events this rule emits, such as
	// "order.created": dot-separated tokens of letters, digits, '_' and '-'.
	// It becomes part of the NATS subject, and destinations subscribe to it.
	// Several rules may emit the same event type. Required.
	Event string `json:"event"`

	// Description is a text for subscribers that explains what the event
	// means. It appears in the event catalogue and changes nothing else.
	Description string `json:"description,omitempty"`

	// MatcherSetsRaw is a list of request matcher sets, as in a route's
	// "match": the rule applies when any set matches, and a set matches
	// when all its matchers do. Every Caddy request matcher can be used.
	// Requests are matched before they go to the next handler. Default:
	// every request matches.
	MatcherSetsRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	// Response is the response matcher: status codes, where a single digit
	// stands for its class (2 matches every 2xx), and response header
	// fields. When Response is null or has no status codes, only 2xx
	// responses match. Default: every 2xx response matches.
	Response *caddyhttp.ResponseMatcher `json:"response,omitempty"`

	// Capture selects what the event keeps of the request and response.
	// Default: the first 64 KiB of the response body.
	Capture *Capture `json:"capture,omitempty"`

	// Payload is a JSON template that replaces the data of the default
	// envelope. A string that is exactly one placeholder, such as
	// "{webhook.response.body.id}", becomes that value with its JSON type,
	// or null when it has none. Placeholders inside longer strings are
	// replaced as text, and by nothing when they have no value. Besides
	// Caddy's placeholders, it can use webhook.event.id, webhook.event.type,
	// webhook.request.method, webhook.request.host, webhook.request.path,
	// webhook.request.query.<name>, webhook.response.status,
	// webhook.request.header.<field>, webhook.response.header.<field>,
	// webhook.request.body.<path> and webhook.response.body.<path>, where a
	// path such as items.0.sku or items[0].sku reads a JSON body. The
	// bodies and header fields that it reads are captured for it. Default:
	// the request line, status and response body as data.
	Payload json.RawMessage `json:"payload,omitempty"`

	matcherSets caddyhttp.MatcherSets
	response    caddyhttp.ResponseMatcher
	template    *payload.Template
	capture     capturePlan
}

// defaultStatusClasses are the status codes a rule matches when it sets
// none: the 2xx class.
var defaultStatusClasses = []int{2}

// provision loads the rule's request matchers and sets up its response
// matcher.
func (rule *Rule) provision(ctx caddy.Context) error {
	if rule.MatcherSetsRaw != nil {
		mods, err := ctx.LoadModule(rule, "MatcherSetsRaw")
		if err != nil {
			return fmt.Errorf("loading request matchers: %w", err)
		}
		if err := rule.matcherSets.FromInterface(mods); err != nil {
			return fmt.Errorf("setting up request matchers: %w", err)
		}
	}

	if rule.Response != nil {
		rule.response = *rule.Response
	}
	if len(rule.response.StatusCode) == 0 {
		rule.response.StatusCode = defaultStatusClasses
	}

	if len(rule.Payload) > 0 {
		template, err := payload.CompileTemplate(rule.Payload)
		if err != nil {
			return fmt.Errorf("compiling payload template: %w", err)
		}
		rule.template = template
	}
	plan, err := newCapturePlan(rule.Capture, rule.template)
	if err != nil {
		return err
	}
	plan.recordFieldsOf(rule.response.Headers)
	rule.capture = plan
	return nil
}

// validate checks the event type and the response status codes.
func (rule *Rule) validate() error {
	if err := emitter.ValidateEventType(rule.Event); err != nil {
		return err
	}
	if strings.HasPrefix(rule.Event, "webhooks.") {
		return fmt.Errorf("event type %q starts with webhooks., which is reserved for the events of the webhooks app itself: choose another first token", rule.Event)
	}
	if rule.Response != nil {
		for _, code := range rule.Response.StatusCode {
			if err := validateStatus(code); err != nil {
				return err
			}
		}
	}
	return nil
}

// matchRequest reports whether the request matches the rule's request
// matchers. A matcher's error is returned as it is, as Caddy's routes do,
// so that it reaches the error handlers with its own status.
func (rule *Rule) matchRequest(r *http.Request) (bool, error) {
	return rule.matcherSets.AnyMatchWithError(r)
}

// matchResponse reports whether the final status and response header
// match the rule's response matcher.
func (rule *Rule) matchResponse(status int, header http.Header) bool {
	return rule.response.Match(status, header)
}

// validateStatus checks that code is an HTTP status code from 100 to 599
// or a status class from 1 to 5.
func validateStatus(code int) error {
	if (code >= 1 && code <= 5) || (code >= 100 && code <= 599) {
		return nil
	}
	return fmt.Errorf("invalid status code %d: use a code from 100 to 599, or a class from 1 to 5 (2 matches every 2xx)", code)
}
