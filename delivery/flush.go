package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// flushInterval is how often the workers store their endpoints' health and
// their delivery counts. Tests shorten it.
var flushInterval = 5 * time.Second

// flushTimeout bounds one flush.
const flushTimeout = 5 * time.Second

// loadHealth starts the runner's view of its endpoint's health from the
// stored one, so failures keep counting across restarts and reloads.
func (r *runner) loadHealth(ctx context.Context, state EndpointState) error {
	if state.delivers() {
		r.health.restartAt(state.Since)
	}
	stored, _, err := readHealth(ctx, r.kv, r.name)
	if err != nil {
		return err
	}
	r.health.adopt(stored)
	return nil
}

func (w *Workers) startFlushing() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancelFlush = cancel
	w.flushDone = make(chan struct{})
	go func() {
		defer close(w.flushDone)
		w.flushLoop(ctx)
	}()
}

// stopFlushing ends the flush loop and flushes once more, for the attempts
// that ended since the last flush.
// Drain and a later Stop may both call it, and only the first flushes.
func (w *Workers) stopFlushing() {
	if w.cancelFlush == nil {
		return
	}
	w.flushStopOnce.Do(func() {
		w.cancelFlush()
		<-w.flushDone
		if err := w.flush(); err != nil {
			w.logger.Warn("storing endpoint health and delivery counts at stop failed; the counts since the last flush are lost",
				zap.Error(err))
		}
	})
}

func (w *Workers) flushLoop(ctx context.Context) {
	ticker := time.NewTicker(flushInterval)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := w.flush()
		switch {
		case err != nil && !failing:
			w.logger.Warn("storing endpoint health and delivery counts failed; retrying at the next flush",
				zap.Duration("interval", flushInterval),
				zap.Error(err))
			failing = true
		case err == nil && failing:
			w.logger.Info("storing endpoint health and delivery counts works again")
			failing = false
		}
	}
}

// flush stores every runner's health and the delivery counts. A health
// record that another instance changed meanwhile is merged at the next
// flush, so that conflict is not an error.
func (w *Workers) flush() error {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	var errs []error
	for _, r := range w.runners {
		err := r.flushHealth(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			errs = append(errs, err)
		}
	}
	if err := w.delivered.flush(ctx, w.js, w.layout); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
