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
// (apps.webhooks.nats). It selects the broker that stores events: an
// embedded NATS server with JetStream (the default), optionally clustered
// with the embedded servers of other Caddy instances, or an existing NATS
// cluster given by URLs. It also configures the publisher that feeds it.
type Config struct {
	// URLs of an existing NATS cluster with JetStream, such as
	// `nats://nats-1:4222`. When set, Caddy connects to them instead of
	// starting an embedded server, and store_dir, cluster and server_name
	// must be unset. The client reconnects without limit, and while no
	// server is reachable events wait in the queue (see queue_size).
	// Default: none, which starts the embedded server.
	URLs []string `json:"urls,omitempty"`

	// Path of a NATS credentials file (JWT and NKey seed) for the
	// connection to URLs. Default: none.
	Credentials string `json:"credentials,omitempty"`

	// Path of a file with an NKey seed for the connection to URLs.
	// Default: none.
	NKey string `json:"nkey,omitempty"`

	// User name for the connection to URLs; set it with password.
	// Default: none.
	User string `json:"user,omitempty"`

	// Password for the connection to URLs. Placeholders such as
	// `{env.NATS_PASSWORD}` are replaced when connecting, so the secret
	// need not be in the config. It is never logged. Default: none.
	Password string `json:"password,omitempty"`

	// TLS settings of the connection to URLs. A `tls://` URL or a
	// server that requires TLS uses it. Default: the system's root
	// certificates and no client certificate.
	TLS *ClientTLS `json:"tls,omitempty"`

	// Number of copies JetStream keeps of each stream and of the state
	// bucket. It needs at least that many JetStream servers in the
	// cluster, and 3 keeps the data available when one server is down.
	// Changing it on existing streams needs a cluster with enough
	// servers. Maximum: 5. Default: `1`.
	Replicas int `json:"replicas,omitempty"`

	// Cluster makes the embedded server a member of a JetStream cluster
	// with the embedded servers of other Caddy instances. Default: none,
	// which runs a single server.
	Cluster *Cluster `json:"cluster,omitempty"`

	// Name of the embedded server in its cluster. It must be unique in
	// the cluster and stay the same across restarts, because JetStream
	// identifies the servers that store replicas by name. Only with
	// cluster. Default: the host name followed by a hash of store_dir,
	// such as `web-1-3f9a2c41`.
	ServerName string `json:"server_name,omitempty"`

	// RemoveStaleConsumers lets a config delete the `dest_` consumers
	// of destinations it does not have, with the events waiting in
	// them. With URLs or cluster, other Caddy instances may share the
	// consumers with configs of their own, so it is off unless set here:
	// set it only when every instance runs the same destinations. The
	// single embedded server always removes them. Default: false.
	RemoveStaleConsumers bool `json:"remove_stale_consumers,omitempty"`

	// Prefix of the names of the JetStream streams, the key-value bucket
	// and the subjects, so that several deployments can share one NATS
	// cluster without seeing each other's events, consumers, dead letters
	// or state. It is dot-separated tokens of ASCII letters, digits, '_'
	// and '-', at most 32 characters long, whose first token is not
	// `webhooks`. With `acme`, the events stream is
	// `ACME_WEBHOOKS_EVENTS` (the prefix upper-cased with '.' and '-'
	// replaced by '_') and events are published on
	// `acme.webhooks.events.<type>`. Changing it starts with new, empty
	// streams and leaves the old ones as they are. An embedded server
	// keeps the prefix it started with, so changing it there needs a
	// restart of Caddy. Default: none, which uses the names without a
	// prefix, such as `WEBHOOKS_EVENTS`.
	Prefix string `json:"prefix,omitempty"`

	// Directory of the embedded server's JetStream store. It is created
	// with mode 0700 if needed, and the server keeps its data under a
	// `jetstream` subdirectory. While the server runs, Caddy holds an
	// exclusive lock on the file `caddy-webhooks.lock` in it, so a second
	// Caddy process configured with the same directory fails to start
	// instead of corrupting the store. Relative paths are made absolute
	// against the working directory. Not used with URLs. Default:
	// `webhooks/nats` under Caddy's data directory.
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
	if !c.External() {
		if c.StoreDir == "" {
			c.StoreDir = filepath.Join(caddy.AppDataDir(), "webhooks", "nats")
		}
		abs, err := filepath.Abs(c.StoreDir)
		if err != nil {
			return fmt.Errorf("resolving store_dir %q: %w; set an absolute path", c.StoreDir, err)
		}
		c.StoreDir = abs
	}

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
	if c.External() {
		if err := c.validateExternal(); err != nil {
			return err
		}
	} else if err := c.validateEmbedded(); err != nil {
		return err
	}
	if err := ValidatePrefix(c.Prefix); err != nil {
		return err
	}
	if c.Replicas < 0 || c.Replicas > maxReplicas {
		return fmt.Errorf("invalid replicas %d: must be between 1 and %d", c.Replicas, maxReplicas)
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
