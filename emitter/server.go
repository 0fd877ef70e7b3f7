package emitter

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// serverName is fixed so that the store written by one run is read back
	// under the same name by the next.
	serverName = "caddy-webhooks"

	// connectionName identifies the in-process client in the server's
	// connection list.
	connectionName = "caddy-webhooks"

	// connDrainTimeout bounds how long closing the client connection waits
	// for its subscriptions to finish.
	connDrainTimeout = 5 * time.Second

	// abandonedStartWait bounds how long a timed-out start waits for the
	// server's Start call to return after Shutdown.
	abandonedStartWait = 10 * time.Second

	// externalReconnectWait is the pause between two attempts to reconnect
	// to the same external server.
	externalReconnectWait = time.Second
)

// serverOptions returns the options of a single embedded server. The
// server opens no port: clients connect in-process.
func serverOptions(storeDir string) *server.Options {
	return &server.Options{
		ServerName: serverName,
		JetStream:  true,
		StoreDir:   storeDir,

		// With DontListen, the server opens no client port. Clustering
		// needs a client listener, so clusterOptions turns it off.
		DontListen: true,

		// Without NoSigs, nats-server installs its own SIGINT handler,
		// which calls os.Exit and cuts Caddy's graceful shutdown short.
		NoSigs: true,

		// NoLog keeps the server from configuring its own stderr logger.
		// startServer installs a zap adapter instead.
		NoLog: true,
	}
}

// embeddedOptions returns the options of the embedded server described by
// cfg, and the token its clients need, which is empty without a cluster.
func embeddedOptions(cfg *Config) (*server.Options, string, error) {
	opts := serverOptions(cfg.StoreDir)
	if cfg.Cluster == nil {
		return opts, "", nil
	}
	token, err := clusterOptions(opts, cfg)
	if err != nil {
		return nil, "", err
	}
	return opts, token, nil
}

// startServer starts the embedded server on cfg.StoreDir and waits until
// it accepts connections with JetStream enabled, for at most
// cfg.StartTimeout. On failure, the half-started server is shut down. The
// returned token authenticates clients of a clustered server.
func startServer(cfg *Config, logger *zap.Logger) (*server.Server, string, error) {
	storeDir, timeout := cfg.StoreDir, time.Duration(cfg.StartTimeout)
	opts, token, err := embeddedOptions(cfg)
	if err != nil {
		return nil, "", err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("starting embedded NATS server in %q: %w", storeDir, err)
	}
	serverLog := newServerLogger(logger.Named("nats"))
	s.SetLoggerV2(serverLog, logger.Core().Enabled(zapcore.DebugLevel), false, false)

	// Start blocks while JetStream recovers the store, which can take
	// long on a large store, so it runs in a goroutine under the timeout.
	deadline := time.Now().Add(timeout)
	started := make(chan struct{})
	go func() {
		s.Start()
		close(started)
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-started:
	case <-timer.C:
		abandonStart(s, started, logger)
		return nil, "", fmt.Errorf("starting embedded NATS server in %q: not ready after %s; a large store recovers slowly, so raise start_timeout", storeDir, timeout)
	}

	if message := serverLog.fatalMessage(); message != "" {
		shutdownServer(s)
		return nil, "", fmt.Errorf("starting embedded NATS server in %q: %s; check that the directory is writable and that no other process uses it", storeDir, message)
	}
	if !s.ReadyForConnections(max(time.Until(deadline), time.Second)) {
		shutdownServer(s)
		return nil, "", fmt.Errorf("starting embedded NATS server in %q: not ready for connections after %s; raise start_timeout", storeDir, timeout)
	}
	if !s.JetStreamEnabled() {
		shutdownServer(s)
		return nil, "", fmt.Errorf("starting embedded NATS server in %q: JetStream is not enabled; see the nats log lines above for the cause", storeDir)
	}
	return s, token, nil
}

