package emitter

import (
	"context"
	"time"

	"go.uber.org/zap"
)

const (
	// streamsRetryDelay is the pause between two attempts to create the
	// streams on a cluster that is not ready yet.
	streamsRetryDelay = 500 * time.Millisecond

	// streamsAttemptTimeout bounds one attempt on a cluster. Two instances
	// that create the same stream at once can leave one request without a
	// response, and the next attempt finds the stream.
	streamsAttemptTimeout = 5 * time.Second
)

// EnsureStreams runs EnsureStreams on the broker with its layout, and with
// the configured replicas when opts.Replicas is 0. On a shared broker it
// retries until ctx ends. A cluster accepts streams only once it has elected
// a JetStream leader and enough servers for the replicas have joined, and
// that waits for the other instances to start. The error is the last
// attempt's.
func (b *Broker) EnsureStreams(ctx context.Context, opts StreamOptions) error {
	if opts.Replicas == 0 {
		opts.Replicas = b.replicas
	}
	if b.mode == ModeEmbedded {
		return EnsureStreams(ctx, b.js, b.layout, opts)
	}
	err := b.ensureStreamsOnce(ctx, opts)
	if err == nil {
		return nil
	}

	b.logger.Warn("waiting for the JetStream cluster to accept the streams",
		zap.String("broker", b.key),
		zap.Int("replicas", opts.Replicas),
		zap.Error(err))
	timer := time.NewTimer(streamsRetryDelay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return err
		case <-timer.C:
		}
		next := b.ensureStreamsOnce(ctx, opts)
		if next == nil {
			b.logger.Info("JetStream cluster accepted the streams", zap.String("broker", b.key))
			return nil
		}
		// Keep the error of a finished attempt rather than a timeout
		// caused by ctx ending during it.
		if ctx.Err() == nil {
			err = next
		}
		timer.Reset(streamsRetryDelay)
	}
}

func (b *Broker) ensureStreamsOnce(ctx context.Context, opts StreamOptions) error {
	attemptCtx, cancel := context.WithTimeout(ctx, streamsAttemptTimeout)
	defer cancel()
	return EnsureStreams(attemptCtx, b.js, b.layout, opts)
}
