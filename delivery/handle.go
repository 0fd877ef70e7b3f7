package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// Timings of message settlement.
const (
	// deadLetterRetryDelay is the wait before an event whose dead letter
	// could not be stored is delivered again, to try once more.
	deadLetterRetryDelay = time.Minute

	// jitterFraction is the maximum relative change of a retry delay.
	jitterFraction = 0.2
)

// goneReason is stored in the state bucket when a receiver responds with 410.
const goneReason = "receiver answered 410 Gone"

// event is one delivery of a stored event.
type event struct {
	id        string
	eventType string
	payload   []byte

	// body and contentType are what the endpoint's format makes of the
	// payload. A nil body sends the payload as application/json.
	body        []byte
	contentType string

	attempt        int
	streamSequence uint64
}

// parseEvent reads the event from a message on a subject of layout. The
// event id comes from the Webhooks-Event-Id header of a copy made by
// redeliver or replay, or else from the Nats-Msg-Id header. It must be a
// single subject token without '.', as both the attempt subject and the
// signed content "<id>.<timestamp>.<body>" require.
func parseEvent(layout emitter.Layout, msg jetstream.Msg) (*event, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("reading message metadata: %w", err)
	}
	ev := &event{
		id:             eventID(msg.Headers()),
		eventType:      layout.EventType(msg.Subject()),
		payload:        msg.Data(),
		attempt:        int(meta.NumDelivered),
		streamSequence: meta.Sequence.Stream,
	}
	if ev.id == "" {
		return ev, fmt.Errorf("event at stream sequence %d has no %s header: publish events with their id as message id", ev.streamSequence, jetstream.MsgIDHeader)
	}
	if !isToken(ev.id) {
		return ev, fmt.Errorf("invalid event id %q at stream sequence %d: use only A-Z, a-z, 0-9, '_' and '-'", ev.id, ev.streamSequence)
	}
	return ev, nil
}

// eventID returns the id of the event that a stored message carries.
func eventID(header nats.Header) string {
	if id := header.Get(emitter.EventIDHeader); id != "" {
		return id
	}
	return header.Get(jetstream.MsgIDHeader)
}

// isCopy reports whether a stored message is a copy made by redeliver or
// replay rather than an event of its own.
func isCopy(header nats.Header) bool {
	return header.Get(emitter.EventIDHeader) != ""
}

func isToken(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// handle makes one attempt for msg and settles the message.
func (r *runner) handle(ctx context.Context, msg jetstream.Msg) {
	ev, err := parseEvent(r.layout, msg)
	if err != nil {
		r.deadLetterInvalid(ctx, msg, ev, err)
		return
	}
	var res attemptResult
	if r.mail != nil {
		res = r.mail.send(ctx, ev)
	} else {
		if err := formatBody(r.endpoint, ev); err != nil {
			r.deadLetterInvalid(ctx, msg, ev, err)
			return
		}
		res = r.sender.send(ctx, ev)
	}
	if ctx.Err() != nil {
		r.logger.Warn("attempt aborted by shutdown; event released for redelivery",
			zap.String("event_id", ev.id),
			zap.String("destination", r.name),
			zap.Int("attempt", ev.attempt))
		r.release(msg, 0)
		return
	}
	r.settle(ctx, msg, ev, &res)
}

// release hands msg back to JetStream without an attempt, for redelivery
// after delay.
//
// NOTE: JetStream counts the next delivery as a further attempt, so every
// release leaves the event one attempt fewer before it is dead-lettered.
func (r *runner) release(msg jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		r.logger.Error("releasing event failed; JetStream redelivers it after the ack wait",
			zap.String("event_id", eventID(msg.Headers())),
			zap.String("destination", r.name),
			zap.Error(err))
	}
}

