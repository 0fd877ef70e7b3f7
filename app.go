package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/alerts"
	"github.com/caddy-webhooks/caddy-webhooks/caddyfile"
	"github.com/caddy-webhooks/caddy-webhooks/delivery"
	"github.com/caddy-webhooks/caddy-webhooks/delivery/email"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

func init() {
	caddy.RegisterModule(new(App))
	httpcaddyfile.RegisterGlobalOption("webhooks", parseGlobalOption)
}

// workerStopTimeout bounds how long stopping the app waits for delivery
// attempts in flight. An attempt cut off by it is not lost: its message
// was not acknowledged, so JetStream redelivers it after its ack wait.
const workerStopTimeout = 10 * time.Second

// App is the `webhooks` Caddy app. It runs the NATS JetStream broker (an
// embedded server by default), publishes the events that the
// http.handlers.webhooks handlers observe, and runs one delivery worker pool
// per destination.
//
// The embedded server and its publisher are shared by the old and the new
// app instance while Caddy reloads its config, so a reload neither restarts
// the broker nor loses an event emitted by a request that spans the reload.
type App struct {
	// NATS configures the broker. Default: an embedded NATS server with
	// JetStream, listening on no port, with its store under Caddy's data
	// directory (`webhooks/nats`).
	NATS *emitter.Config `json:"nats,omitempty"`

	// Endpoints are the webhook destinations. Each gets a durable JetStream
	// consumer named `dest_<name>` on the events stream (of nats.prefix, if
	// set) that receives the events its `events` patterns select.
	Endpoints []*delivery.Endpoint `json:"endpoints,omitempty"`

	// AllowPrivate turns the outbound address check off for every
	// endpoint, as the endpoint's own `allow_private` does. Default: false,
	// so webhooks never go to loopback, private, link-local, carrier-grade
	// NAT, multicast, unspecified or reserved addresses.
	AllowPrivate bool `json:"allow_private,omitempty"`

	// AllowHosts adds host names, IP addresses and CIDRs to the
	// `allow_hosts` of every endpoint. Default: none.
	AllowHosts []string `json:"allow_hosts,omitempty"`

	// HTTPSOnly rejects endpoint URLs with the http scheme, and redirects
	// to plain http, for every endpoint. Default: false.
	HTTPSOnly bool `json:"https_only,omitempty"`

	// Retention sets how long events and attempt records are kept.
	// Default: events `7d`, attempts `30d`.
	Retention *emitter.Retention `json:"retention,omitempty"`

	// SMTP is the server that e-mail destinations and e-mail alerts send
	// through. Required when there are any. Default: none.
	SMTP *delivery.SMTP `json:"smtp,omitempty"`

	// Alerts sends operational messages to people: when a destination is
	// disabled, one digest per destination and interval of dead-lettered
	// events, and how many events were dropped before JetStream stored
	// them. They go through the same queue, retries and attempt log as
	// webhooks, as events of the types `webhooks.alert.*`. Default: none.
	// The happenings are also published as the events
	// `webhooks.endpoint.disabled`, `webhooks.event.dead_lettered` and
	// `webhooks.emitter.dropped` whether or not alerts are set.
	Alerts *alerts.Config `json:"alerts,omitempty"`

	// ctx is the config's context, which the admin API uses to read the
	// HTTP app's rules.
	ctx     caddy.Context
	logger  *zap.Logger
	broker  *emitter.Broker
	workers *delivery.Workers
	alerter *alerter

	// store reads and changes the stored state for the admin API. Start
	// sets it before the app is added to the running apps, and nothing
	// changes it later.
	store *delivery.Store

	// publisher is set by Start and kept after Stop: during a reload the
	// publisher outlives this instance, and once it is closed Enqueue
	// reports that itself.
	publisher atomic.Pointer[emitter.Publisher]

	// runningBroker is the broker between Start and Stop, for BrokerState,
	// which admin requests call on other goroutines.
	runningBroker atomic.Pointer[emitter.Broker]

	// early holds events emitted before Start, because Caddy starts its apps
	// in random order and the HTTP app may serve requests first.
	mu    sync.Mutex
	early []*emitter.Event

	// observations counts the requests that this config's handlers are
	// observing, whose events may still come.
	observations atomic.Int64
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "webhooks",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets up the app: defaults, secrets and metrics. It starts
// nothing, so `caddy validate` and `caddy adapt --validate` have no side
// effects.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()

	if a.NATS == nil {
		a.NATS = new(emitter.Config)
	}
	if a.Retention == nil {
		a.Retention = new(emitter.Retention)
	}
	if err := a.Retention.Provision(a.NATS.Retention); err != nil {
		return err
	}
	a.NATS.Retention = a.Retention.Events
	if err := a.NATS.Provision(); err != nil {
		return fmt.Errorf("provisioning nats: %w", err)
	}

	repl := caddy.NewReplacer()
	var smtp *email.Config
	if a.SMTP != nil {
		var err error
		if smtp, err = a.SMTP.Build(repl); err != nil {
			return err
		}
		if a.SMTP.PlainText() {
			a.logger.Warn("smtp tls is none: e-mails and the SMTP password travel in plain text",
				zap.String("smtp_address", a.SMTP.Address))
		}
	}
	if err := a.provisionAlerts(); err != nil {
		return err
	}
	for i, ep := range a.Endpoints {
		if ep == nil {
			return fmt.Errorf("endpoint %d is null: remove it or give it a name, url and events", i)
		}
		ep.SetGlobalGuard(a.globalGuard())
		ep.SetSMTP(smtp)
		if err := ep.Provision(repl); err != nil {
			return err // the error names the endpoint
		}
	}

	registerMetrics(ctx, a.logger)
	registerStatusMetrics(ctx, a.logger)
	registerBrokerMetrics(ctx, a.logger)
	return nil
}

