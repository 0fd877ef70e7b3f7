package webhooks

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-webhooks/caddy-webhooks/capture"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
	"github.com/caddy-webhooks/caddy-webhooks/payload"
	"github.com/caddy-webhooks/caddy-webhooks/placeholder"
)

func init() {
	caddy.RegisterModule(new(Handler))
}

// eventSink queues events for publishing. Emit must not block.
type eventSink interface {
	Emit(ev *emitter.Event)

	// observationStarted and observationEnded bracket every observed
	// request, so the sink can keep its broker until their events are in.
	observationStarted()
	observationEnded()
}

// Handler is an HTTP middleware that turns API calls into events. It checks
// each rule's request matchers before calling the next handler. Requests
// that no rule matches pass through untouched. For the others it records the
// response as it streams to the client, and once the next handler returns it
// emits one event for every rule whose response matcher matches too. The
// response goes to the client unbuffered and unchanged. Emitting cannot fail
// the request: an event whose payload cannot be built is logged and dropped.
//
// The final status is the one the next handler wrote. When it wrote none and
// returned an error, the status is that of the error (500 unless the error
// is a caddyhttp.HandlerError with a status), and the error is returned
// unchanged. When it wrote nothing and returned no error, the status is 200.
// A connection hijacked without a written status emits no event. 1xx responses other than 101 pass through and are never the
// final status. A WebSocket upgrade over HTTP/1.1 has status 101 (over HTTP/2
// and HTTP/3 it is a 200 response), and its event is emitted when the
// connection closes.
//
// The events go to the webhooks app, which publishes and delivers them.
//
// In the Caddyfile, the webhooks directive is ordered right after encode, so
// it needs no order option. It then wraps handle, route, reverse_proxy and the
// other handlers that write responses, and it records their bodies before
// encode compresses them.
type Handler struct {
	// Rules map requests and responses to event types. A request and its
	// response can match several rules, and each emits its own event. At
	// least one rule is required.
	Rules []*Rule `json:"rules,omitempty"`

	sink   eventSink
	logger *zap.Logger
	now    func() time.Time
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhooks",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the rules and gets the webhooks app that the events are
// sent to.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.now = time.Now

	if err := h.provisionRules(ctx); err != nil {
		return err
	}

	app, err := ctx.App("webhooks")
	if err != nil {
		return fmt.Errorf("getting webhooks app: %w", err)
	}
	sink, ok := app.(*App)
	if !ok {
		return fmt.Errorf("getting webhooks app: module 'webhooks' is %T, not *webhooks.App", app)
	}
	h.sink = sink

	for _, rule := range h.Rules {
		if !sink.subscribed(rule.Event) {
			h.logger.Warn("no endpoint subscribes to this event type, so its events are stored but not delivered",
				zap.String("event_type", rule.Event))
		}
	}
	return nil
}

// provisionRules loads the request matchers of every rule.
func (h *Handler) provisionRules(ctx caddy.Context) error {
	for i, rule := range h.Rules {
		if rule == nil {
			return fmt.Errorf("rule %d is null: remove it or give it an event type", i)
		}
		if err := rule.provision(ctx); err != nil {
			return fmt.Errorf("provisioning rule %d (event %q): %w", i, rule.Event, err)
		}
	}
	return nil
}

