package emitter

import (
	"fmt"
	"sync"
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
)

// serverOptions returns the options of the embedded server. The server
// opens no port: clients connect in-process.
func serverOptions(storeDir string) *server.Options {
	return &server.Options{
		ServerName: serverName,
		JetStream:  true,
		StoreDir:   storeDir,

		// With DontListen, the server opens no client port. Clustering
		// needs a client listener (routing never starts without one in
		// nats-server v2.15.3), so this changes once clustering exists.
		DontListen: true,

		// Without NoSigs, nats-server installs its own SIGINT handler,
		// which calls os.Exit and cuts Caddy's graceful shutdown short.
		NoSigs: true,

		// NoLog keeps the server from configuring its own stderr logger.
		// startServer installs a zap adapter instead.
		NoLog: true,
	}
}

// startServer starts the embedded server on storeDir and waits until it
// accepts connections with JetStream enabled, for at most timeout. On
// failure, the half-started server is shut down.
func startServer(storeDir string, timeout time.Duration, logger *zap.Logger) (*server.Server, error) {
	s, err := server.NewServer(serverOptions(storeDir))
	if err != nil {
		return nil, fmt.Errorf("starting embedded NATS server in %q: %w", storeDir, err)
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
		return nil, fmt.Errorf("starting embedded NATS server in %q: not ready after %s; a large store recovers slowly, so raise start_timeout", storeDir, timeout)
	}

	if message := serverLog.fatalMessage(); message != "" {
		shutdownServer(s)
		return nil, fmt.Errorf("starting embedded NATS server in %q: %s; check that the directory is writable and that no other process uses it", storeDir, message)
	}
	if !s.ReadyForConnections(max(time.Until(deadline), time.Second)) {
		shutdownServer(s)
		return nil, fmt.Errorf("starting embedded NATS server in %q: not ready for connections after %s; raise start_timeout", storeDir, timeout)
	}
	if !s.JetStreamEnabled() {
		shutdownServer(s)
		return nil, fmt.Errorf("starting embedded NATS server in %q: JetStream is not enabled; see the nats log lines above for the cause", storeDir)
	}
	return s, nil
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

// inProcessConn is the client connection to the embedded server.
type inProcessConn struct {
	conn   *nats.Conn
	closed chan struct{} // closed once the connection is closed
}

// connectInProcess connects to s through an in-process pipe. The client
// reconnects to the same server without limit, because there is no other
// server to fail over to.
func connectInProcess(s *server.Server, storeDir string, logger *zap.Logger) (*inProcessConn, error) {
	c := &inProcessConn{closed: make(chan struct{})}
	var closeOnce sync.Once

	conn, err := nats.Connect("",
		nats.InProcessServer(s),
		nats.Name(connectionName),
		nats.MaxReconnects(-1),
		nats.DrainTimeout(connDrainTimeout),
		nats.ClosedHandler(func(*nats.Conn) {
			closeOnce.Do(func() { close(c.closed) })
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS client disconnected from the embedded server", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			logger.Info("NATS client reconnected to the embedded server")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			logger.Error("NATS client error", fields...)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to embedded NATS server in %q: %w", storeDir, err)
	}
	c.conn = conn
	return c, nil
}

// close drains the connection, so that pending subscriptions finish, and
// closes it outright if draining takes longer than connDrainTimeout.
func (c *inProcessConn) close(logger *zap.Logger) {
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
