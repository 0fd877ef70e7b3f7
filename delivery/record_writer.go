package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// maxPendingRecords bounds the attempt records published and not yet
// confirmed by JetStream. A writer that reaches it waits for a confirmation
// before it publishes the next record, so a slow store slows the attempts
// down instead of growing memory.
const maxPendingRecords = 256

// recordWriter stores attempt records without waiting for JetStream's
// confirmation in the attempt, so an attempt does not pay a round trip for
// its record. A record that fails to be stored is logged, as a synchronous
// publish failure was before. One goroutine waits for the confirmations in
// publish order; it runs while records are pending.
type recordWriter struct {
	js     jetstream.JetStream
	layout emitter.Layout
	logger *zap.Logger

	// space has one element per record that waits for its confirmation.
	space chan struct{}

	mu         sync.Mutex
	queue      []pendingRecord
	collecting bool // the goroutine that waits for confirmations runs
}

// pendingRecord is a published record that waits for its confirmation.
type pendingRecord struct {
	rec    AttemptRecord
	future jetstream.PubAckFuture
}

func newRecordWriter(js jetstream.JetStream, layout emitter.Layout, logger *zap.Logger) *recordWriter {
	return &recordWriter{js: js, layout: layout, logger: logger, space: make(chan struct{}, maxPendingRecords)}
}

// write publishes rec and returns once it is sent, or once an error is
// logged.
func (w *recordWriter) write(rec AttemptRecord) {
	msg, err := attemptMsg(w.layout, rec)
	if err != nil {
		w.logFailure(rec, err)
		return
	}
	w.space <- struct{}{}
	future, err := w.js.PublishMsgAsync(msg)
	if err != nil {
		<-w.space
		w.logFailure(rec, err)
		return
	}

	w.mu.Lock()
	w.queue = append(w.queue, pendingRecord{rec: rec, future: future})
	start := !w.collecting
	w.collecting = true
	w.mu.Unlock()
	if start {
		go w.collect()
	}
}

// collect waits for the confirmation of each queued record, up to
// publishTimeout each, and returns when the queue is empty.
func (w *recordWriter) collect() {
	timer := time.NewTimer(publishTimeout)
	defer timer.Stop()
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.collecting = false
			w.queue = nil
			w.mu.Unlock()
			return
		}
		pending := w.queue[0]
		w.queue = w.queue[1:]
		w.mu.Unlock()

		w.confirm(pending, timer)
		<-w.space
	}
}

func (w *recordWriter) confirm(pending pendingRecord, timer *time.Timer) {
	select {
	case <-pending.future.Ok():
		return
	default:
	}
	timer.Reset(publishTimeout)
	select {
	case <-pending.future.Ok():
	case err := <-pending.future.Err():
		w.logFailure(pending.rec, err)
	case <-timer.C:
		w.logFailure(pending.rec, context.DeadlineExceeded)
	}
}

func (w *recordWriter) logFailure(rec AttemptRecord, err error) {
	w.logger.Error("storing attempt record failed",
		zap.String("event_id", rec.EventID),
		zap.String("destination", rec.Destination),
		zap.Int("attempt", rec.Attempt),
		zap.Error(err))
}

// wait waits until every record written so far is confirmed or timed out,
// or until ctx ends, and reports whether they all were. Records written
// meanwhile may be waited for too.
func (w *recordWriter) wait(ctx context.Context) bool {
	// Filling every element of space means no record is pending.
	taken := 0
	defer func() {
		for range taken {
			<-w.space
		}
	}()
	for taken < cap(w.space) {
		select {
		case w.space <- struct{}{}:
			taken++
		case <-ctx.Done():
			return false
		}
	}
	return true
}
