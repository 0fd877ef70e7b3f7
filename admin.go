package webhooks

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the `admin.api.webhooks` module: the routes under /webhooks/
// of Caddy's admin endpoint, which show and change the destinations, the
// stored events and the dead letters of the running webhooks app. Every
// request works on the config running at that moment, so the routes follow
// config reloads. docs/admin-api.md describes each route.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.webhooks",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes of the webhooks app.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: adminPrefix,
		Handler: caddy.AdminHandlerFunc(serveAdmin),
	}}
}

const adminPrefix = "/webhooks/"

// Timeouts of admin requests. A replay publishes one message per event it
// sends, so it gets longer.
const (
	adminTimeout  = 30 * time.Second
	replayTimeout = 5 * time.Minute

	// maxAdminBody bounds the JSON body of a POST request.
	maxAdminBody = 64 << 10
)

// adminRoute is one route: the path segments after /webhooks/, where "*"
// matches any one segment, and the handler of each allowed method.
type adminRoute struct {
	segments []string
	methods  map[string]adminHandler
}

// adminHandler handles a request of a route. args are the segments that
// "*" matched.
type adminHandler func(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error

var adminRoutes = []adminRoute{
	{[]string{"destinations"}, map[string]adminHandler{http.MethodGet: listDestinations}},
	{[]string{"destinations", "*"}, map[string]adminHandler{http.MethodGet: getDestination}},
	{[]string{"destinations", "*", "pause"}, map[string]adminHandler{http.MethodPost: changeState((*delivery.Store).Pause)}},
	{[]string{"destinations", "*", "resume"}, map[string]adminHandler{http.MethodPost: changeState((*delivery.Store).Resume)}},
	{[]string{"destinations", "*", "enable"}, map[string]adminHandler{http.MethodPost: changeState((*delivery.Store).Enable)}},
	{[]string{"destinations", "*", "test"}, map[string]adminHandler{http.MethodPost: sendTest}},
	{[]string{"destinations", "*", "replay"}, map[string]adminHandler{http.MethodPost: replay}},
	{[]string{"events"}, map[string]adminHandler{http.MethodGet: listEvents}},
	{[]string{"events", "*"}, map[string]adminHandler{http.MethodGet: getEvent}},
	{[]string{"events", "*", "redeliver"}, map[string]adminHandler{http.MethodPost: redeliver}},
	{[]string{"event-types"}, map[string]adminHandler{http.MethodGet: listEventTypes}},
	{[]string{"dead"}, map[string]adminHandler{http.MethodGet: listDeadLetters}},
	{[]string{"dead", "*"}, map[string]adminHandler{http.MethodDelete: purgeDeadLetters}},
	{[]string{"dead", "*", "*"}, map[string]adminHandler{http.MethodDelete: deleteDeadLetter}},
	{[]string{"broker"}, map[string]adminHandler{http.MethodGet: getBroker}},
}

// getBroker shows the state of the NATS connection: the mode, whether it
// is connected and since when not, reconnects, replicas and the events
// waiting in the emitter's queue.
func getBroker(_ context.Context, w http.ResponseWriter, r *http.Request, app *App, _ []string) error {
	if err := checkQuery(r, nil); err != nil {
		return err
	}
	state, ok := app.BrokerState()
	if !ok {
		return apiError(http.StatusServiceUnavailable, "the webhooks app has no broker yet: retry once it has started")
	}
	return writeJSON(w, http.StatusOK, state)
}

// serveAdmin finds the route of a request and runs its handler on the
// running app.
func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	segments := strings.Split(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, adminPrefix), "/"), "/")
	for _, route := range adminRoutes {
		args, ok := route.match(segments)
		if !ok {
			continue
		}
		handler, ok := route.methods[r.Method]
		if !ok {
			return methodNotAllowed(w, r, route)
		}
		app := runningApp()
		if app == nil {
			return apiError(http.StatusServiceUnavailable, "the webhooks app is not running: load a config that has the webhooks global option or apps.webhooks")
		}
		timeout := adminTimeout
		if route.segments[len(route.segments)-1] == "replay" {
			timeout = replayTimeout
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		return handler(ctx, w, r, app, args)
	}
	return apiError(http.StatusNotFound, fmt.Sprintf("unknown admin route %s: see the webhooks admin API reference for the routes under %s", r.URL.Path, adminPrefix))
}