// Validate checks that there is at least one rule and that every rule is
// valid. Several rules may have the same event type.
func (h *Handler) Validate() error {
	if len(h.Rules) == 0 {
		return errors.New("webhooks handler has no rules: add at least one rule with an event type")
	}
	for i, rule := range h.Rules {
		if rule == nil {
			return fmt.Errorf("rule %d is null: remove it or give it an event type", i)
		}
		if err := rule.validate(); err != nil {
			return fmt.Errorf("validating rule %d (event %q): %w", i, rule.Event, err)
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Find the first rule whose request matchers match. Requests that no
	// rule matches go on without any allocation.
	for i, rule := range h.Rules {
		matched, err := rule.matchRequest(r)
		if err != nil {
			return err
		}
		if matched {
			return h.serveObserved(w, r, next, i)
		}
	}
	return next.ServeHTTP(w, r)
}

// serveObserved records the response of a request that the rule at index
// first and possibly later rules matched, then emits their events.
func (h *Handler) serveObserved(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, first int) error {
	candidates, err := h.matchingRules(r, first)
	if err != nil {
		return err
	}
	obs := newObservation(r, candidates)

	h.sink.observationStarted()
	defer h.sink.observationEnded()

	rec := capture.NewRecorder(w, obs.plan.responseMax())
	rec.KeepHeaderFields(obs.plan.recorderFields())
	defer rec.Release()

	// reverse_proxy panics with http.ErrAbortHandler when the upstream or
	// the client breaks off a response that has already started. The API
	// did respond, so the events of that status are emitted before the
	// panic goes on to Caddy's server.
	defer func() {
		if p := recover(); p != nil {
			if status := rec.Status(); status != 0 {
				h.emitMatching(candidates, obs, status, rec.ResponseHeader(), rec)
			}
			panic(p)
		}
	}()

	handlerErr := next.ServeHTTP(rec, r)

	status, header := finalStatus(rec, w, handlerErr)
	if status == 0 {
		// The connection was hijacked without a status written through
		// the recorder, so there is no response to describe.
		if c := h.logger.Check(zapcore.DebugLevel, "no event for hijacked connection without status"); c != nil {
			c.Write(zap.String("method", obs.req.method), zap.String("path", obs.req.path))
		}
		return handlerErr
	}

	h.emitMatching(candidates, obs, status, header, rec)
	return handlerErr
}

// matchingRules returns the rule at index first and every later rule whose
// request matchers match r.
func (h *Handler) matchingRules(r *http.Request, first int) ([]*Rule, error) {
	candidates := make([]*Rule, 1, len(h.Rules)-first)
	candidates[0] = h.Rules[first]
	for _, rule := range h.Rules[first+1:] {
		matched, err := rule.matchRequest(r)
		if err != nil {
			return nil, err
		}
		if matched {
			candidates = append(candidates, rule)
		}
	}
	return candidates, nil
}

// finalStatus returns the status and header that the response rules are
// matched against. It returns status 0 when the connection was hijacked
// and no status was written.
func finalStatus(rec *capture.Recorder, w http.ResponseWriter, handlerErr error) (int, http.Header) {
	if status := rec.Status(); status != 0 {
		return status, rec.ResponseHeader()
	}
	if rec.Hijacked() {
		return 0, nil
	}
	if handlerErr == nil {
		return http.StatusOK, w.Header()
	}
	// Caddy's server writes the status of a HandlerError only when the
	// error is one itself, not when it wraps one, so the same test is made
	// here.
	if he, ok := handlerErr.(caddyhttp.HandlerError); ok && he.StatusCode != 0 {
		return he.StatusCode, w.Header()
	}
	return http.StatusInternalServerError, w.Header()
}

// emitMatching emits one event for each candidate rule whose response
// matcher matches. The exchange is built once from the union of the
// candidates' captures, and each rule's payload is built from the part that
// its own plan keeps.
func (h *Handler) emitMatching(candidates []*Rule, obs *observation, status int, header http.Header, rec *capture.Recorder) {
	var exchange *payload.Exchange
	for _, rule := range candidates {
		if !rule.matchResponse(status, header) {
			continue
		}
		if exchange == nil {
			exchange = h.newExchange(obs, status, header, rec)
		}
		if len(candidates) == 1 {
			// The exchange was captured with this rule's plan alone.
			h.emit(rule, exchange, obs.repl)
			continue
		}
		h.emit(rule, rule.capture.view(exchange), obs.repl)
	}
}

// emit builds the event of one rule and hands it to the sink.
func (h *Handler) emit(rule *Rule, exchange *payload.Exchange, repl *caddy.Replacer) {
	exchange.EventID = ulid.Make().String()
	exchange.EventType = rule.Event

	body, err := h.buildPayload(rule, exchange, repl)
	if err != nil {
		h.logger.Error("dropping event: building its payload failed",
			zap.String("event_id", exchange.EventID),
			zap.String("event_type", rule.Event),
			zap.Error(err))
		return
	}

	h.sink.Emit(&emitter.Event{
		ID:       exchange.EventID,
		Type:     rule.Event,
		Payload:  body,
		Observed: exchange.Timestamp,
	})

	if c := h.logger.Check(zapcore.DebugLevel, "emitted event"); c != nil {
		c.Write(
			zap.String("event_id", exchange.EventID),
			zap.String("event_type", rule.Event),
			zap.Int("status_code", exchange.Response.Status))
	}
}

// buildPayload renders the rule's payload template into the envelope, or
// builds the default envelope when the rule has no template. Placeholders
// that are not webhook.* are resolved by Caddy's replacer of the request.
func (h *Handler) buildPayload(rule *Rule, exchange *payload.Exchange, repl *caddy.Replacer) ([]byte, error) {
	if rule.template == nil {
		return payload.Default(exchange)
	}
	var fallback placeholder.Resolver
	if repl != nil {
		fallback = placeholder.ResolverFunc(repl.Get)
	}
	data, err := rule.template.Render(exchange.Resolver(fallback))
	if err != nil {
		return nil, fmt.Errorf("rendering payload template: %w", err)
	}
	return payload.WithTemplate(exchange, data)
}

// observedRequest holds the request fields copied before the next handler
// runs, because later handlers may rewrite the request.
type observedRequest struct {
	method   string
	host     string
	path     string
	rawQuery string
	header   http.Header

	// contentEncoding is the request's Content-Encoding, kept when a rule
	// captures the request body.
	contentEncoding string
}

// observation is the handler's record of a request while the next handler
// serves it.
type observation struct {
	req  observedRequest
	plan capturePlan

	// requestBody tees the request body when a rule captures it. It is
	// nil when no rule does or the request has no body.
	requestBody *capture.RequestBody

	repl *caddy.Replacer
}

// newObservation copies the request fields the candidate rules need and,
// when one of them captures the request body, tees r.Body.
func newObservation(r *http.Request, candidates []*Rule) *observation {
	plan := candidates[0].capture
	for _, rule := range candidates[1:] {
		plan = plan.union(rule.capture)
	}

	obs := &observation{
		req: observedRequest{
			method:   r.Method,
			host:     hostWithoutPort(r.Host),
			path:     r.URL.Path,
			rawQuery: r.URL.RawQuery,
			header:   plan.requestHeaders.pick(r.Header),
		},
		plan: plan,
	}
	obs.repl, _ = r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)

	// A request with Content-Length 0 has no body to keep, and
	// reverse_proxy never reads it, so it is not teed. Caddy may have
	// wrapped its http.NoBody, so the check uses the length.
	if plan.requestBody && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		obs.req.contentEncoding = strings.Join(r.Header.Values("Content-Encoding"), ",")
		obs.requestBody = capture.NewRequestBody(r.Body, plan.maxBody)
		r.Body = obs.requestBody
	}
	return obs
}

