package webhooks

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("webhooks", parseCaddyfile)

	// Ordered right after encode, the handler wraps handle, route,
	// reverse_proxy and the other handlers that write responses, and it
	// receives their bytes before encode compresses them. Users need no
	// order option.
	httpcaddyfile.RegisterDirectiveOrder("webhooks", httpcaddyfile.After, "encode")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	webhooks [<matcher>] {
//		event <type> [<method> <path> [<status...>]] [{
//			<request matcher> <args...>
//			status <codes or classes...>
//			response_header <field> [<value>]
//			description <text>
//			capture none | <item...> | { ... }
//			payload <json> | { ... }
//		}]
//	}
//
// The one-line form takes one method, a path and optional status codes,
// such as "event order.shipped POST /orders/*/ship 2xx". Inside the block,
// status, response_header and description configure the rule, and every
// other line is a Caddy request matcher written as in a named matcher
// (method, path, header, query, expression, not, and so on). Repeated
// matcher lines are merged as in a named matcher. Status codes are codes
// from 100 to 599 or classes such as 2xx. Without any status, the rule
// matches 2xx responses. A response_header without a value requires the
// field to be present, and a field written as !<field> to be absent.
// parseCapture and parsePayload describe capture and payload.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name

	if d.NextArg() {
		return d.Errf("unexpected argument %q after webhooks: put event rules in its block", d.Val())
	}

	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() != "event" {
			return d.Errf("unrecognized webhooks subdirective %q: use 'event <type> { ... }'", d.Val())
		}
		rule, err := parseEventRule(d)
		if err != nil {
			return err
		}
		h.Rules = append(h.Rules, rule)
	}

	if len(h.Rules) == 0 {
		return d.Err("webhooks needs at least one event rule, such as 'event order.created POST /orders 201'")
	}
	return nil
}

// eventRuleParser collects one event rule. Request matcher tokens are kept
// by matcher name so that repeated lines of one matcher are parsed together,
// as Caddy does for named matchers.
type eventRuleParser struct {
	rule          *Rule
	matcherTokens map[string][]caddyfile.Token
}

// parseEventRule parses an event line and its optional block. The
// dispenser is on the "event" token.
func parseEventRule(d *caddyfile.Dispenser) (*Rule, error) {
	if !d.NextArg() {
		return nil, d.Err("missing event type: write 'event <type>', such as 'event order.created'")
	}
	eventType := d.Val()
	if err := emitter.ValidateEventType(eventType); err != nil {
		return nil, d.WrapErr(err)
	}

	p := &eventRuleParser{
		rule:          &Rule{Event: eventType},
		matcherTokens: make(map[string][]caddyfile.Token),
	}
	if err := p.parseOneLine(d); err != nil {
		return nil, err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := p.parseBlockLine(d); err != nil {
			return nil, err
		}
	}
	if err := p.buildMatcherSet(d); err != nil {
		return nil, err
	}
	return p.rule, nil
}

// parseOneLine parses the method, path and status codes that may follow
// the event type on the event line.
func (p *eventRuleParser) parseOneLine(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return nil
	}
	methodToken := d.Token()
	if !d.NextArg() {
		return d.Errf("event %q: after the method %q, the one-line form needs a path, such as 'event %s POST /orders 201'",
			p.rule.Event, methodToken.Text, p.rule.Event)
	}
	pathToken := d.Token()

	method := methodToken.Text
	if strings.HasPrefix(method, "/") {
		return d.Errf("event %q: %q is a path where the method belongs: the order is <type> <method> <path> <status...>",
			p.rule.Event, method)
	}
	if strings.Contains(method, ",") || method != strings.ToUpper(method) {
		return d.Errf("event %q: invalid method %q in the one-line form: give one upper-case method, or use 'method %s' in a block for several",
			p.rule.Event, method, strings.ReplaceAll(strings.ToUpper(method), ",", " "))
	}
	if !strings.HasPrefix(pathToken.Text, "/") && !strings.HasPrefix(pathToken.Text, "*") {
		return d.Errf("event %q: invalid path %q in the one-line form: a path starts with '/' or '*'; the order is <type> <method> <path> <status...>",
			p.rule.Event, pathToken.Text)
	}
	p.addMatcherLine("method", methodToken)
	p.addMatcherLine("path", pathToken)

	return p.parseStatus(d, d.RemainingArgs())
}