func (route adminRoute) match(segments []string) ([]string, bool) {
	if len(segments) != len(route.segments) {
		return nil, false
	}
	var args []string
	for i, want := range route.segments {
		switch {
		case want == "*" && segments[i] != "":
			args = append(args, segments[i])
		case want != segments[i]:
			return nil, false
		}
	}
	return args, true
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, route adminRoute) error {
	allowed := make([]string, 0, len(route.methods))
	for method := range route.methods {
		allowed = append(allowed, method)
	}
	slices.Sort(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return apiError(http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
}

func apiError(status int, message string) error {
	return caddy.APIError{HTTPStatus: status, Err: errors.New(message), Message: message}
}

// internalError reports a failure to read or change the stored state.
func internalError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return caddy.APIError{HTTPStatus: http.StatusGatewayTimeout, Err: err, Message: "timed out reading JetStream: " + err.Error() + "; try again, or narrow the request"}
	}
	return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err, Message: err.Error()}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return internalError(fmt.Errorf("encoding the response: %w", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}

// readJSON decodes the request body into v. An empty body leaves v as it
// is, like {}.
func readJSON(r *http.Request, v any, example string) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	if err != nil {
		return apiError(http.StatusBadRequest, fmt.Sprintf("reading the request body: %v; send at most %d bytes of JSON such as %s", err, maxAdminBody, example))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(v); err != nil {
		return apiError(http.StatusBadRequest, fmt.Sprintf("invalid JSON body: %v; send an object such as %s", err, example))
	}
	if decoder.More() {
		return apiError(http.StatusBadRequest, fmt.Sprintf("invalid JSON body: it contains more than one value; send one object such as %s", example))
	}
	return nil
}

// runningApp returns the most recently started webhooks app, which belongs
// to the config that Caddy runs, or nil when none runs. The app's Endpoints
// and store are set before it is added to the running apps and never
// change, so reading them needs no lock.
func runningApp() *App {
	runningMu.Lock()
	defer runningMu.Unlock()
	if len(running) == 0 {
		return nil
	}
	return running[len(running)-1]
}

// endpoint returns the configured endpoint with the name.
func (a *App) endpoint(name string) (*delivery.Endpoint, error) {
	for _, e := range a.Endpoints {
		if e.Name == name {
			return e, nil
		}
	}
	return nil, apiError(http.StatusNotFound, fmt.Sprintf("unknown destination %q: GET /webhooks/destinations lists the configured ones", name))
}

// destinationJSON is a destination as the admin API shows it. Absent
// values are omitted.
type destinationJSON struct {
	Name         string           `json:"name"`
	Kind         string           `json:"kind"`
	URL          string           `json:"url,omitempty"`
	Events       []string         `json:"events"`
	State        string           `json:"state"`
	StateReason  string           `json:"state_reason,omitempty"`
	StateSince   string           `json:"state_since,omitempty"`
	Pending      uint64           `json:"pending"`
	FailingSince string           `json:"failing_since,omitempty"`
	LastAttempt  *lastAttemptJSON `json:"last_attempt,omitempty"`
	LastSuccess  string           `json:"last_success,omitempty"`
	DeadLetters  uint64           `json:"dead_letters"`
}

type lastAttemptJSON struct {
	Time       string `json:"time"`
	Outcome    string `json:"outcome"`
	StatusCode int    `json:"status_code,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
}

// describeDestination reads the stored status of an endpoint.
func describeDestination(ctx context.Context, app *App, e *delivery.Endpoint, deadLetters map[string]uint64) (destinationJSON, error) {
	status, err := app.store.Status(ctx, e.Name, deadLetters)
	if err != nil {
		return destinationJSON{}, internalError(err)
	}
	d := destinationJSON{
		Name:         e.Name,
		Kind:         e.Kind(),
		URL:          e.DisplayURL(),
		Events:       e.Events,
		State:        status.State.State,
		StateReason:  status.State.Reason,
		StateSince:   formatTime(status.State.Since),
		Pending:      status.Pending,
		FailingSince: formatTime(status.FailingSince),
		LastSuccess:  formatTime(status.LastSuccess),
		DeadLetters:  status.DeadLetters,
	}
	if last := status.LastAttempt; last != nil {
		d.LastAttempt = &lastAttemptJSON{Time: last.Time, Outcome: last.Outcome, StatusCode: last.StatusCode, ErrorClass: last.ErrorClass}
	}
	return d, nil
}

// formatTime writes t as RFC 3339 in UTC with milliseconds, and the zero
// time as "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(delivery.TimeFormat)
}

func listDestinations(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, _ []string) error {
	if err := checkQuery(r, nil); err != nil {
		return err
	}
	counts, err := app.store.DeadLetterCounts(ctx)
	if err != nil {
		return internalError(err)
	}
	endpoints := slices.Clone(app.Endpoints)
	slices.SortFunc(endpoints, func(a, b *delivery.Endpoint) int { return strings.Compare(a.Name, b.Name) })
	list := make([]destinationJSON, 0, len(endpoints))
	for _, e := range endpoints {
		d, err := describeDestination(ctx, app, e, counts)
		if err != nil {
			return err
		}
		list = append(list, d)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"destinations": list})
}

func getDestination(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error {
	if err := checkQuery(r, nil); err != nil {
		return err
	}
	e, err := app.endpoint(args[0])
	if err != nil {
		return err
	}
	return writeDestination(ctx, w, app, e)
}

func writeDestination(ctx context.Context, w http.ResponseWriter, app *App, e *delivery.Endpoint) error {
	counts, err := app.store.DeadLetterCounts(ctx)
	if err != nil {
		return internalError(err)
	}
	d, err := describeDestination(ctx, app, e, counts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// changeState returns the handler of pause, resume or enable.
func changeState(change func(*delivery.Store, context.Context, string) (delivery.EndpointState, error)) adminHandler {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error {
		e, err := app.endpoint(args[0])
		if err != nil {
			return err
		}
		if err := readJSON(r, &struct{}{}, "{}"); err != nil {
			return err
		}
		state, err := change(app.store, ctx, e.Name)
		if errors.Is(err, delivery.ErrEndpointDisabled) {
			return apiError(http.StatusConflict, fmt.Sprintf("destination %q is disabled (%s): enable it with POST /webhooks/destinations/%s/enable or caddy webhooks enable %s", e.Name, state.Reason, e.Name, e.Name))
		}
		if err != nil {
			return internalError(err)
		}
		adminLogger().Info("destination state changed through the admin API",
			zap.String("destination", e.Name),
			zap.String("state", state.State),
			zap.String("reason", state.Reason))
		return writeDestination(ctx, w, app, e)
	}
}

func adminLogger() *zap.Logger {
	return caddy.Log().Named("admin.api.webhooks")
}

func sendTest(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error {
	e, err := app.endpoint(args[0])
	if err != nil {
		return err
	}
	if err := readJSON(r, &struct{}{}, "{}"); err != nil {
		return err
	}
	id, err := app.store.SendTest(ctx, e.Name)
	if err != nil {
		return internalError(err)
	}
	return writeJSON(w, http.StatusAccepted, map[string]string{"event_id": id, "type": delivery.TestEventType})
}

// replayRequest is the body of POST /webhooks/destinations/{name}/replay.
type replayRequest struct {
	DeadLetters bool   `json:"dead_letters,omitempty"`
	Since       string `json:"since,omitempty"`
	Until       string `json:"until,omitempty"`
}

const replayExample = `{"dead_letters":true} or {"since":"2026-12-04T10:00:00Z"}`

func replay(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error {
	e, err := app.endpoint(args[0])
	if err != nil {
		return err
	}
	var req replayRequest
	if err := readJSON(r, &req, replayExample); err != nil {
		return err
	}

	var replayed int
	switch {
	case req.DeadLetters && (req.Since != "" || req.Until != ""):
		return apiError(http.StatusBadRequest, "dead_letters cannot be combined with since or until: send "+replayExample)
	case req.DeadLetters:
		replayed, err = app.store.ReplayDeadLetters(ctx, e.Name)
	case req.Since != "":
		since, until, rangeErr := parseRange(req.Since, req.Until)
		if rangeErr != nil {
			return rangeErr
		}
		replayed, err = app.store.ReplaySince(ctx, e, since, until)
	default:
		return apiError(http.StatusBadRequest, "nothing to replay: send "+replayExample)
	}
	if err != nil {
		return internalError(fmt.Errorf("replaying to destination %q after %d events: %w", e.Name, replayed, err))
	}
	adminLogger().Info("replayed events through the admin API",
		zap.String("destination", e.Name),
		zap.Bool("dead_letters", req.DeadLetters),
		zap.String("since", req.Since),
		zap.String("until", req.Until),
		zap.Int("events", replayed))
	return writeJSON(w, http.StatusAccepted, map[string]int{"replayed": replayed})
}

// parseRange parses since and until, each RFC 3339 and until optional.
func parseRange(sinceText, untilText string) (since, until time.Time, err error) {
	if since, err = parseTime("since", sinceText); err != nil {
		return since, until, err
	}
	if until, err = parseTime("until", untilText); err != nil {
		return since, until, err
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, apiError(http.StatusBadRequest, fmt.Sprintf("since %s is not before until %s: swap them or widen the range", sinceText, untilText))
	}
	return since, until, nil
}

func parseTime(name, value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, apiError(http.StatusBadRequest, fmt.Sprintf("invalid %s %q: use an RFC 3339 time such as 2026-12-04T10:00:00Z", name, value))
	}
	return t, nil
}

// eventListJSON is a page of events.
type eventListJSON struct {
	Events     []delivery.EventSummary `json:"events"`
	NextCursor string                  `json:"next_cursor,omitempty"`
}

func listEvents(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, _ []string) error {
	params, err := parseListParams(r, app, true)
	if err != nil {
		return err
	}
	page, err := app.store.ListEvents(ctx, delivery.EventQuery{
		Limit:       params.limit,
		Before:      params.before,
		Destination: params.destination,
		Type:        params.eventType,
		Outcome:     params.outcome,
		Since:       params.since,
		Until:       params.until,
	}, app.Endpoints)
	if err != nil {
		return internalError(err)
	}
	list := eventListJSON{Events: page.Events, NextCursor: encodeCursor(page.Next)}
	if list.Events == nil {
		list.Events = []delivery.EventSummary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// eventJSON is one event with its payload and attempts.
type eventJSON struct {
	ID             string                              `json:"id"`
	Type           string                              `json:"type"`
	Time           string                              `json:"time"`
	StreamSequence uint64                              `json:"stream_sequence"`
	Payload        json.RawMessage                     `json:"payload,omitempty"`
	PayloadBase64  []byte                              `json:"payload_base64,omitempty"`
	Attempts       map[string][]delivery.AttemptRecord `json:"attempts"`
}

func getEvent(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error {
	if err := checkQuery(r, nil); err != nil {
		return err
	}
	ev, err := findEvent(ctx, app, args[0])
	if err != nil {
		return err
	}
	attempts, err := app.store.EventAttempts(ctx, ev.ID)
	if err != nil {
		return internalError(err)
	}
	out := eventJSON{
		ID:             ev.ID,
		Type:           ev.Type,
		Time:           formatTime(ev.Time),
		StreamSequence: ev.StreamSequence,
		Attempts:       attempts,
	}
	if json.Valid(ev.Payload) {
		out.Payload = ev.Payload
	} else {
		out.PayloadBase64 = ev.Payload
	}
	return writeJSON(w, http.StatusOK, out)
}

func findEvent(ctx context.Context, app *App, id string) (*delivery.StoredEvent, error) {
	ev, err := app.store.FindEvent(ctx, id)
	if errors.Is(err, delivery.ErrEventNotFound) {
		return nil, apiError(http.StatusNotFound, fmt.Sprintf("unknown event %q: it may have expired after the retention of events (%s); GET /webhooks/events lists the stored ones",
			id, delivery.FormatDuration(time.Duration(app.Retention.Events))))
	}
	if err != nil {
		return nil, internalError(err)
	}
	return ev, nil
}

// redeliverRequest is the body of POST /webhooks/events/{id}/redeliver.
type redeliverRequest struct {
	Destination string `json:"destination,omitempty"`
}

type redeliveredJSON struct {
	Destination string `json:"destination"`
	EventID     string `json:"event_id"`
}

func redeliver(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error {
	var req redeliverRequest
	if err := readJSON(r, &req, `{"destination":"orders"} or {}`); err != nil {
		return err
	}
	ev, err := findEvent(ctx, app, args[0])
	if err != nil {
		return err
	}
	destinations, err := redeliveryTargets(app, ev, req.Destination)
	if err != nil {
		return err
	}
	if err := app.store.Redeliver(ctx, ev, destinations); err != nil {
		return internalError(err)
	}
	out := make([]redeliveredJSON, len(destinations))
	for i, name := range destinations {
		out[i] = redeliveredJSON{Destination: name, EventID: ev.ID}
	}
	adminLogger().Info("redelivering event through the admin API",
		zap.String("event_id", ev.ID),
		zap.String("event_type", ev.Type),
		zap.Strings("destinations", destinations))
	return writeJSON(w, http.StatusAccepted, map[string]any{"redelivered": out})
}

// redeliveryTargets returns the destinations that a redelivery of ev goes
// to: the named one, or every destination that receives it.
func redeliveryTargets(app *App, ev *delivery.StoredEvent, name string) ([]string, error) {
	receives := func(e *delivery.Endpoint) bool {
		if ev.Destination != "" {
			return e.Name == ev.Destination
		}
		return e.Subscribes(ev.Type)
	}
	if name != "" {
		e, err := app.endpoint(name)
		if err != nil {
			return nil, err
		}
		if !receives(e) {
			return nil, apiError(http.StatusBadRequest, fmt.Sprintf("destination %q does not receive events of type %q: name a destination whose events match it, or send {} for all of them", name, ev.Type))
		}
		return []string{name}, nil
	}
	var names []string
	for _, e := range app.Endpoints {
		if receives(e) {
			names = append(names, e.Name)
		}
	}
	if len(names) == 0 {
		return nil, apiError(http.StatusConflict, fmt.Sprintf("no configured destination receives events of type %q: add the type to a destination's events first", ev.Type))
	}
	slices.Sort(names)
	return names, nil
}

// eventTypeJSON is one entry of the event catalogue.
type eventTypeJSON struct {
	Type         string   `json:"type"`
	Description  string   `json:"description,omitempty"`
	Sites        []string `json:"sites"`
	Rules        int      `json:"rules"`
	Destinations []string `json:"destinations"`
	Stored       uint64   `json:"stored"`
	Delivered    uint64   `json:"delivered"`
	DeadLetters  uint64   `json:"dead_letters"`
}

func listEventTypes(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, _ []string) error {
	if err := checkQuery(r, nil); err != nil {
		return err
	}
	stats, err := app.store.TypeStats(ctx)
	if err != nil {
		return internalError(err)
	}
	catalogue := app.ruleCatalogue()
	for eventType, description := range ownEventDescriptions {
		catalogue[eventType] = &eventTypeJSON{Type: eventType, Description: description, Sites: []string{}}
	}
	for eventType := range stats {
		if catalogue[eventType] == nil {
			catalogue[eventType] = &eventTypeJSON{Type: eventType, Sites: []string{}}
		}
	}

	list := make([]eventTypeJSON, 0, len(catalogue))
	for eventType, entry := range catalogue {
		if s := stats[eventType]; s != nil {
			entry.Stored, entry.Delivered, entry.DeadLetters = s.Stored, s.Delivered, s.DeadLetters
		}
		entry.Destinations = []string{}
		for _, e := range app.Endpoints {
			if e.Subscribes(eventType) {
				entry.Destinations = append(entry.Destinations, e.Name)
			}
		}
		slices.Sort(entry.Destinations)
		slices.Sort(entry.Sites)
		list = append(list, *entry)
	}
	slices.SortFunc(list, func(a, b eventTypeJSON) int { return strings.Compare(a.Type, b.Type) })
	return writeJSON(w, http.StatusOK, map[string]any{"event_types": list})
}

// ruleCatalogue returns the event types of the webhooks handlers in the
// config's HTTP app, with their descriptions, sites and rule counts.
func (a *App) ruleCatalogue() map[string]*eventTypeJSON {
	catalogue := make(map[string]*eventTypeJSON)
	httpApp, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return catalogue
	}
	servers, ok := httpApp.(*caddyhttp.App)
	if !ok {
		return catalogue
	}
	for _, server := range servers.Servers {
		walker := ruleWalker{catalogue: catalogue, listen: server.Listen}
		walker.routes(server.Routes, nil)
		if server.Errors != nil {
			walker.routes(server.Errors.Routes, nil)
		}
	}
	return catalogue
}

// ruleWalker finds the webhooks handlers in a server's routes.
type ruleWalker struct {
	catalogue map[string]*eventTypeJSON
	listen    []string
}

// routes visits routes whose enclosing routes match the hosts.
func (rw ruleWalker) routes(routes caddyhttp.RouteList, hosts []string) {
	for _, route := range routes {
		routeHosts := append(slices.Clone(hosts), matchedHosts(route.MatcherSets)...)
		for _, handler := range route.Handlers {
			switch h := handler.(type) {
			case *Handler:
				rw.handler(h, routeHosts)
			case *caddyhttp.Subroute:
				rw.routes(h.Routes, routeHosts)
			}
		}
	}
}

func (rw ruleWalker) handler(h *Handler, hosts []string) {
	sites := hosts
	if len(sites) == 0 {
		sites = rw.listen
	}
	for _, rule := range h.Rules {
		entry := rw.catalogue[rule.Event]
		if entry == nil {
			entry = &eventTypeJSON{Type: rule.Event, Sites: []string{}}
			rw.catalogue[rule.Event] = entry
		}
		entry.Rules++
		if entry.Description == "" {
			entry.Description = rule.Description
		}
		for _, site := range sites {
			if !slices.Contains(entry.Sites, site) {
				entry.Sites = append(entry.Sites, site)
			}
		}
	}
}

// matchedHosts returns the host names of the host matchers in sets.
func matchedHosts(sets caddyhttp.MatcherSets) []string {
	var hosts []string
	for _, set := range sets {
		for _, matcher := range set {
			switch m := matcher.(type) {
			case caddyhttp.MatchHost:
				hosts = append(hosts, m...)
			case *caddyhttp.MatchHost:
				hosts = append(hosts, *m...)
			}
		}
	}
	return hosts
}

type deadListJSON struct {
	DeadLetters []delivery.StoredDeadLetter `json:"dead_letters"`
	NextCursor  string                      `json:"next_cursor,omitempty"`
}

func listDeadLetters(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, _ []string) error {
	params, err := parseListParams(r, app, false)
	if err != nil {
		return err
	}
	page, err := app.store.ListDeadLetters(ctx, delivery.DeadLetterQuery{
		Limit:       params.limit,
		Before:      params.before,
		Destination: params.destinationName,
		Type:        params.eventType,
		Since:       params.since,
		Until:       params.until,
	})
	if err != nil {
		return internalError(err)
	}
	list := deadListJSON{DeadLetters: page.DeadLetters, NextCursor: encodeCursor(page.Next)}
	if list.DeadLetters == nil {
		list.DeadLetters = []delivery.StoredDeadLetter{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// purgeDeadLetters deletes the dead letters of a destination, which may be
// one that the config no longer has.
func purgeDeadLetters(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error {
	name := args[0]
	if err := checkDestinationName(name); err != nil {
		return err
	}
	purged, err := app.store.PurgeDeadLetters(ctx, name)
	if err != nil {
		return internalError(err)
	}
	if purged == 0 {
		return apiError(http.StatusNotFound, fmt.Sprintf("destination %q has no dead letters: GET /webhooks/dead lists them", name))
	}
	adminLogger().Info("purged dead letters through the admin API",
		zap.String("destination", name),
		zap.Uint64("dead_letters", purged))
	return writeJSON(w, http.StatusOK, map[string]uint64{"purged": purged})
}

func deleteDeadLetter(ctx context.Context, w http.ResponseWriter, r *http.Request, app *App, args []string) error {
	name, id := args[0], args[1]
	if err := checkDestinationName(name); err != nil {
		return err
	}
	deleted, err := app.store.DeleteDeadLetters(ctx, name, id)
	if err != nil {
		return internalError(err)
	}
	if deleted == 0 {
		return apiError(http.StatusNotFound, fmt.Sprintf("destination %q has no dead letter of event %q: GET /webhooks/dead?destination=%s lists them", name, id, name))
	}
	adminLogger().Info("purged dead letter through the admin API",
		zap.String("destination", name),
		zap.String("event_id", id))
	return writeJSON(w, http.StatusOK, map[string]int{"purged": deleted})
}

// checkDestinationName rejects a name that no endpoint can have, because it
// becomes part of a subject.
func checkDestinationName(name string) error {
	if err := (&delivery.Endpoint{Name: name}).ValidateName(); err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	return nil
}

// listParams are the query parameters of the list routes.
type listParams struct {
	limit  int
	before uint64

	// destination is the configured endpoint of the destination filter;
	// destinationName is the filter itself.
	destination     *delivery.Endpoint
	destinationName string

	eventType    string
	outcome      string
	since, until time.Time
}

var listParamNames = []string{"limit", "cursor", "destination", "type", "outcome", "since", "until"}

// parseListParams reads and checks the query parameters of a list route.
// The events list takes an outcome, and its destination filter must be
// configured. The dead-letter list takes no outcome, and its destination
// may be one that the config no longer has.
func parseListParams(r *http.Request, app *App, events bool) (listParams, error) {
	allowed := listParamNames
	if !events {
		allowed = slices.DeleteFunc(slices.Clone(listParamNames), func(name string) bool { return name == "outcome" })
	}
	if err := checkQuery(r, allowed); err != nil {
		return listParams{}, err
	}
	query := r.URL.Query()
	params := listParams{limit: delivery.DefaultPageLimit}

	if text := query.Get("limit"); text != "" {
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 || n > delivery.MaxPageLimit {
			return listParams{}, apiError(http.StatusBadRequest, fmt.Sprintf("invalid limit %q: use a whole number from 1 to %d", text, delivery.MaxPageLimit))
		}
		params.limit = n
	}
	if text := query.Get("cursor"); text != "" {
		before, err := decodeCursor(text)
		if err != nil {
			return listParams{}, err
		}
		params.before = before
	}
	if name := query.Get("destination"); name != "" {
		params.destinationName = name
		if events {
			e, err := app.endpoint(name)
			if err != nil {
				return listParams{}, apiError(http.StatusBadRequest, fmt.Sprintf("unknown destination %q in the destination filter: GET /webhooks/destinations lists the configured ones", name))
			}
			params.destination = e
		} else if err := checkDestinationName(name); err != nil {
			return listParams{}, err
		}
	}
	if pattern := query.Get("type"); pattern != "" {
		if err := emitter.ValidateEventPattern(pattern); err != nil {
			return listParams{}, apiError(http.StatusBadRequest, "invalid type filter: "+err.Error())
		}
		params.eventType = pattern
	}
	if outcome := query.Get("outcome"); outcome != "" {
		if !slices.Contains(outcomes, outcome) {
			return listParams{}, apiError(http.StatusBadRequest, fmt.Sprintf("invalid outcome %q: use %s", outcome, strings.Join(outcomes, ", ")))
		}
		params.outcome = outcome
	}
	var err error
	params.since, params.until, err = parseRange(query.Get("since"), query.Get("until"))
	if err != nil {
		return listParams{}, err
	}
	return params, nil
}

// outcomes are the values of the outcome filter.
var outcomes = []string{delivery.OutcomeSuccess, delivery.OutcomeRetry, delivery.OutcomeDeadLetter, delivery.OutcomeDisabled, delivery.OutcomePending}

// checkQuery rejects query parameters that the route does not take, so a
// misspelled filter is not silently ignored.
func checkQuery(r *http.Request, allowed []string) error {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apiError(http.StatusBadRequest, fmt.Sprintf("invalid query %q: %v", r.URL.RawQuery, err))
	}
	for name := range query {
		if slices.Contains(allowed, name) {
			continue
		}
		if len(allowed) == 0 {
			return apiError(http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q: %s takes none", name, r.URL.Path))
		}
		return apiError(http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q: use %s", name, strings.Join(allowed, ", ")))
	}
	return nil
}

// cursorPrefix versions the cursor format.
const cursorPrefix = "v1:"

// encodeCursor returns the opaque cursor of the page before the stream
// sequence, or "" for 0, which ends the list.
func encodeCursor(before uint64) string {
	if before == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatUint(before, 10)))
}

func decodeCursor(cursor string) (uint64, error) {
	invalid := apiError(http.StatusBadRequest, fmt.Sprintf("invalid cursor %q: pass the next_cursor of the previous page unchanged, or leave cursor out to start at the newest", cursor))
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, invalid
	}
	text, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return 0, invalid
	}
	before, err := strconv.ParseUint(text, 10, 64)
	if err != nil || before == 0 {
		return 0, invalid
	}
	return before, nil
}

var (
	statusCollector     *delivery.StatusCollector
	statusCollectorOnce sync.Once
)

// registerStatusMetrics adds the gauges of the destinations' stored status
// to the registry of the config being loaded. They read the running app at
// each scrape, so one collector serves every config.
func registerStatusMetrics(ctx caddy.Context, logger *zap.Logger) {
	registry := ctx.GetMetricsRegistry()
	if registry == nil {
		return
	}
	statusCollectorOnce.Do(func() {
		statusCollector = delivery.NewStatusCollector(func() (*delivery.Store, []string) {
			app := runningApp()
			if app == nil {
				return nil, nil
			}
			names := make([]string, len(app.Endpoints))
			for i, e := range app.Endpoints {
				names[i] = e.Name
			}
			return app.store, names
		})
	})
	err := registry.Register(statusCollector)
	var already prometheus.AlreadyRegisteredError
	if err != nil && !errors.As(err, &already) {
		logger.Warn("webhooks destination status metrics are not available", zap.Error(err))
	}
}

var (
	_ caddy.AdminRouter = adminAPI{}
)
