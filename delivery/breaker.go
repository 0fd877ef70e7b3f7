package delivery

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// breakerThreshold is the number of consecutive failed attempts after which
// a runner stops fetching at full speed and probes the endpoint with one
// attempt at a time. A receiver that is down fails every attempt in flight,
// so the breaker opens within the first batches of a drain, while a few
// events that a working receiver rejects do not open it.
const breakerThreshold = 20

// Pauses before each probe of an endpoint whose breaker is open. The pause
// starts at breakerFirstPause and doubles after each failed probe up to
// breakerMaxPause. Tests shorten them.
var (
	breakerFirstPause = time.Second
	breakerMaxPause   = 30 * time.Second
)

// breaker is a circuit breaker for one endpoint. It opens after
// breakerThreshold consecutive failed attempts, so a receiver that is down
// does not take an attempt, with its HTTP request, record and log line, for
// every waiting event. While it is open the runner waits until no attempt
// is in flight and then for the pause, and fetches a single event as the
// probe. The first successful attempt closes it. Events that are not
// fetched meanwhile stay in the stream. So an event due for a retry is
// attempted later than its schedule sets, but it loses no attempt, and
// DisableAfter still counts from the first failure.
// Enabling or resuming the endpoint closes the breaker too, because the
// operator has most likely fixed the receiver, and it ends a probe pause in
// progress.
type breaker struct {
	mu       sync.Mutex
	failures int           // consecutive failed attempts
	pause    time.Duration // wait before the next probe; 0 while closed
	probing  bool          // a probe is in flight

	// closed receives a value when the breaker closes while open, so a
	// fetch loop waiting for a probe goes on at once. It contains at most
	// one value, and probePause drops a value left from an earlier close.
	closed chan struct{}
}

// succeeded closes the breaker after a successful attempt and reports
// whether it was open.
func (b *breaker) succeeded() bool {
	return b.close()
}

// close closes the breaker, wakes a fetch loop waiting for a probe, and
// reports whether the breaker was open.
func (b *breaker) close() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasOpen := b.pause > 0
	b.failures, b.pause, b.probing = 0, 0, false
	if wasOpen {
		select {
		case b.closedLocked() <- struct{}{}:
		default:
		}
	}
	return wasOpen
}

// closedLocked returns the closed channel, made on first use so that the
// zero breaker works. b.mu must be held.
func (b *breaker) closedLocked() chan struct{} {
	if b.closed == nil {
		b.closed = make(chan struct{}, 1)
	}
	return b.closed
}

// failed counts a failed attempt and reports whether it opened the breaker.
// A failed probe doubles the pause.
func (b *breaker) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	switch {
	case b.pause == 0 && b.failures >= breakerThreshold:
		b.pause = breakerFirstPause
		return true
	case b.pause > 0 && b.probing:
		b.pause = min(2*b.pause, breakerMaxPause)
		b.probing = false
	}
	return false
}

// probePause returns the wait before the next probe, and 0 while the
// breaker is closed, with the channel on which a close ends the wait. With
// a wait, it notes that a probe follows.
func (b *breaker) probePause() (time.Duration, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	closed := b.closedLocked()
	select {
	case <-closed:
	default:
	}
	if b.pause > 0 {
		b.probing = true
	}
	return b.pause, closed
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pause > 0
}

// waitForProbe waits while the breaker is open until no attempt is in
// flight and then for the pause. It returns false when ctx ends first.
func (r *runner) waitForProbe(ctx context.Context) bool {
	if !r.breaker.isOpen() {
		return true
	}
	if !r.waitIdle(ctx) {
		return false
	}
	pause, closed := r.breaker.probePause()
	if pause == 0 {
		return true
	}
	timer := time.NewTimer(pause)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
	case <-closed:
	}
	return true
}

// waitIdle waits until every slot is free, which means that no attempt is
// in flight. Only the fetch loop takes slots, so none is taken meanwhile.
func (r *runner) waitIdle(ctx context.Context) bool {
	taken := 0
	defer func() { r.releaseSlots(taken) }()
	for taken < cap(r.slots) {
		if !r.acquireSlot(ctx) {
			return false
		}
		taken++
	}
	return true
}

// recordBreaker updates the breaker after an attempt and logs when it opens
// or closes.
func (r *runner) recordBreaker(outcome string) {
	switch outcome {
	case OutcomeSuccess:
		if r.breaker.succeeded() {
			r.logger.Info("endpoint works again; delivering at full speed",
				zap.String("destination", r.name))
		}
	case OutcomeRetry, OutcomeDeadLetter:
		if r.breaker.failed() {
			r.logger.Warn("endpoint keeps failing; attempting one event at a time with a growing pause until an attempt succeeds",
				zap.String("destination", r.name),
				zap.Int("consecutive_failures", breakerThreshold),
				zap.Duration("first_pause", breakerFirstPause),
				zap.Duration("max_pause", breakerMaxPause))
		}
	}
}
