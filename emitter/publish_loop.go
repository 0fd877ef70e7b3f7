package emitter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// errDrainTimeout is the error logged for events still unpublished when
// the drain timeout expires.
var errDrainTimeout = errors.New("drain timeout expired before JetStream acknowledged the event")

// publishLoop is the state of Publisher.run. Only the run goroutine uses
// it, so it needs no lock.
type publishLoop struct {
	p *Publisher

	// queue is the publisher's queue, or nil once it is closed and empty.
	queue <-chan *pendingEvent

	// retries contains the events waiting for the backoff to end. They
	// are published before anything new from the queue.
	retries []*pendingEvent

	// inFlight holds the publishes waiting for their acknowledgement, in
	// the order they were sent.
	inFlight []*pendingEvent

	// streamsSeen is set by the first acknowledgement. From then on, a
	// publish that finds no stream means the stream was removed, which a
	// retry does not fix.
	streamsSeen bool

	// Backoff state. generation grows each time the backoff grows. A
	// failed attempt sent before that belongs to the same burst of
	// failures, so it does not grow the backoff again.
	generation   uint64
	delay        time.Duration
	backingOff   bool
	timer        *time.Timer
	failingSince time.Time
	lastWarn     time.Time
}

// run publishes events until the queue is closed and every accepted event
// is acknowledged or dropped, or until the drain timeout aborts it.
func (p *Publisher) run() {
	defer close(p.done)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	l := &publishLoop{p: p, queue: p.queue, timer: timer}
	defer l.timer.Stop()

	for !l.drained() {
		if l.canSend() && len(l.retries) > 0 {
			pe := l.retries[0]
			l.retries = l.retries[1:]
			l.send(pe)
			continue
		}
		if !l.wait() {
			return
		}
	}
}

func (l *publishLoop) drained() bool {
	return l.queue == nil && len(l.retries) == 0 && len(l.inFlight) == 0
}

func (l *publishLoop) canSend() bool {
	return !l.backingOff && len(l.inFlight) < maxInFlight
}

// wait handles the next of: an event from the queue, the outcome of the
// oldest publish in flight, the end of the backoff, or the abort. It
// returns false after an abort.
func (l *publishLoop) wait() bool {
	var receive <-chan *pendingEvent
	if l.canSend() {
		receive = l.queue
	}

	// Only the oldest publish is watched. The acknowledgements of later
	// ones wait in their futures, and every future resolves, at the
	// latest after ackTimeout.
	var acked <-chan *jetstream.PubAck
	var failed <-chan error
	if len(l.inFlight) > 0 {
		acked = l.inFlight[0].ack.Ok()
		failed = l.inFlight[0].ack.Err()
	}

	var backoffEnded <-chan time.Time
	if l.backingOff {
		backoffEnded = l.timer.C
	}

	select {
	case pe, open := <-receive:
		if !open {
			l.queue = nil
			return true
		}
		l.send(pe)
	case ack := <-acked:
		l.settle(l.popInFlight(), ack)
	case err := <-failed:
		l.fail(l.popInFlight(), err)
	case <-backoffEnded:
		l.backingOff = false
	case <-l.p.abort:
		l.abandon()
		return false
	}
	return true
}

func (l *publishLoop) popInFlight() *pendingEvent {
	pe := l.inFlight[0]
	l.inFlight[0] = nil
	l.inFlight = l.inFlight[1:]
	return pe
}

// send publishes pe asynchronously. The client's own retry on "no
// responders" is off, so that every retry goes through the backoff.
func (l *publishLoop) send(pe *pendingEvent) {
	pe.attempts++
	pe.generation = l.generation
	msg := &nats.Msg{Subject: l.p.layout.Subject(pe.ev.Type), Data: pe.ev.Payload}
	ack, err := l.p.js.PublishMsgAsync(msg,
		jetstream.WithMsgID(pe.ev.ID),
		jetstream.WithRetryAttempts(0))
	if err != nil {
		l.fail(pe, err)
		return
	}
	pe.ack = ack
	l.inFlight = append(l.inFlight, pe)
}

// settle handles an acknowledgement.
func (l *publishLoop) settle(pe *pendingEvent, ack *jetstream.PubAck) {
	l.streamsSeen = true
	l.resetBackoff()

	// A duplicate after an uncertain attempt is that attempt's event,
	// stored but not acknowledged in time, so it counts as published.
	if ack.Duplicate && !pe.uncertain {
		l.p.alreadyStored(pe, ack)
		return
	}
	l.p.published(pe, ack)
}

// fail drops pe on a permanent error and schedules a retry otherwise.
func (l *publishLoop) fail(pe *pendingEvent, err error) {
	subject := l.p.layout.Subject(pe.ev.Type)
	if hint, permanent := l.permanentError(subject, err); permanent {
		l.p.dropAccepted(pe, DropPublishFailed,
			fmt.Errorf("publishing event to %q: %w; %s", subject, err, hint))
		return
	}

	if outcomeUnknown(err) {
		pe.uncertain = true
	}
	if entry := l.p.logger.Check(zap.DebugLevel, "publishing event failed; retrying"); entry != nil {
		entry.Write(
			zap.String("event_id", pe.ev.ID),
			zap.String("event_type", pe.ev.Type),
			zap.Int("attempt", pe.attempts),
			zap.Error(err))
	}
	l.retries = append(l.retries, pe)
	l.backOff(pe, err)
}

