package emitter

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// sharedMaxPending bounds the asynchronous publishes in flight on the
// JetStream handle returned by Broker.JetStream.
const sharedMaxPending = 1024

var (
	// brokers holds one *brokerEntry per Config.BrokerKey: the absolute
	// store directory of an embedded server, or the connection settings of
	// an external cluster. A config reload starts the new app before it
	// stops the old one, so the count goes from 1 to 2 and back to 1 and
	// the broker keeps running.
	brokers = caddy.NewUsagePool()

	// storeLocks maps an absolute store directory to a channel of capacity
	// 1 that is full while a server owns the directory. The pool alone
	// does not ensure this: it removes an entry before destructing it, so
	// a new Acquire could otherwise start a second server on a store that
	// the old server is still closing. nats-server itself does not lock
	// the store directory.
	storeLocks sync.Map
)

// Broker is the NATS client connection with its event publisher, and the
// embedded NATS server with JetStream unless the config has URLs. It is
// shared by every config with the same BrokerKey.
type Broker struct {
	key       string
	storeDir  string // empty for an external cluster
	logger    *zap.Logger
	server    *server.Server // nil for an external cluster
	client    *clientConn
	js        jetstream.JetStream
	publisher *Publisher

	// layout names the streams, the bucket and the subjects. It comes
	// from the prefix of the config that started the broker and never
	// changes.
	layout Layout

	// mode, cluster and replicas describe the broker in State.
	mode     string
	cluster  string
	replicas int

	// clusterSettings is the cluster config the server started with. A
	// reload that changes it logs that the change waits for a restart.
	clusterSettings *Cluster

	// queueSize is the capacity the publisher was created with, which
	// cannot change while the broker runs.
	queueSize int

	// refs counts the Acquire calls not yet matched by Release, so that an
	// extra Release fails instead of releasing a later broker on the same
	// store directory.
	refs atomic.Int32

	// unlockStore releases the store directory's file lock, then its
	// in-process lock. destruct calls it once the server has shut down.
	// It is a no-op for an external cluster.
	unlockStore func()
}

// brokerEntry is the pool value. It keeps Destruct off the exported API
// of Broker, so callers can only stop a broker through Release.
type brokerEntry struct {
	broker *Broker
}

func (e *brokerEntry) Destruct() error {
	return e.broker.destruct()
}

// Acquire returns the broker for cfg.BrokerKey(), starting the embedded
// server or connecting to the external cluster, and starting the publisher,
// on first use. Call Release exactly once for every successful Acquire.
//
// When the broker already runs, it is returned as it is, with two
// changes from cfg and hooks: the publisher uses hooks from now on and a
// new DrainTimeout. A different QueueSize is logged as a warning and takes
// effect only after Caddy restarts. A different Prefix is an error,
// because the running publisher and server keep the layout they started
// with. Only an embedded server returns it, because the prefix is part of
// the BrokerKey of an external cluster.
//
// Acquire does not create streams: call EnsureStreams on JetStream()
// after it. Events enqueued before the streams exist are retried until
// they can be stored.
func Acquire(cfg *Config, logger *zap.Logger, hooks Hooks) (*Broker, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if !cfg.External() && (cfg.StoreDir == "" || !filepath.IsAbs(cfg.StoreDir)) {
		return nil, fmt.Errorf("acquiring NATS broker: store_dir %q is not an absolute path; call Config.Provision first", cfg.StoreDir)
	}
	config := *cfg
	if err := config.Provision(); err != nil {
		return nil, err
	}
	if err := config.Validate(); err != nil {
		return nil, err
	}

	value, loaded, err := brokers.LoadOrNew(config.BrokerKey(), func() (caddy.Destructor, error) {
		b, err := newBroker(config, logger, hooks)
		if err != nil {
			return nil, err
		}
		return &brokerEntry{broker: b}, nil
	})
	if err != nil {
		return nil, err
	}

	b := value.(*brokerEntry).broker
	if loaded && config.Prefix != b.layout.Prefix() {
		// LoadOrNew counted this use, and the broker keeps running
		// for the config that holds it.
		if _, err := brokers.Delete(b.key); err != nil {
			logger.Error("releasing the NATS broker after a rejected prefix", zap.String("broker", b.key), zap.Error(err))
		}
		return nil, fmt.Errorf("acquiring NATS broker %q: prefix %q differs from %q, which the running embedded server uses: restart Caddy to change the prefix, or give this config its own store_dir",
			b.key, config.Prefix, b.layout.Prefix())
	}
	b.refs.Add(1)
	if loaded {
		b.update(config, logger, hooks)
	}
	return b, nil
}

