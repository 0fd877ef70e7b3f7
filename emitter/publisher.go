package emitter

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Errors returned by Publisher.Enqueue.
var (
	// ErrQueueFull means the event was dropped because the queue in front
	// of JetStream is full, either from a burst larger than queue_size or
	// because JetStream has not accepted events for a while.
	ErrQueueFull = errors.New("event queue is full")

	// ErrClosed means the event was dropped because the publisher has
	// stopped, as it does when the last config using it is unloaded.
	ErrClosed = errors.New("event publisher is closed")
)

// Reasons passed to Hooks.Dropped.
const (
	DropQueueFull     = "queue_full"
	DropClosed        = "closed"
	DropPublishFailed = "publish_failed"
)

// Hooks are callbacks for metrics. Either may be nil. They run on the
// publisher's goroutine or the caller of Enqueue and must not block.
type Hooks struct {
	// Published is called when JetStream has acknowledged an event. The
	// latency counts from ev.Observed, or from Enqueue if Observed is zero.
	Published func(ev *Event, latency time.Duration)

	// Dropped is called when an event is lost, with one of the Drop*
	// reasons.
	Dropped func(ev *Event, reason string)
}

const (
	// maxInFlight bounds the publishes waiting for their acknowledgement.
	maxInFlight = 256

	// ackTimeout is how long a publish waits for its acknowledgement
	// before it is retried.
	ackTimeout = 10 * time.Second

	// Retry delays after a transient failure, doubling from the first to
	// the last.
	firstRetryDelay = 50 * time.Millisecond
	maxRetryDelay   = 5 * time.Second

	// retryWarnInterval limits the warnings logged while publishing keeps
	// failing.
	retryWarnInterval = 30 * time.Second

	// streamLookupTimeout bounds the stream lookup that decides whether a
	// publish without a responder is worth retrying.
	streamLookupTimeout = 2 * time.Second

	// Drops are logged at up to dropLogBurst lines at once and
	// dropLogRate lines per second. The next logged line counts the
	// drops left out.
	dropLogRate  = 10
	dropLogBurst = 10
)

// Publisher stores events in JetStream. Enqueue hands an event to a
// bounded queue and returns at once. One goroutine publishes the queue
// asynchronously with the event ID as Nats-Msg-Id and checks every
// acknowledgement. It retries transient failures with capped exponential
// backoff for as long as it runs.
type Publisher struct {
	js     jetstream.JetStream
	layout Layout
	logger *zap.Logger

	hooks        atomic.Pointer[Hooks]
	drainTimeout atomic.Int64 // time.Duration

	// mu guards closed and the closing of queue, so that Enqueue never
	// sends on a closed channel and no event is accepted after close.
	mu     sync.RWMutex
	closed bool
	queue  chan *pendingEvent

	// pending counts accepted events not yet acknowledged or dropped.
	pending atomic.Int64

	abort chan struct{} // closed when the drain timeout expires
	done  chan struct{} // closed when run returns

	dropLogLimiter *rate.Limiter
	dropsNotLogged atomic.Int64
}

// pendingEvent is an accepted event with its publishing state.
type pendingEvent struct {
	ev       *Event
	enqueued time.Time
	attempts int

	// uncertain is set after an attempt whose outcome is unknown, such as
	// an acknowledgement timeout: the event may be stored already.
	uncertain bool

	// generation is the retry generation when the last attempt was sent.
	generation uint64

	ack jetstream.PubAckFuture
}

func newPublisher(conn *nats.Conn, cfg Config, layout Layout, logger *zap.Logger, hooks Hooks) (*Publisher, error) {
	js, err := jetstream.New(conn,
		jetstream.WithPublishAsyncMaxPending(maxInFlight),
		jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return nil, fmt.Errorf("creating JetStream handle for the event publisher: %w", err)
	}
	p := &Publisher{
		js:             js,
		layout:         layout,
		logger:         logger,
		queue:          make(chan *pendingEvent, cfg.QueueSize),
		abort:          make(chan struct{}),
		done:           make(chan struct{}),
		dropLogLimiter: rate.NewLimiter(dropLogRate, dropLogBurst),
	}
	p.setHooks(hooks)
	p.setDrainTimeout(time.Duration(cfg.DrainTimeout))
	return p, nil
}