// waitRate waits for the endpoint's rate limit. During a long wait it sends
// InProgress for msg every third of AckWait, so JetStream does not redeliver
// the event meanwhile.
func (r *runner) waitRate(ctx context.Context, msg jetstream.Msg) error {
	if r.limiter == nil {
		return nil
	}
	reservation := r.limiter.Reserve()
	delay := reservation.Delay()
	if delay == 0 {
		return nil
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	ticker := time.NewTicker(r.ackWait / 3)
	defer ticker.Stop()
	for {
		select {
		case <-timer.C:
			return nil
		case <-ticker.C:
			_ = msg.InProgress()
		case <-ctx.Done():
			reservation.Cancel()
			return ctx.Err()
		}
	}
}

// settle acknowledges, retries, dead-letters or disables according to the
// result, then records and logs the attempt.
func (r *runner) settle(ctx context.Context, msg jetstream.Msg, ev *event, res *attemptResult) {
	var outcome string
	var delay time.Duration
	var next time.Time
	switch {
	case res.succeeded():
		outcome = OutcomeSuccess
	case res.permanent:
		outcome = OutcomeDeadLetter
	case r.mail == nil && res.statusCode == http.StatusGone:
		outcome = OutcomeDisabled
	case ev.attempt <= len(r.retry):
		outcome = OutcomeRetry
		delay = r.retryDelay(ev.attempt, res)
		next = time.Now().Add(delay)
	default:
		outcome = OutcomeDeadLetter
	}

	rec := newAttemptRecord(r.name, ev, res, outcome, next)
	r.records.write(rec)
	r.logAttempt(ev, res, outcome, delay)

	r.recordHealth(ctx, ev, outcome)

	switch outcome {
	case OutcomeSuccess:
		r.ack(msg, ev)
	case OutcomeDisabled:
		r.disableEndpoint(ctx, msg, ev)
	case OutcomeRetry:
		if err := msg.NakWithDelay(delay); err != nil {
			r.logger.Error("scheduling retry failed; JetStream redelivers the event after the ack wait",
				zap.String("event_id", ev.id),
				zap.String("destination", r.name),
				zap.Error(err))
		}
	case OutcomeDeadLetter:
		r.deadLetter(ctx, msg, ev, res)
	}
	if r.hooks.Attempted != nil {
		r.hooks.Attempted(r.name, outcome, res.duration)
	}
}

// recordHealth updates the breaker, counts a success and notes the
// endpoint's failures, which may disable it (see Endpoint.DisableAfter).
// Test events are not counted as deliveries of their type.
func (r *runner) recordHealth(ctx context.Context, ev *event, outcome string) {
	r.recordBreaker(outcome)
	now := time.Now()
	switch outcome {
	case OutcomeSuccess:
		r.health.recordSuccess(now)
		if ev.eventType != TestEventType {
			r.delivered.add(ev.eventType)
		}
	case OutcomeRetry, OutcomeDeadLetter:
		failingSince := r.health.recordFailure(now)
		r.checkDisableAfter(ctx, failingSince, now)
	}
}

// retryDelay returns the wait after the failed attempt with the given
// number: the receiver's Retry-After on 429 and 503, capped at
// RetryAfterMax, or else the schedule's delay with jitter.
func (r *runner) retryDelay(attempt int, res *attemptResult) time.Duration {
	if res.retryAfter > 0 {
		return min(res.retryAfter, r.retryAfterMax)
	}
	return jitter(r.retry[attempt-1])
}

// jitter returns d changed randomly by up to ±20%.
func jitter(d time.Duration) time.Duration {
	factor := 1 - jitterFraction + 2*jitterFraction*rand.Float64()
	return time.Duration(float64(d) * factor)
}

// ack acknowledges a delivered event without waiting for JetStream's
// confirmation. DoubleAck would add a round trip to every delivery, and an
// Ack that is lost only means that the event is delivered once more after
// AckWait, which at-least-once delivery allows. Stop flushes the connection,
// so the Acks of the last attempts are sent before it returns.
func (r *runner) ack(msg jetstream.Msg, ev *event) {
	if err := msg.Ack(); err != nil {
		r.logger.Error("acknowledging delivered event failed; it may be delivered again",
			zap.String("event_id", ev.id),
			zap.String("destination", r.name),
			zap.Error(err))
	}
}

// disableEndpoint stops the endpoint's workers and keeps the event for when
// the endpoint is enabled again.
func (r *runner) disableEndpoint(ctx context.Context, msg jetstream.Msg, ev *event) {
	r.disabling.Lock()
	changed, err := r.disable(ctx, goneReason)
	r.disabling.Unlock()
	if err != nil {
		r.logger.Error("storing disabled state failed; this instance stops delivering to the endpoint until it is enabled or Caddy restarts",
			zap.String("event_id", ev.id),
			zap.String("destination", r.name),
			zap.Error(err))
	}
	if changed && r.hooks.Disabled != nil {
		r.hooks.Disabled(r.name, goneReason)
	}
	r.release(msg, releaseDelay())
}

func (r *runner) deadLetter(ctx context.Context, msg jetstream.Msg, ev *event, res *attemptResult) {
	dead := newDeadLetter(r.name, ev, res, time.Now())
	if err := publishDeadLetter(ctx, r.js, r.layout, dead); err != nil {
		r.logger.Error("storing dead letter failed; the event will be attempted again",
			zap.String("event_id", ev.id),
			zap.String("destination", r.name),
			zap.Duration("retry_in", deadLetterRetryDelay),
			zap.Error(err))
		_ = msg.NakWithDelay(deadLetterRetryDelay)
		return
	}
	if err := msg.Term(); err != nil {
		r.logger.Error("ending redelivery of dead-lettered event failed",
			zap.String("event_id", ev.id),
			zap.String("destination", r.name),
			zap.Error(err))
	}
	if r.hooks.DeadLettered != nil {
		r.hooks.DeadLettered(&dead)
	}
}

// deadLetterInvalid stores an event that cannot be delivered at all, so it
// stays visible, and ends its redelivery.
func (r *runner) deadLetterInvalid(ctx context.Context, msg jetstream.Msg, ev *event, cause error) {
	res := &attemptResult{errorClass: ClassInvalidEvent, err: cause}
	if ev == nil {
		ev = &event{payload: msg.Data()}
	}
	if !isToken(ev.id) {
		ev.id = fmt.Sprintf("seq%d", ev.streamSequence)
	}
	r.logger.Error("event cannot be delivered; dead-lettering it",
		zap.String("event_id", ev.id),
		zap.String("event_type", ev.eventType),
		zap.String("destination", r.name),
		zap.String("error_class", ClassInvalidEvent),
		zap.Error(cause))
	r.deadLetter(ctx, msg, ev, res)
}

// mailLogMessages are the attempt log messages of e-mail destinations, by
// outcome. An e-mail destination is never disabled by a reply, so it has no
// message for OutcomeDisabled.
var mailLogMessages = map[string]string{
	OutcomeSuccess:    "e-mail sent",
	OutcomeRetry:      "e-mail attempt failed; will retry",
	OutcomeDeadLetter: "e-mail attempt failed; no retries left, dead-lettering",
}

// logAttempt writes the attempt's log line: Info on success, Warn when the
// event will be retried, Error on a dead letter or a disabled endpoint.
func (r *runner) logAttempt(ev *event, res *attemptResult, outcome string, retryIn time.Duration) {
	level, message := zapcore.InfoLevel, "webhook delivered"
	switch outcome {
	case OutcomeRetry:
		level, message = zapcore.WarnLevel, "webhook attempt failed; will retry"
	case OutcomeDeadLetter:
		level, message = zapcore.ErrorLevel, "webhook attempt failed; no retries left, dead-lettering"
	case OutcomeDisabled:
		level, message = zapcore.ErrorLevel, "receiver responded with 410 Gone; endpoint disabled until enabled again"
	}
	if r.mail != nil {
		message = mailLogMessages[outcome]
	}
	ce := r.logger.Check(level, message)
	if ce == nil {
		return
	}
	// Room for every field below, so that append never copies the slice.
	fields := make([]zap.Field, 0, 11)
	fields = append(fields,
		zap.String("event_id", ev.id),
		zap.String("event_type", ev.eventType),
		zap.String("destination", r.name),
		zap.Int("attempt", ev.attempt),
		zap.Duration("duration", res.duration))
	if res.statusCode != 0 {
		fields = append(fields, zap.Int("status_code", res.statusCode))
	}
	if res.errorClass != "" {
		fields = append(fields, zap.String("error_class", res.errorClass), zap.Error(res.err))
	}
	if res.blockedAddress != "" {
		fields = append(fields, zap.String("address", res.blockedAddress))
	}
	if outcome == OutcomeRetry {
		fields = append(fields, zap.Duration("retry_in", retryIn))
	}
	ce.Write(fields...)
}

// isFetchTimeout reports whether a pull request ended without a message.
func isFetchTimeout(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}