// Layout returns the names of the broker's streams, bucket and subjects.
func (b *Broker) Layout() Layout {
	return b.layout
}

// JetStream returns the JetStream handle on the broker's connection.
func (b *Broker) JetStream() jetstream.JetStream {
	return b.js
}

// Conn returns the client connection to the embedded server or the
// external cluster. It stays open until the last Release.
func (b *Broker) Conn() *nats.Conn {
	return b.client.conn
}

// Publisher returns the publisher that stores events in JetStream.
func (b *Broker) Publisher() *Publisher {
	return b.publisher
}

// Release drops one reference. When the last reference goes, the broker
// stops: the publisher stops accepting events and publishes what is
// queued, bounded by DrainTimeout, then the client connection is drained
// and closed and the embedded server, if any, shuts down. Release returns
// once the server has stopped.
func (b *Broker) Release() error {
	if b.refs.Add(-1) < 0 {
		b.refs.Add(1)
		return fmt.Errorf("releasing NATS broker %q: released more times than acquired; call Release once per successful Acquire", b.key)
	}
	if _, err := brokers.Delete(b.key); err != nil {
		return fmt.Errorf("stopping NATS broker %q: %w", b.key, err)
	}
	return nil
}

// newBroker takes the store directory's locks and starts a broker on it.
// The in-process lock comes first: it waits for a server of this process
// that is still stopping on the store, while the file lock, which keeps
// other processes out, fails at once when it is held.
func newBroker(cfg Config, logger *zap.Logger, hooks Hooks) (*Broker, error) {
	if cfg.External() {
		b, err := startExternalBroker(cfg, logger, hooks)
		if err != nil {
			return nil, err
		}
		b.unlockStore = func() {}
		return b, nil
	}

	unlock, err := lockStore(cfg.StoreDir, time.Duration(cfg.StartTimeout))
	if err != nil {
		return nil, err
	}
	fileLock, err := lockStoreFile(cfg.StoreDir)
	if err != nil {
		unlock()
		return nil, err
	}
	unlockAll := func() {
		if err := fileLock.release(); err != nil {
			logger.Error("releasing store directory lock", zap.String("store_dir", cfg.StoreDir), zap.Error(err))
		}
		unlock()
	}

	b, err := startBroker(cfg, logger, hooks)
	if err != nil {
		unlockAll()
		return nil, err
	}
	b.unlockStore = unlockAll
	return b, nil
}

func startBroker(cfg Config, logger *zap.Logger, hooks Hooks) (*Broker, error) {
	start := time.Now()

	s, token, err := startServer(&cfg, logger)
	if err != nil {
		return nil, err
	}

	client, err := connectInProcess(s, cfg.StoreDir, token, logger)
	if err != nil {
		shutdownServer(s)
		return nil, err
	}

	b, err := newBrokerOn(client, cfg, logger, hooks)
	if err != nil {
		client.conn.Close()
		shutdownServer(s)
		return nil, err
	}
	b.server = s
	b.storeDir = cfg.StoreDir
	b.mode = ModeEmbedded
	if cfg.Cluster != nil {
		b.mode = ModeCluster
		b.cluster = cfg.Cluster.Name
		b.clusterSettings = cfg.Cluster.clone()
	}

	fields := []zap.Field{
		zap.String("store_dir", cfg.StoreDir),
		zap.String("server_name", s.Name()),
		zap.String("nats_version", server.VERSION),
		zap.String("prefix", cfg.Prefix),
		zap.Int("queue_size", cfg.QueueSize),
		zap.Duration("duration", time.Since(start)),
	}
	if cfg.Cluster != nil {
		fields = append(fields,
			zap.String("cluster", cfg.Cluster.Name),
			zap.String("cluster_listen", cfg.Cluster.Listen),
			zap.Strings("routes", redactURLs(cfg.Cluster.Routes)),
			zap.Bool("routes_authenticated", cfg.Cluster.User != ""),
			zap.Bool("routes_tls", cfg.Cluster.TLS != nil))
	}
	logger.Info("embedded NATS server started", fields...)
	return b, nil
}

