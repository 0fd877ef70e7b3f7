package webhooks

import (
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the webhooks Caddy app. It runs the JetStream broker, publishes the
// events that the handlers observe, and delivers them to destinations.
//
// NOTE: work in progress; the broker and delivery wiring land in this file.
type App struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "webhooks",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets up the app.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	return nil
}

// Start starts the app.
func (a *App) Start() error { return nil }

// Stop stops the app.
func (a *App) Stop() error { return nil }

// Emit queues an event for publishing. It never blocks.
func (a *App) Emit(ev *emitter.Event) {}

var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