// Enqueue queues ev for publishing and never blocks. When the queue is
// full, the event is dropped with an error log and ErrQueueFull. After the
// publisher has closed, it is dropped with ErrClosed. Either way
// Hooks.Dropped is called. The caller must not change ev after Enqueue.
func (p *Publisher) Enqueue(ev *Event) error {
	if ev == nil {
		return errors.New("enqueueing event: event is nil")
	}
	if ev.ID == "" || ev.Type == "" {
		err := fmt.Errorf("enqueueing event: ID %q and type %q must both be set", ev.ID, ev.Type)
		p.drop(ev, DropPublishFailed, err)
		return err
	}

	err := p.tryEnqueue(&pendingEvent{ev: ev, enqueued: time.Now()})
	switch {
	case errors.Is(err, ErrQueueFull):
		p.drop(ev, DropQueueFull, err)
	case errors.Is(err, ErrClosed):
		p.drop(ev, DropClosed, err)
	}
	return err
}

func (p *Publisher) tryEnqueue(pe *pendingEvent) error {
	p.mu.RLock()
	defer p.mu.RUnlock()

	if p.closed {
		return ErrClosed
	}
	// Counting before the send keeps Pending from going below zero when
	// the run goroutine settles the event before this function returns.
	p.pending.Add(1)
	select {
	case p.queue <- pe:
		return nil
	default:
		p.pending.Add(-1)
		return ErrQueueFull
	}
}

// Pending returns the number of accepted events that are neither
// acknowledged by JetStream nor dropped yet.
func (p *Publisher) Pending() int {
	return int(p.pending.Load())
}

func (p *Publisher) setHooks(hooks Hooks) {
	p.hooks.Store(&hooks)
}

func (p *Publisher) setDrainTimeout(timeout time.Duration) {
	p.drainTimeout.Store(int64(timeout))
}

func (p *Publisher) start() {
	go p.run()
}

// close stops accepting events and waits until every accepted event is
// acknowledged or dropped, for at most the drain timeout. The events left
// at the timeout are dropped with DropClosed and counted in an error log.
func (p *Publisher) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	close(p.queue)
	p.mu.Unlock()

	timer := time.NewTimer(time.Duration(p.drainTimeout.Load()))
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		close(p.abort)
		<-p.done
	}
}

// published reports a stored event to the hook and the debug log.
func (p *Publisher) published(pe *pendingEvent, ack *jetstream.PubAck) {
	p.pending.Add(-1)

	observed := pe.ev.Observed
	if observed.IsZero() {
		observed = pe.enqueued
	}
	latency := time.Since(observed)

	if entry := p.logger.Check(zap.DebugLevel, "event published"); entry != nil {
		entry.Write(
			zap.String("event_id", pe.ev.ID),
			zap.String("event_type", pe.ev.Type),
			zap.Uint64("stream_sequence", ack.Sequence),
			zap.Bool("duplicate", ack.Duplicate),
			zap.Int("attempt", pe.attempts),
			zap.Duration("duration", latency))
	}
	if hook := p.hooks.Load().Published; hook != nil {
		hook(pe.ev, latency)
	}
}

// alreadyStored reports an event whose ID JetStream had stored before,
// from an earlier Enqueue of the same event. No hook is called, because
// the first Enqueue was counted.
func (p *Publisher) alreadyStored(pe *pendingEvent, ack *jetstream.PubAck) {
	p.pending.Add(-1)
	if entry := p.logger.Check(zap.DebugLevel, "event already stored; duplicate ignored"); entry != nil {
		entry.Write(
			zap.String("event_id", pe.ev.ID),
			zap.String("event_type", pe.ev.Type),
			zap.Uint64("stream_sequence", ack.Sequence))
	}
}

// dropAccepted drops an event that Enqueue had accepted.
func (p *Publisher) dropAccepted(pe *pendingEvent, reason string, err error) {
	p.pending.Add(-1)
	p.drop(pe.ev, reason, err)
}

// logDropsNotLogged logs how many drops the rate limit left out since the
// last line that counted them.
func (p *Publisher) logDropsNotLogged() {
	if skipped := p.dropsNotLogged.Swap(0); skipped > 0 {
		p.logger.Error("events dropped without a log line of their own",
			zap.Int64("drops_not_logged", skipped))
	}
}

// drop logs a lost event, at most dropLogRate lines per second, and calls
// the Dropped hook.
func (p *Publisher) drop(ev *Event, reason string, err error) {
	if p.dropLogLimiter.Allow() {
		fields := []zap.Field{
			zap.String("event_id", ev.ID),
			zap.String("event_type", ev.Type),
			zap.String("reason", reason),
			zap.Error(err),
		}
		if skipped := p.dropsNotLogged.Swap(0); skipped > 0 {
			fields = append(fields, zap.Int64("drops_not_logged", skipped))
		}
		p.logger.Error("event dropped", fields...)
	} else if p.dropsNotLogged.Add(1) == 1 {
		// The first drop left out of the log schedules a summary line, so
		// the count is logged even when no further drop follows.
		time.AfterFunc(time.Second, p.logDropsNotLogged)
	}

	if hook := p.hooks.Load().Dropped; hook != nil {
		hook(ev, reason)
	}
}