// abandonStart shuts down a server whose Start did not return in time and
// waits a bounded time for Start to return, so the store is not left to a
// server that is still opening it.
func abandonStart(s *server.Server, started <-chan struct{}, logger *zap.Logger) {
	s.Shutdown()
	select {
	case <-started:
		s.WaitForShutdown()
	case <-time.After(abandonedStartWait):
		// NOTE: Start may still be recovering the store in its goroutine,
		// because nats-server offers no way to cancel it.
		logger.Warn("embedded NATS server did not stop after a timed-out start",
			zap.Duration("waited", abandonedStartWait))
	}
}

func shutdownServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// clientConn is the broker's client connection, to the embedded server or
// to an external cluster.
type clientConn struct {
	conn   *nats.Conn
	closed chan struct{} // closed once the connection is closed

	// disconnectedAt is the Unix time in nanoseconds of the last lost
	// connection, or 0 while connected.
	disconnectedAt atomic.Int64
}

// connectInProcess connects to s through an in-process pipe. The client
// reconnects to the same server without limit, because there is no other
// server to fail over to. token is the clustered server's client token.
func connectInProcess(s *server.Server, storeDir, token string, logger *zap.Logger) (*clientConn, error) {
	opts := []nats.Option{nats.InProcessServer(s)}
	if token != "" {
		opts = append(opts, nats.Token(token))
	}
	c, err := connect("", opts, "the embedded server", logger)
	if err != nil {
		return nil, fmt.Errorf("connecting to embedded NATS server in %q: %w", storeDir, err)
	}
	return c, nil
}

// connectExternal connects to the servers of cfg.URLs. The client
// reconnects without limit. While it reconnects, publishes go to a
// bounded buffer, and once that is full they fail with an error that the
// publisher retries, so nothing is dropped silently.
func connectExternal(cfg *Config, logger *zap.Logger) (*clientConn, error) {
	opts, err := externalOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.ReconnectWait(externalReconnectWait))
	c, err := connect(strings.Join(cfg.URLs, ","), opts, "the NATS cluster", logger)
	if err != nil {
		urls := make([]string, len(cfg.URLs))
		for i, raw := range cfg.URLs {
			urls[i] = redactURL(raw)
		}
		return nil, fmt.Errorf("connecting to NATS servers %q: %w; check that they are reachable and that the credentials are valid", urls, err)
	}
	return c, nil
}

// connect opens a client connection with the options every broker
// connection shares: unlimited reconnects and logged state changes.
func connect(urls string, extra []nats.Option, peer string, logger *zap.Logger) (*clientConn, error) {
	c := &clientConn{closed: make(chan struct{})}
	var closeOnce sync.Once

	opts := append([]nats.Option{
		nats.Name(connectionName),
		nats.MaxReconnects(-1),
		nats.DrainTimeout(connDrainTimeout),
		nats.ClosedHandler(func(*nats.Conn) {
			closeOnce.Do(func() { close(c.closed) })
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.disconnectedAt.CompareAndSwap(0, time.Now().UnixNano())
			if err != nil {
				logger.Warn("NATS client disconnected from "+peer+"; events wait in the queue until it reconnects", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			since := c.disconnectedAt.Swap(0)
			fields := []zap.Field{zap.String("server_name", nc.ConnectedServerName())}
			if since != 0 {
				fields = append(fields, zap.Duration("disconnected_for", time.Since(time.Unix(0, since))))
			}
			logger.Info("NATS client reconnected to "+peer, fields...)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			logger.Error("NATS client error", fields...)
		}),
	}, extra...)

	conn, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	return c, nil
}

// close drains the connection, so that pending subscriptions finish, and
// closes it outright if draining takes longer than connDrainTimeout.
func (c *clientConn) close(logger *zap.Logger) {
	if err := c.conn.Drain(); err != nil {
		c.conn.Close()
		return
	}
	timer := time.NewTimer(connDrainTimeout + time.Second)
	defer timer.Stop()
	select {
	case <-c.closed:
	case <-timer.C:
		logger.Warn("draining NATS client connection timed out; closing it",
			zap.Duration("timeout", connDrainTimeout))
		c.conn.Close()
	}
}