// addMatcherLine records a one-line matcher, such as the method of the
// one-line form, as if it had been written as "<name> <value>" in the block.
// The name token copies the value token's position, so that the matcher's
// parser reads both as one line.
func (p *eventRuleParser) addMatcherLine(name string, value caddyfile.Token) {
	nameToken := value.Clone()
	nameToken.Text = name
	p.matcherTokens[name] = append(p.matcherTokens[name], nameToken, value)
}

// parseBlockLine parses one line of the event block, consuming all of it.
func (p *eventRuleParser) parseBlockLine(d *caddyfile.Dispenser) error {
	name := d.Val()
	switch name {
	case "status":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("event %q: status needs at least one code or class, such as 'status 201' or 'status 2xx'", p.rule.Event)
		}
		if err := p.parseStatus(d, args); err != nil {
			return err
		}
		return p.rejectBlock(d, name)

	case "description":
		if !d.NextArg() {
			return d.Errf("event %q: description needs a text, such as 'description \"A customer placed an order\"'", p.rule.Event)
		}
		p.rule.Description = d.Val()
		if d.NextArg() {
			return d.Errf("event %q: unexpected argument %q after the description: put the whole text in quotes", p.rule.Event, d.Val())
		}
		return p.rejectBlock(d, name)

	case "response_header":
		if err := p.parseResponseHeader(d); err != nil {
			return err
		}
		return p.rejectBlock(d, name)

	case "capture":
		return p.parseCapture(d)

	case "payload":
		return p.parsePayload(d)
	}

	// A quoted line is a CEL expression, as in a named matcher.
	if d.Token().Quoted() {
		p.addMatcherLine("expression", d.Token())
		if d.NextArg() {
			return d.Errf("event %q: unexpected argument %q after the quoted expression", p.rule.Event, d.Val())
		}
		return nil
	}

	if _, err := caddy.GetModule("http.matchers." + name); err != nil {
		return d.Errf("unrecognized subdirective or matcher %q in event %q", name, p.rule.Event)
	}
	p.matcherTokens[name] = append(p.matcherTokens[name], d.NextSegment()...)
	return nil
}

// parseStatus adds status codes and classes to the response matcher. Like
// Caddy's response matcher, it reads "2xx" as the class 2.
func (p *eventRuleParser) parseStatus(d *caddyfile.Dispenser, args []string) error {
	for _, arg := range args {
		code := arg
		if len(code) == 3 && strings.HasSuffix(code, "xx") {
			code = code[:1]
		}
		n, err := strconv.Atoi(code)
		if err == nil {
			err = validateStatus(n)
		}
		if err != nil {
			return d.Errf("event %q: invalid status %q: use a code from 100 to 599 or a class from 1xx to 5xx", p.rule.Event, arg)
		}
		p.response().StatusCode = append(p.response().StatusCode, n)
	}
	return nil
}

// parseResponseHeader parses "response_header <field> [<value>]". Values
// may use the wildcards of Caddy's header matcher ("*", "prefix*",
// "*suffix", "*substring*").
func (p *eventRuleParser) parseResponseHeader(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 2 {
		return d.Errf("event %q: response_header takes a field and an optional value, such as 'response_header Content-Type application/json'; got %d arguments",
			p.rule.Event, len(args))
	}
	field := args[0]
	headers := p.responseHeaders()

	if negated, ok := strings.CutPrefix(field, "!"); ok {
		if negated == "" || len(args) == 2 {
			return d.Errf("event %q: invalid response_header %q: '!<field>' requires the field to be absent and takes no value", p.rule.Event, strings.Join(args, " "))
		}
		// A null value list means the field must be absent.
		headers[textproto.CanonicalMIMEHeaderKey(negated)] = nil
		return nil
	}

	value := "*"
	if len(args) == 2 {
		value = args[1]
	}
	headers.Add(field, value)
	return nil
}