// registerBrokerMetrics adds the gauge caddy_webhooks_broker_connected to
// the registry of the config being loaded.
func registerBrokerMetrics(ctx caddy.Context, logger *zap.Logger) {
	registry := ctx.GetMetricsRegistry()
	if registry == nil {
		return
	}
	var already prometheus.AlreadyRegisteredError
	if err := registry.Register(emitter.BrokerConnected); err != nil && !errors.As(err, &already) {
		logger.Warn("webhooks broker metric is not available", zap.Error(err))
	}
}

// BrokerState returns the state of the app's broker connection, and false
// while the app is not started.
func (a *App) BrokerState() (emitter.BrokerState, bool) {
	broker := a.runningBroker.Load()
	if broker == nil {
		return emitter.BrokerState{}, false
	}
	return broker.State(), true
}

// Validate checks the config.
func (a *App) Validate() error {
	if err := a.NATS.Validate(); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	if err := a.Retention.Validate(); err != nil {
		return err
	}
	if err := a.globalGuard().Validate(); err != nil {
		return err
	}

	if err := delivery.ValidateEndpoints(a.Endpoints); err != nil {
		return err
	}

	// An event that expires from the stream while it waits for a retry is
	// gone without a dead letter, so every schedule must end in time.
	retention := time.Duration(a.Retention.Events)
	for _, ep := range a.Endpoints {
		if span := retrySpan(ep); span >= retention {
			return fmt.Errorf("endpoint %q: its retries span up to %s, but events are kept for %s: raise the retention of events or shorten the retry schedule",
				ep.Name, span.Round(time.Second), retention)
		}
	}
	return nil
}

// globalGuard returns the app-level settings of the outbound address check.
func (a *App) globalGuard() delivery.GlobalGuard {
	return delivery.GlobalGuard{AllowPrivate: a.AllowPrivate, AllowHosts: a.AllowHosts, HTTPSOnly: a.HTTPSOnly}
}

// retrySpan returns the longest time from the first attempt to the last.
// Each wait is the retry delay with its maximum jitter of 20%, or a
// receiver's Retry-After up to retry_after_max when that is longer.
func retrySpan(ep *delivery.Endpoint) time.Duration {
	var total time.Duration
	for _, delay := range ep.Retry {
		jittered := time.Duration(delay) + time.Duration(delay)/5
		total += max(jittered, time.Duration(ep.RetryAfterMax))
	}
	return total
}

