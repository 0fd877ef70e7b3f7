// Package alerts collects operational happenings, such as dead letters,
// into digests, so that an operator gets one message per destination and
// interval instead of one per event.
package alerts

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// DefaultInterval is how long dead letters of one destination are collected
// before their digest is sent.
const DefaultInterval = 5 * time.Minute

// MaxDigestIDs bounds the event ids a digest lists. The count goes on past
// it, so a flood of dead letters cannot grow a digest without bound.
const MaxDigestIDs = 20

// DeadLetter is one event that a destination dead-lettered.
type DeadLetter struct {
	Destination string
	EventID     string
	EventType   string
	Reason      string
	Time        time.Time
}

// Digest is the summary of the dead letters of one destination in one
// interval.
type Digest struct {
	Destination string    `json:"destination"`
	Count       int       `json:"count"`
	EventIDs    []string  `json:"event_ids"`
	EventTypes  []string  `json:"event_types"`
	LastReason  string    `json:"last_reason"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
}

// Collector gathers dead letters per destination. When the interval that
// began with a destination's first dead letter has passed, it calls send
// with one Digest for that destination. Add never calls send, so it does
// not wait for it.
type Collector struct {
	interval time.Duration
	send     func(Digest)

	mu      sync.Mutex
	pending map[string]*Digest
	timers  map[string]*time.Timer
	closed  bool
}

// NewCollector returns a Collector that calls send with each digest, on a
// goroutine of its own. An interval of 0 or less is DefaultInterval.
func NewCollector(interval time.Duration, send func(Digest)) *Collector {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Collector{
		interval: interval,
		send:     send,
		pending:  make(map[string]*Digest),
		timers:   make(map[string]*time.Timer),
	}
}

// Add records a dead letter. The first one of a destination starts its
// interval.
func (c *Collector) Add(dl DeadLetter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}

	d, ok := c.pending[dl.Destination]
	if !ok {
		d = &Digest{Destination: dl.Destination, First: dl.Time}
		c.pending[dl.Destination] = d
		c.timers[dl.Destination] = time.AfterFunc(c.interval, func() { c.flush(dl.Destination) })
	}
	d.Count++
	if len(d.EventIDs) < MaxDigestIDs {
		d.EventIDs = append(d.EventIDs, dl.EventID)
	}
	if !slices.Contains(d.EventTypes, dl.EventType) && len(d.EventTypes) < MaxDigestIDs {
		d.EventTypes = append(d.EventTypes, dl.EventType)
	}
	d.LastReason = dl.Reason
	d.Last = dl.Time
}

// flush sends the digest of one destination and removes it.
func (c *Collector) flush(destination string) {
	c.mu.Lock()
	d, ok := c.pending[destination]
	delete(c.pending, destination)
	delete(c.timers, destination)
	c.mu.Unlock()

	if ok {
		c.send(*d)
	}
}

// Close stops the timers and sends the digests collected so far, so that
// a config reload or shutdown loses none. It returns when they are sent or
// ctx ends, and Add does nothing after it.
func (c *Collector) Close(ctx context.Context) {
	c.mu.Lock()
	c.closed = true
	var digests []Digest
	// A timer that already fired finds its digest gone, so every digest
	// is sent once, here or by flush.
	for destination, d := range c.pending {
		c.timers[destination].Stop()
		digests = append(digests, *d)
	}
	clear(c.pending)
	clear(c.timers)
	c.mu.Unlock()

	slices.SortFunc(digests, func(a, b Digest) int { return a.First.Compare(b.First) })
	for _, d := range digests {
		if ctx.Err() != nil {
			return
		}
		c.send(d)
	}
}

// Config is the destination list of alerts: the JSON config apps.webhooks.alerts.
type Config struct {
	// Email lists the addresses that receive alerts by e-mail, through the
	// app's SMTP server.
	Email []string `json:"email,omitempty"`

	// Notify names chat destinations (endpoints with a chat format) that
	// receive the alerts as well as their own events.
	Notify []string `json:"notify,omitempty"`

	// Interval is how long dead letters of one destination are collected
	// into one alert, and how often dropped events are reported. Default:
	// `5m`.
	Interval caddy.Duration `json:"interval,omitempty"`
}