// startExternalBroker connects to the external cluster of cfg.URLs.
func startExternalBroker(cfg Config, logger *zap.Logger, hooks Hooks) (*Broker, error) {
	start := time.Now()
	client, err := connectExternal(&cfg, logger)
	if err != nil {
		return nil, err
	}
	b, err := newBrokerOn(client, cfg, logger, hooks)
	if err != nil {
		client.conn.Close()
		return nil, err
	}
	b.mode = ModeExternal

	logger.Info("connected to NATS cluster",
		redactedURLs(&cfg),
		zap.String("server_name", client.conn.ConnectedServerName()),
		zap.String("server_version", client.conn.ConnectedServerVersion()),
		zap.Int("replicas", cfg.StreamReplicas()),
		zap.String("prefix", cfg.Prefix),
		zap.Int("queue_size", cfg.QueueSize),
		zap.Duration("duration", time.Since(start)))
	return b, nil
}

// newBrokerOn creates the JetStream handle and starts the publisher on an
// open client connection.
func newBrokerOn(client *clientConn, cfg Config, logger *zap.Logger, hooks Hooks) (*Broker, error) {
	layout, err := NewLayout(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(client.conn, jetstream.WithPublishAsyncMaxPending(sharedMaxPending))
	if err != nil {
		return nil, fmt.Errorf("creating JetStream handle for NATS broker %q: %w", cfg.BrokerKey(), err)
	}
	publisher, err := newPublisher(client.conn, cfg, layout, logger, hooks)
	if err != nil {
		return nil, err
	}
	publisher.start()

	return &Broker{
		key:       cfg.BrokerKey(),
		logger:    logger,
		client:    client,
		js:        js,
		publisher: publisher,
		layout:    layout,
		queueSize: cfg.QueueSize,
		replicas:  cfg.StreamReplicas(),
	}, nil
}

// update applies the settings of a later Acquire to a running broker.
func (b *Broker) update(cfg Config, logger *zap.Logger, hooks Hooks) {
	b.publisher.setHooks(hooks)
	b.publisher.setDrainTimeout(time.Duration(cfg.DrainTimeout))
	if cfg.Cluster != nil && (!cfg.Cluster.equal(b.clusterSettings) || cfg.clusterServerName() != b.server.Name()) {
		logger.Warn("cluster change takes effect only after Caddy restarts; config reloads keep the running server",
			zap.String("broker", b.key),
			zap.String("cluster", b.cluster),
			zap.String("configured_cluster", cfg.Cluster.Name))
	}
	if cfg.QueueSize != b.queueSize {
		logger.Warn("queue_size change takes effect only after Caddy restarts; config reloads keep the running publisher",
			zap.String("broker", b.key),
			zap.Int("queue_size", b.queueSize),
			zap.Int("configured_queue_size", cfg.QueueSize))
	}
}

// destruct stops the broker in dependency order: the publisher first, as
// it uses the connection, then the connection, then the server.
func (b *Broker) destruct() error {
	defer b.unlockStore()
	start := time.Now()

	b.publisher.close()
	b.client.close(b.logger)
	if b.server == nil {
		b.logger.Info("disconnected from NATS cluster",
			zap.String("broker", b.key),
			zap.Duration("duration", time.Since(start)))
		return nil
	}
	b.server.Shutdown()
	b.server.WaitForShutdown()

	b.logger.Info("embedded NATS server stopped",
		zap.String("store_dir", b.storeDir),
		zap.Duration("duration", time.Since(start)))
	return nil
}

// lockStore waits until no other broker owns storeDir, for at most
// timeout, and returns the function that releases it.
func lockStore(storeDir string, timeout time.Duration) (func(), error) {
	value, _ := storeLocks.LoadOrStore(storeDir, make(chan struct{}, 1))
	lock := value.(chan struct{})

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case lock <- struct{}{}:
		return func() { <-lock }, nil
	case <-timer.C:
		return nil, fmt.Errorf("starting embedded NATS server in %q: the previous server on this store did not stop within %s; retry later or raise start_timeout", storeDir, timeout)
	}
}