// Start starts or joins the broker, reconciles streams and consumers with
// the config, starts the delivery workers and publishes the events emitted
// before it.
//
// During a reload Caddy starts the new config before it is certain that
// all of that config's apps start, and the old config keeps running if one
// fails. So Start only creates and updates consumers while another config
// runs on the broker, and the consumers of removed endpoints go when the
// old config stops (see Stop).
func (a *App) Start() error {
	broker, err := emitter.Acquire(a.NATS, a.logger, publisherHooks)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.NATS.StartTimeout))
	defer cancel()

	if err := broker.EnsureStreams(ctx, a.Retention.StreamOptions()); err != nil {
		_ = broker.Release()
		return err
	}
	store, err := delivery.OpenStore(ctx, broker.JetStream(), broker.Layout())
	if err != nil {
		_ = broker.Release()
		return err
	}

	running := runningOn(a.NATS.BrokerKey())
	alerter := a.startAlerter()
	workers, err := delivery.Start(ctx, broker.JetStream(), broker.Layout(), a.Endpoints, delivery.Options{
		Logger:      a.logger,
		Hooks:       alerter.hooks(),
		RemoveStale: running == nil && a.NATS.RemovesStaleConsumers(),
	})
	if err != nil {
		alerter.stop()
		if running != nil && a.NATS.RemovesStaleConsumers() {
			a.reconcileFor(broker, running)
		}
		_ = broker.Release()
		return fmt.Errorf("starting delivery workers: %w", err)
	}

	a.broker = broker
	a.runningBroker.Store(broker)
	a.workers = workers
	a.alerter = alerter
	a.store = store
	a.startPublishing(broker.Publisher())
	addRunning(a)

	a.logger.Info("webhooks app started",
		zap.String("store_dir", a.NATS.StoreDir),
		zap.String("prefix", a.NATS.Prefix),
		zap.Int("endpoints", len(a.Endpoints)))
	return nil
}

// startPublishing hands the events emitted before Start to the publisher and
// routes every later Emit straight to it.
func (a *App) startPublishing(p *emitter.Publisher) {
	a.mu.Lock()
	defer a.mu.Unlock()

	for _, ev := range a.early {
		_ = p.Enqueue(ev) // the publisher logs and counts what it drops
	}
	a.early = nil
	a.publisher.Store(p)
}

// Stop stops the delivery workers and releases the broker. The broker shuts
// down, after publishing its queue, when no other config uses it.
//
// When another config keeps running on the broker, this is a reload: the
// old config after a successful one, or the new config after a failed one.
// Either way the running config's endpoints decide which consumers stay,
// and the attempts in flight here finish in the background instead of
// holding up the reload.
func (a *App) Stop() error {
	removeRunning(a)
	survivor := runningOn(a.NATS.BrokerKey())

	if a.workers != nil {
		if survivor != nil {
			a.workers.Drain()
		} else {
			a.workers.Stop(workerStopTimeout)
		}
		a.workers = nil
	}
	if a.alerter != nil {
		// After the workers, so the digests include their last dead
		// letters, and before the broker goes, so the digests are stored.
		a.alerter.stop()
		a.alerter = nil
	}
	if a.broker == nil {
		return nil
	}
	broker := a.broker
	a.broker = nil
	a.runningBroker.Store(nil)
	// On a shared broker, Reconcile would also delete the consumers that
	// other Caddy instances need, so there the survivor's Start, which
	// created and updated its own consumers, has to do.
	// TODO: after a failed reload on a shared broker, the consumers that
	// the failed config created or changed stay as it left them.
	if survivor != nil && a.NATS.RemovesStaleConsumers() {
		a.reconcileFor(broker, survivor)
	}

	// When the process exits, Caddy stops its apps in random order, so the
	// HTTP app may still be finishing requests whose events need the
	// broker. Caddy runs exit callbacks after every app has stopped.
	if caddy.Exiting() {
		caddy.OnExit(func(context.Context) {
			if err := broker.Release(); err != nil {
				a.logger.Error("releasing the NATS broker at exit failed", zap.Error(err))
			}
		})
		return nil
	}
	// Requests that this config's handlers still observe emit through this
	// broker when they end. Their config is gone after a reload, and with
	// it, when the new config has another store_dir or no webhooks app, its
	// last use of the broker. So the broker is released once they ended.
	if a.observations.Load() > 0 {
		go a.releaseAfterObservations(broker)
		return nil
	}
	if err := broker.Release(); err != nil {
		return fmt.Errorf("releasing the NATS broker: %w", err)
	}
	return nil
}

// releaseAfterObservations releases the broker once no request of this
// config is observed any more, or after observationWaitMax.
func (a *App) releaseAfterObservations(broker *emitter.Broker) {
	deadline := time.Now().Add(observationWaitMax)
	for a.observations.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := a.observations.Load(); n > 0 {
		a.logger.Warn("releasing the NATS broker while requests of an unloaded config are still observed; their events are dropped if no other config uses the broker",
			zap.Int64("requests", n),
			zap.Duration("waited", observationWaitMax))
	}
	if err := broker.Release(); err != nil {
		a.logger.Error("releasing the NATS broker failed", zap.Error(err))
	}
}

