package emitter

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Retention sets how long the streams keep what they store
// (apps.webhooks.retention). Dead letters are kept until they are replayed
// or purged through the admin API.
type Retention struct {
	// How long events stay in the WEBHOOKS_EVENTS stream. Keep it longer
	// than the longest delivery retry schedule, or events disappear before
	// their last attempt. It replaces `nats.retention`, which still works
	// when this is unset. Minimum: `1m`. Default: `7d`.
	Events caddy.Duration `json:"events,omitempty"`

	// How long attempt records stay in the WEBHOOKS_ATTEMPTS stream.
	// Minimum: `1m`. Default: `30d`.
	Attempts caddy.Duration `json:"attempts,omitempty"`
}

// Provision fills in the defaults. natsRetention is the older
// `nats.retention` setting as configured, 0 when unset: it sets Events when
// Events is unset, and must equal it otherwise.
func (r *Retention) Provision(natsRetention caddy.Duration) error {
	switch {
	case r.Events == 0 && natsRetention != 0:
		r.Events = natsRetention
	case r.Events == 0:
		r.Events = caddy.Duration(DefaultEventsMaxAge)
	case natsRetention != 0 && natsRetention != r.Events:
		return fmt.Errorf("retention of events is set twice, to %s in retention and to %s in nats: remove the one in nats",
			time.Duration(r.Events), time.Duration(natsRetention))
	}
	if r.Attempts == 0 {
		r.Attempts = caddy.Duration(DefaultAttemptsMaxAge)
	}
	return nil
}

// Validate checks a provisioned retention.
func (r *Retention) Validate() error {
	if time.Duration(r.Events) < minRetention {
		return fmt.Errorf("invalid retention of events %s: must be at least %s; use a duration such as '7d'",
			time.Duration(r.Events), minRetention)
	}
	if time.Duration(r.Attempts) < minRetention {
		return fmt.Errorf("invalid retention of attempts %s: must be at least %s; use a duration such as '30d'",
			time.Duration(r.Attempts), minRetention)
	}
	return nil
}

// StreamOptions returns the stream settings of the retention.
func (r *Retention) StreamOptions() StreamOptions {
	return StreamOptions{EventsMaxAge: time.Duration(r.Events), AttemptsMaxAge: time.Duration(r.Attempts)}
}