// backOff pauses publishing after a transient failure. The pause starts
// at firstRetryDelay and doubles with each failed burst up to
// maxRetryDelay. A success resets it.
//
// NOTE: retries go on for as long as the publisher runs. JetStream drops a
// repeated Nats-Msg-Id only within the stream's duplicates window (30
// seconds), so an event whose first attempt was stored without an
// acknowledgement and retried after that window is stored twice. Both
// copies carry the same event ID, which receivers use to deduplicate.
func (l *publishLoop) backOff(pe *pendingEvent, err error) {
	if pe.generation != l.generation {
		return
	}
	l.generation++

	now := time.Now()
	if l.delay == 0 {
		l.delay = firstRetryDelay
		l.failingSince = now
	} else {
		l.delay = min(2*l.delay, maxRetryDelay)
	}
	l.backingOff = true
	l.timer.Reset(l.delay)

	// Before the first acknowledgement, a missing stream is expected:
	// the app creates the streams right after it starts the broker.
	if !l.streamsSeen && isNoResponders(err) {
		return
	}
	if now.Sub(l.lastWarn) < retryWarnInterval {
		return
	}
	l.lastWarn = now
	l.p.logger.Warn("publishing events to JetStream failed; retrying",
		zap.String("event_id", pe.ev.ID),
		zap.String("event_type", pe.ev.Type),
		zap.Error(err),
		zap.Duration("retry_in", l.delay),
		zap.Duration("failing_for", now.Sub(l.failingSince)),
		zap.Int("pending", l.p.Pending()))
}

// resetBackoff ends the backoff after a success.
func (l *publishLoop) resetBackoff() {
	if l.backingOff {
		l.timer.Stop()
		l.backingOff = false
	}
	if l.delay == 0 {
		return
	}
	if !l.lastWarn.IsZero() {
		l.p.logger.Info("publishing events to JetStream recovered",
			zap.Duration("failed_for", time.Since(l.failingSince)))
	}
	l.delay = 0
	l.lastWarn = time.Time{}
}

// abandon drops every event not yet acknowledged when the drain timeout
// expires. The queue is closed by then, so ranging over it ends.
func (l *publishLoop) abandon() {
	var lost []*pendingEvent
	lost = append(lost, l.inFlight...)
	lost = append(lost, l.retries...)
	if l.queue != nil {
		for pe := range l.queue {
			lost = append(lost, pe)
		}
	}
	l.inFlight, l.retries, l.queue = nil, nil, nil

	for _, pe := range lost {
		l.p.dropAccepted(pe, DropClosed, errDrainTimeout)
	}
	l.p.logger.Error("events lost: publisher stopped before JetStream acknowledged them",
		zap.Int("events", len(lost)),
		zap.Duration("drain_timeout", time.Duration(l.p.drainTimeout.Load())))
}

// permanentError reports whether retrying a publish that failed with err
// cannot help, with a hint for the operator.
func (l *publishLoop) permanentError(subject string, err error) (hint string, permanent bool) {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Sprintf("the server accepts at most %d bytes per message; capture less of the request and response", l.p.js.Conn().MaxPayload()), true
	case errors.Is(err, nats.ErrBadSubject):
		return "the event type is not a valid subject token", true
	case errors.As(err, &apiErr):
		return "JetStream rejected the event", !transientAPIError(apiErr)
	case isNoResponders(err):
		if l.streamsSeen && l.streamMissing(subject) {
			return "no stream stores this subject any more; reload the config to recreate the streams", true
		}
		return "", false
	default:
		return "", false
	}
}

// streamMissing looks up whether any stream stores subject. A failed
// lookup counts as not missing, so the publish is retried.
func (l *publishLoop) streamMissing(subject string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), streamLookupTimeout)
	defer cancel()
	_, err := l.p.js.StreamNameBySubject(ctx, subject)
	return errors.Is(err, jetstream.ErrStreamNotFound)
}

// JetStream error codes (nats-server v2.15.3, server/errors.json) that
// report a lack of storage, which frees up as old events expire.
const (
	errCodeAccountResourcesExceeded = 10002
	errCodeStorageResourcesExceeded = 10047
)

// transientAPIError reports whether a JetStream API error is temporary:
// server-side failures (5xx), throttling (429) and exhausted storage.
func transientAPIError(err *jetstream.APIError) bool {
	switch {
	case err.Code >= 500, err.Code == 429:
		return true
	case err.ErrorCode == errCodeAccountResourcesExceeded, err.ErrorCode == errCodeStorageResourcesExceeded:
		return true
	default:
		return false
	}
}

func isNoResponders(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// outcomeUnknown reports whether the failed attempt may have been stored.
func outcomeUnknown(err error) bool {
	return errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrInvalidJSAck)
}