// newExchange describes the observed request and response for the payload
// builder. Query pairs that cannot be decoded are left out.
func (h *Handler) newExchange(obs *observation, status int, header http.Header, rec *capture.Recorder) *payload.Exchange {
	var query url.Values
	if obs.req.rawQuery != "" {
		query, _ = url.ParseQuery(obs.req.rawQuery)
	}
	x := &payload.Exchange{
		Timestamp: h.now(),
		Request: payload.Request{
			Method: obs.req.method,
			Host:   obs.req.host,
			Path:   obs.req.path,
			Query:  query,
			Header: obs.req.header,
		},
		Response: payload.Response{
			Status: status,
			Header: obs.plan.responseHeaders.pick(header),
		},
	}

	if obs.plan.responseBody {
		x.Response.Body, x.Response.BodyTruncated = h.responseBody(obs.req, status, header, rec)
	}
	if obs.plan.requestBody {
		x.Request.BodyCaptured = true
		if obs.requestBody != nil {
			x.Request.Body, x.Request.BodyTruncated = h.requestBody(obs)
		}
	}
	return x
}

// responseBody returns the response body for the event: the captured bytes
// decoded from their Content-Encoding, or as sent if decoding fails. The
// client has already received the original bytes. HEAD requests and 204
// and 304 responses have no body, so nothing is decoded for them.
func (h *Handler) responseBody(req observedRequest, status int, header http.Header, rec *capture.Recorder) ([]byte, bool) {
	body, truncated := rec.Body(), rec.Truncated()
	if req.method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
		return body, truncated
	}
	contentEncoding := strings.Join(header.Values("Content-Encoding"), ",")
	return h.decodeBody(req, "response", contentEncoding, body, truncated, rec.MaxBody())
}

// requestBody stops the request body tee and returns what it kept,
// decoded from the request's Content-Encoding.
func (h *Handler) requestBody(obs *observation) ([]byte, bool) {
	body, truncated := obs.requestBody.Seal()
	return h.decodeBody(obs.req, "request", obs.req.contentEncoding, body, truncated, obs.plan.maxBody)
}

// decodeBody decodes a captured body from its Content-Encoding, keeping the
// bytes as sent when decoding fails.
func (h *Handler) decodeBody(req observedRequest, which, contentEncoding string, body []byte, truncated bool, maxBody int) ([]byte, bool) {
	decoded, decodedTruncated, err := capture.DecodeBody(contentEncoding, body, truncated, maxBody)
	if err != nil {
		if c := h.logger.Check(zapcore.DebugLevel, "decoding "+which+" body failed, event keeps the body as sent"); c != nil {
			c.Write(
				zap.String("method", req.method),
				zap.String("path", req.path),
				zap.String("content_encoding", contentEncoding),
				zap.Error(err))
		}
	}
	return decoded, decodedTruncated
}

// hostWithoutPort returns the host of a Host header value without its
// port, as Caddy's {http.request.host} placeholder does.
func hostWithoutPort(hostport string) string {
	if !strings.Contains(hostport, ":") {
		// Without a colon there is no port, and skipping SplitHostPort
		// saves the error it would allocate.
		return hostport
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return host
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
