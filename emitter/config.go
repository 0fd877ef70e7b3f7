package emitter

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Defaults of Config, applied by Provision.
const (
	DefaultQueueSize    = 10000
	DefaultStartTimeout = 60 * time.Second
	DefaultDrainTimeout = 15 * time.Second

	// minRetention keeps a typo such as a bare integer (read as nanoseconds)
	// from creating a stream that expires events before they are delivered.
	minRetention = time.Minute

	// maxQueueSize bounds the memory that the queue's buffer reserves up
	// front, one pointer per slot.
	maxQueueSize = 1_000_000
)

// Config is the `nats` part of the webhooks app JSON config
// (apps.webhooks.nats). It configures the embedded NATS server with
// JetStream that stores events, and the publisher that feeds it.
//
// TODO: only the embedded server is supported; connecting to external NATS
// servers (URLs, credentials, replicas) is not implemented yet.
type Config struct {
	// Directory of the embedded server's JetStream store. It is created
	// with mode 0700 if needed, and the server keeps its data under a
	// `jetstream` subdirectory. While the server runs, Caddy holds an
	// exclusive lock on the file `caddy-webhooks.lock` in it, so a second
	// Caddy process configured with the same directory fails to start
	// instead of corrupting the store. Relative paths are made absolute
	// against the working directory. Default: `webhooks/nats` under
	// Caddy's data directory.
	StoreDir string `json:"store_dir,omitempty"`

	// How long events stay in the WEBHOOKS_EVENTS stream. Keep it longer
	// than the longest delivery retry schedule, or events disappear before
	// their last attempt. Minimum: `1m`. Default: `7d`.
	Retention caddy.Duration `json:"retention,omitempty"`

	// Capacity of the in-memory queue between the HTTP handlers and the
	// publisher. When it is full, new events are dropped with an error log
	// instead of slowing down the proxied requests. Changing it takes
	// effect only after Caddy restarts, because config reloads keep the
	// running publisher. Maximum: 1000000. Default: `10000`.
	QueueSize int `json:"queue_size,omitempty"`

	// How long starting the embedded server may take. Recovering a large
	// store takes longer than starting an empty one. Default: `60s`.
	StartTimeout caddy.Duration `json:"start_timeout,omitempty"`

	// How long stopping waits for queued events to be published. Events
	// still unpublished after it are counted in an error log and lost.
	// A config reload applies a new value to the running publisher.
	// Default: `15s`.
	DrainTimeout caddy.Duration `json:"drain_timeout,omitempty"`
}

// Provision fills in defaults and makes StoreDir absolute. It starts
// nothing and creates no directories, so `caddy validate` stays free of
// side effects.
func (c *Config) Provision() error {
	if c.StoreDir == "" {
		c.StoreDir = filepath.Join(caddy.AppDataDir(), "webhooks", "nats")
	}
	abs, err := filepath.Abs(c.StoreDir)
	if err != nil {
		return fmt.Errorf("resolving store_dir %q: %w; set an absolute path", c.StoreDir, err)
	}
	c.StoreDir = abs

	if c.Retention == 0 {
		c.Retention = caddy.Duration(DefaultEventsMaxAge)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = caddy.Duration(DefaultStartTimeout)
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = caddy.Duration(DefaultDrainTimeout)
	}
	return nil
}

// Validate checks a provisioned config.
func (c *Config) Validate() error {
	if c.StoreDir == "" || !filepath.IsAbs(c.StoreDir) {
		return fmt.Errorf("invalid store_dir %q: must be an absolute path; call Provision before Validate", c.StoreDir)
	}
	if time.Duration(c.Retention) < minRetention {
		return fmt.Errorf("invalid retention %s: must be at least %s; use a duration such as '7d'",
			time.Duration(c.Retention), minRetention)
	}
	if c.QueueSize < 1 || c.QueueSize > maxQueueSize {
		return fmt.Errorf("invalid queue_size %d: must be between 1 and %d", c.QueueSize, maxQueueSize)
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("invalid start_timeout %s: must be positive; use a duration such as '60s'",
			time.Duration(c.StartTimeout))
	}
	if c.DrainTimeout < 0 {
		return fmt.Errorf("invalid drain_timeout %s: must be positive; use a duration such as '15s'",
			time.Duration(c.DrainTimeout))
	}
	return nil
}