// observationWaitMax bounds how long an unloaded config keeps its broker for
// requests still in flight. Long streams, such as server-sent events, may
// outlast it.
const observationWaitMax = time.Minute

func (a *App) observationStarted() { a.observations.Add(1) }
func (a *App) observationEnded()   { a.observations.Add(-1) }

// reconcileFor makes the consumers match the endpoints of the config that
// keeps running.
func (a *App) reconcileFor(broker *emitter.Broker, survivor *App) {
	ctx, cancel := context.WithTimeout(context.Background(), reconcileTimeout)
	defer cancel()
	if err := delivery.Reconcile(ctx, broker.JetStream(), broker.Layout(), survivor.Endpoints, a.logger); err != nil {
		a.logger.Error("reconciling consumers with the running config failed; they are reconciled again at the next config load",
			zap.Error(err))
	}
}

// reconcileTimeout bounds the consumer updates made when a config stops.
const reconcileTimeout = 10 * time.Second

// running lists the started apps in start order, so a stopping app can tell
// whether another config keeps using its broker.
var (
	runningMu sync.Mutex
	running   []*App
)

func addRunning(a *App) {
	runningMu.Lock()
	defer runningMu.Unlock()
	running = append(running, a)
}

func removeRunning(a *App) {
	runningMu.Lock()
	defer runningMu.Unlock()
	running = slices.DeleteFunc(running, func(other *App) bool { return other == a })
}

// runningOn returns the most recently started app whose broker has the
// key brokerKey (see emitter.Config.BrokerKey), or nil if there is none.
func runningOn(brokerKey string) *App {
	runningMu.Lock()
	defer runningMu.Unlock()
	for i := len(running) - 1; i >= 0; i-- {
		if running[i].NATS.BrokerKey() == brokerKey {
			return running[i]
		}
	}
	return nil
}

// Emit queues an event for publishing. It never blocks: an event that
// cannot be queued is dropped with an error log and counted.
func (a *App) Emit(ev *emitter.Event) {
	if p := a.publisher.Load(); p != nil {
		_ = p.Enqueue(ev)
		return
	}

	a.mu.Lock()
	defer a.mu.Unlock()

	// Start may have run between the load above and the lock.
	if p := a.publisher.Load(); p != nil {
		_ = p.Enqueue(ev)
		return
	}
	if len(a.early) >= a.NATS.QueueSize {
		a.logger.Error("dropped event emitted before the app started: the queue is full",
			zap.String("event_id", ev.ID),
			zap.String("event_type", ev.Type),
			zap.Int("queue_size", a.NATS.QueueSize))
		eventsDropped.WithLabelValues(emitter.DropQueueFull).Inc()
		return
	}
	a.early = append(a.early, ev)
}

// subscribed reports whether some destination receives events of this type.
func (a *App) subscribed(eventType string) bool {
	for _, ep := range a.Endpoints {
		for _, pattern := range ep.Events {
			if emitter.MatchPattern(pattern, eventType) {
				return true
			}
		}
	}
	return false
}

// parseGlobalOption turns the `webhooks` global option into the app's JSON,
// adding to an earlier `webhooks` block if there is one.
func parseGlobalOption(d *caddycf.Dispenser, existing any) (any, error) {
	app := new(App)
	if prev, ok := existing.(httpcaddyfile.App); ok {
		if err := json.Unmarshal(prev.Value, app); err != nil {
			return nil, fmt.Errorf("reading the earlier webhooks option: %w", err)
		}
	}

	opts := caddyfile.Options{NATS: app.NATS, Retention: app.Retention, Endpoints: app.Endpoints, SMTP: app.SMTP, Alerts: app.Alerts, Guard: app.globalGuard()}
	if err := caddyfile.ParseOptions(d, &opts); err != nil {
		return nil, err
	}
	app.NATS = opts.NATS
	app.Retention = opts.Retention
	app.Endpoints = opts.Endpoints
	app.SMTP = opts.SMTP
	app.Alerts = opts.Alerts
	app.AllowPrivate = opts.Guard.AllowPrivate
	app.AllowHosts = opts.Guard.AllowHosts
	app.HTTPSOnly = opts.Guard.HTTPSOnly

	return httpcaddyfile.App{
		Name:  "webhooks",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
	_ caddy.Validator   = (*App)(nil)
)
