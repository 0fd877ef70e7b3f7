package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/caddyfile"
	"github.com/caddy-webhooks/caddy-webhooks/delivery"
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
	// consumer named `dest_<name>` that receives the events its `events`
	// patterns select.
	Endpoints []*delivery.Endpoint `json:"endpoints,omitempty"`

	logger  *zap.Logger
	broker  *emitter.Broker
	workers *delivery.Workers

	// publisher is set by Start and kept after Stop: during a reload the
	// publisher outlives this instance, and once it is closed Enqueue
	// reports that itself.
	publisher atomic.Pointer[emitter.Publisher]

	// early holds events emitted before Start, because Caddy starts its apps
	// in random order and the HTTP app may serve requests first.
	mu    sync.Mutex
	early []*emitter.Event
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
	a.logger = ctx.Logger()

	if a.NATS == nil {
		a.NATS = new(emitter.Config)
	}
	if err := a.NATS.Provision(); err != nil {
		return fmt.Errorf("provisioning nats: %w", err)
	}

	repl := caddy.NewReplacer()
	for _, ep := range a.Endpoints {
		if err := ep.Provision(repl); err != nil {
			return err // the error names the endpoint
		}
	}

	registerMetrics(ctx, a.logger)
	return nil
}

// Validate checks the config.
func (a *App) Validate() error {
	if err := a.NATS.Validate(); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return delivery.ValidateEndpoints(a.Endpoints)
}

// Start starts or joins the broker, reconciles streams and consumers with
// the config, starts the delivery workers and publishes the events emitted
// before it.
func (a *App) Start() error {
	broker, err := emitter.Acquire(a.NATS, a.logger, publisherHooks)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.NATS.StartTimeout))
	defer cancel()

	streams := emitter.StreamOptions{EventsMaxAge: time.Duration(a.NATS.Retention)}
	if err := emitter.EnsureStreams(ctx, broker.JetStream(), streams); err != nil {
		_ = broker.Release()
		return err
	}

	workers, err := delivery.Start(ctx, broker.JetStream(), a.Endpoints, delivery.Options{
		Logger: a.logger,
		Hooks:  deliveryHooks,
	})
	if err != nil {
		_ = broker.Release()
		return fmt.Errorf("starting delivery workers: %w", err)
	}

	a.broker = broker
	a.workers = workers
	a.startPublishing(broker.Publisher())

	a.logger.Info("webhooks app started",
		zap.String("store_dir", a.NATS.StoreDir),
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
func (a *App) Stop() error {
	if a.workers != nil {
		a.workers.Stop(workerStopTimeout)
		a.workers = nil
	}
	if a.broker == nil {
		return nil
	}
	broker := a.broker
	a.broker = nil

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
	if err := broker.Release(); err != nil {
		return fmt.Errorf("releasing the NATS broker: %w", err)
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

	opts := caddyfile.Options{NATS: app.NATS, Endpoints: app.Endpoints}
	if err := caddyfile.ParseOptions(d, &opts); err != nil {
		return nil, err
	}
	app.NATS = opts.NATS
	app.Endpoints = opts.Endpoints

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
