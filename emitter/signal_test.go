//go:build unix

package emitter

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestServerIgnoresSIGINT sends SIGINT to the test process. With its own
// signal handler, nats-server would shut down and call os.Exit, which the
// testing package reports as a failure.
func TestServerIgnoresSIGINT(t *testing.T) {
	b := acquire(t, testConfig(t), zap.NewNop(), Hooks{})

	received := make(chan os.Signal, 1)
	signal.Notify(received, syscall.SIGINT)
	defer signal.Stop(received)

	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatalf("sending SIGINT: %v", err)
	}
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatalf("SIGINT not received")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.JetStream().AccountInfo(ctx); err != nil {
		t.Errorf("JetStream request after SIGINT failed: %v", err)
	}
	if !b.server.Running() {
		t.Errorf("server stopped after SIGINT")
	}
}