// buildMatcherSet parses the collected request matcher tokens with each
// matcher's own Caddyfile parser and stores them as the rule's one matcher
// set. Matchers are parsed in name order so that errors do not depend on
// map order.
func (p *eventRuleParser) buildMatcherSet(d *caddyfile.Dispenser) error {
	if len(p.matcherTokens) == 0 {
		return nil
	}

	set := make(caddy.ModuleMap, len(p.matcherTokens))
	for _, name := range slices.Sorted(maps.Keys(p.matcherTokens)) {
		raw, err := p.parseMatcher(d, name, p.matcherTokens[name])
		if err != nil {
			return err
		}
		set[name] = raw
	}
	p.rule.MatcherSetsRaw = caddyhttp.RawMatcherSets{set}
	return nil
}

// parseMatcher unmarshals one request matcher from its tokens and returns
// its JSON.
func (p *eventRuleParser) parseMatcher(d *caddyfile.Dispenser, name string, tokens []caddyfile.Token) (json.RawMessage, error) {
	mod, err := caddy.GetModule("http.matchers." + name)
	if err != nil {
		return nil, d.Errf("unrecognized subdirective or matcher %q in event %q", name, p.rule.Event)
	}
	unmarshaler, ok := mod.New().(caddyfile.Unmarshaler)
	if !ok {
		return nil, d.Errf("event %q: matcher %q cannot be configured in a Caddyfile; use the JSON config", p.rule.Event, name)
	}

	md := caddyfile.NewDispenser(tokens)
	// Regexp matchers name their capture placeholders after the named
	// matcher, which here is the event type with its dots replaced, so that
	// path_regexp in event order.created sets {re.order_created.1}.
	md.SetContext(caddyfile.MatcherNameCtxKey, strings.ReplaceAll(p.rule.Event, ".", "_"))
	if err := unmarshaler.UnmarshalCaddyfile(md); err != nil {
		return nil, err
	}

	switch unmarshaler.(type) {
	case caddyhttp.RequestMatcherWithError, caddyhttp.RequestMatcher: //nolint:staticcheck // older matchers implement only RequestMatcher
	default:
		return nil, d.Errf("event %q: module %q is not a request matcher", p.rule.Event, "http.matchers."+name)
	}

	raw, err := json.Marshal(unmarshaler)
	if err != nil {
		return nil, d.Errf("event %q: encoding matcher %q: %v", p.rule.Event, name, err)
	}
	// A matcher given no value, such as a bare "method", encodes as null,
	// which Caddy would later reject without naming the rule.
	if string(raw) == "null" {
		return nil, d.Errf("event %q: matcher %q needs a value, such as 'method POST'", p.rule.Event, name)
	}
	return raw, nil
}

// response returns the rule's response matcher, creating it on first use.
func (p *eventRuleParser) response() *caddyhttp.ResponseMatcher {
	if p.rule.Response == nil {
		p.rule.Response = new(caddyhttp.ResponseMatcher)
	}
	return p.rule.Response
}

// responseHeaders returns the response matcher's header fields, creating
// them on first use.
func (p *eventRuleParser) responseHeaders() http.Header {
	rm := p.response()
	if rm.Headers == nil {
		rm.Headers = make(http.Header)
	}
	return rm.Headers
}

// rejectBlock returns an error if a block follows the current line, which
// the subdirective name does not take.
func (p *eventRuleParser) rejectBlock(d *caddyfile.Dispenser, name string) error {
	if d.NextBlock(d.Nesting()) {
		return d.Errf("event %q: %s takes no block", p.rule.Event, name)
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
