package emitter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestAcquireSharesServerPerStoreDir(t *testing.T) {
	cfg := testConfig(t)
	first := acquire(t, cfg, zap.NewNop(), Hooks{})
	second := acquire(t, cfg, zap.NewNop(), Hooks{})
	if first != second || first.server != second.server {
		t.Fatalf("two Acquires on one store dir returned different servers")
	}
	ensureStreams(t, first)
	if err := first.Publisher().Enqueue(testEvent("evt-1")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	waitForMessages(t, first.JetStream(), 1)

	// One Release of two keeps the server, the connection and the
	// publisher running.
	if err := first.Release(); err != nil {
		t.Fatalf("first Release: %v", err)
	}
	if !second.server.Running() {
		t.Fatalf("server stopped after one of two Releases")
	}
	if err := second.Publisher().Enqueue(testEvent("evt-2")); err != nil {
		t.Fatalf("Enqueue after one Release: %v", err)
	}
	waitForMessages(t, second.JetStream(), 2)

	// The last Release stops everything.
	stopped := second.server
	if err := second.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if stopped.Running() {
		t.Errorf("server still running after the last Release")
	}
	if !second.Conn().IsClosed() {
		t.Errorf("client connection still open after the last Release")
	}

	// A new Acquire starts a new server on the same store and finds the
	// stored events.
	third := acquire(t, cfg, zap.NewNop(), Hooks{})
	if third.server == stopped {
		t.Fatalf("Acquire after the last Release returned the stopped server")
	}
	waitForMessages(t, third.JetStream(), 2)
	stored := storedEvents(t, third.JetStream())
	for _, id := range []string{"evt-1", "evt-2"} {
		if _, ok := stored[id]; !ok {
			t.Errorf("event %s missing after restart", id)
		}
	}
}

func TestReleaseDrainsQueuedEvents(t *testing.T) {
	cfg := testConfig(t)
	recorder := newHookRecorder()
	b, err := Acquire(cfg, zap.NewNop(), recorder.hooks())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	ensureStreams(t, b)

	const count = 2000
	for i := range count {
		if err := b.Publisher().Enqueue(testEvent(fmt.Sprintf("evt-%04d", i))); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	if err := b.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got := recorder.publishedCount(); got != count {
		t.Errorf("Published hook called %d times before Release returned, want %d", got, count)
	}

	reopened := acquire(t, cfg, zap.NewNop(), Hooks{})
	waitForMessages(t, reopened.JetStream(), count)
}

func TestAcquireWarnsAboutRestartOnlySettings(t *testing.T) {
	cfg := testConfig(t)
	first := acquire(t, cfg, zap.NewNop(), Hooks{})

	changed := *cfg
	changed.QueueSize = cfg.QueueSize * 2
	changed.DrainTimeout = caddy.Duration(3 * time.Second)
	logger, logs := observedLogger()
	recorder := newHookRecorder()
	second := acquire(t, &changed, logger, recorder.hooks())

	if first != second {
		t.Fatalf("Acquire with a new queue_size returned a new broker")
	}
	warnings := logs.FilterMessageSnippet("queue_size").All()
	if len(warnings) != 1 {
		t.Fatalf("logged %d queue_size warnings, want 1", len(warnings))
	}
	if got := warnings[0].ContextMap()["configured_queue_size"]; got != int64(changed.QueueSize) {
		t.Errorf("warning configured_queue_size = %v, want %d", got, changed.QueueSize)
	}
	if got := time.Duration(second.Publisher().drainTimeout.Load()); got != 3*time.Second {
		t.Errorf("drain timeout = %s after the second Acquire, want 3s", got)
	}

	// The hooks of the latest Acquire receive the events.
	ensureStreams(t, second)
	if err := second.Publisher().Enqueue(testEvent("evt-1")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	waitFor(t, 10*time.Second, func() error {
		if got := recorder.publishedCount(); got != 1 {
			return fmt.Errorf("latest Published hook called %d times, want 1", got)
		}
		return nil
	})
}

func TestReleaseMoreThanAcquired(t *testing.T) {
	b, err := Acquire(testConfig(t), zap.NewNop(), Hooks{})
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if err := b.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	err = b.Release()
	if err == nil || !strings.Contains(err.Error(), "released more times than acquired") {
		t.Errorf("second Release = %v, want an error about the extra Release", err)
	}
}

func TestAcquireConcurrentOnOneStoreDir(t *testing.T) {
	cfg := testConfig(t)
	const callers = 8
	brokers := make([]*Broker, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			brokers[i], errs[i] = Acquire(cfg, zap.NewNop(), Hooks{})
		})
	}
	wg.Wait()

	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("Acquire %d: %v", i, errs[i])
		}
		if brokers[i] != brokers[0] {
			t.Errorf("Acquire %d returned a different broker", i)
		}
	}
	for i := range callers {
		if err := brokers[i].Release(); err != nil {
			t.Errorf("Release %d: %v", i, err)
		}
	}
	if brokers[0].server.Running() {
		t.Errorf("server still running after every Release")
	}
}

func TestAcquireWaitsForStoppingServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.DrainTimeout = caddy.Duration(time.Second)
	old, err := Acquire(cfg, zap.NewNop(), Hooks{})
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}

	// Without streams, the queued event keeps the old broker draining
	// until its drain timeout.
	if err := old.Publisher().Enqueue(testEvent("evt-stuck")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	released := make(chan error, 1)
	go func() { released <- old.Release() }()
	waitFor(t, 5*time.Second, func() error {
		if err := old.Publisher().Enqueue(testEvent("evt-probe")); err == nil {
			return fmt.Errorf("publisher still accepts events")
		}
		return nil
	})

	// The pool no longer holds the old broker, so this starts a new one,
	// which must wait until the old server has released the store.
	fresh := acquire(t, cfg, zap.NewNop(), Hooks{})
	if old.server.Running() {
		t.Errorf("new broker started while the old server was still running on the store")
	}
	if fresh.server == old.server {
		t.Errorf("Acquire after the last Release returned the stopping server")
	}
	if err := <-released; err != nil {
		t.Errorf("Release: %v", err)
	}
}

func TestAcquireFailsOnUnusableStoreDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	// nats-server creates the jetstream directory itself, so a regular
	// file in its place fails the server's start, after the store lock.
	blockedJetStream := t.TempDir()
	if err := os.WriteFile(filepath.Join(blockedJetStream, "jetstream"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name     string
		storeDir string
		want     string
	}{
		{name: "below a regular file", storeDir: filepath.Join(file, "store"), want: "creating store directory"},
		// The server's fatal log line is the cause, not the start timeout.
		{name: "jetstream is a regular file", storeDir: blockedJetStream, want: "Can't start JetStream"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.StoreDir = tt.storeDir

			_, err := Acquire(cfg, zap.NewNop(), Hooks{})
			if err == nil {
				t.Fatalf("Acquire on an unusable store dir succeeded")
			}
			for _, want := range []string{cfg.StoreDir, tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if refs, ok := brokers.References(cfg.StoreDir); ok {
				t.Errorf("failed Acquire left a pool entry with %d references", refs)
			}
		})
	}
}

func TestAcquireRequiresProvisionedConfig(t *testing.T) {
	_, err := Acquire(&Config{StoreDir: "relative/dir"}, zap.NewNop(), Hooks{})
	if err == nil || !strings.Contains(err.Error(), "relative/dir") {
		t.Errorf("Acquire with a relative store_dir = %v, want an error naming it", err)
	}
}

func TestServerOpensNoPort(t *testing.T) {
	b := acquire(t, testConfig(t), zap.NewNop(), Hooks{})
	if addr := b.server.Addr(); addr != nil {
		t.Errorf("server listens on %s, want no client listener", addr)
	}
	if addr := b.server.MonitorAddr(); addr != nil {
		t.Errorf("server monitors on %s, want no monitoring listener", addr)
	}
	opts := serverOptions(b.storeDir)
	if !opts.NoSigs || !opts.DontListen {
		t.Errorf("serverOptions: NoSigs = %t, DontListen = %t, want both true", opts.NoSigs, opts.DontListen)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.JetStream().AccountInfo(ctx); err != nil {
		t.Errorf("in-process JetStream request failed: %v", err)
	}
}

func TestServerLogsThroughZap(t *testing.T) {
	logger, logs := observedLogger()
	acquire(t, testConfig(t), logger, Hooks{})

	natsLines := logs.Filter(func(entry observer.LoggedEntry) bool { return entry.LoggerName == "nats" })
	if natsLines.Len() == 0 {
		t.Fatalf("no log line from logger 'nats'")
	}
	if started := logs.FilterMessage("embedded NATS server started").Len(); started != 1 {
		t.Errorf("logged 'embedded NATS server started' %d times, want 1", started)
	}
	for _, entry := range natsLines.All() {
		if strings.Contains(entry.Message, "JETSTREAM") && entry.Level != zap.DebugLevel {
			t.Errorf("banner line %q logged at %s, want debug", entry.Message, entry.Level)
		}
	}
}
