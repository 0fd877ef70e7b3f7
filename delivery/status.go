package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Status is the stored delivery status of one endpoint.
type Status struct {
	State EndpointState

	// Pending counts the events waiting for the endpoint, including those
	// waiting for a retry and those in flight.
	Pending uint64

	// FailingSince is the time of the first failed attempt since the
	// last success, or since the endpoint was last enabled or resumed. It
	// is zero when the endpoint has no such failure. It lags behind the
	// attempts by up to the workers' flush interval.
	FailingSince time.Time

	// LastAttempt is the latest attempt record, or nil.
	LastAttempt *AttemptRecord

	// LastSuccess is the time of the latest successful attempt, or zero.
	// When a failed attempt followed it, it may be up to a minute older
	// (see successWriteInterval).
	LastSuccess time.Time

	// DeadLetters counts the stored dead letters.
	DeadLetters uint64
}

// Status returns the status of an endpoint. deadLetters comes from
// DeadLetterCounts, so a list of endpoints counts them once.
func (s *Store) Status(ctx context.Context, endpoint string, deadLetters map[string]uint64) (Status, error) {
	status := Status{DeadLetters: deadLetters[endpoint]}

	state, err := ReadState(ctx, s.kv, endpoint)
	if err != nil {
		return Status{}, err
	}
	status.State = state

	if status.Pending, err = s.Pending(ctx, endpoint); err != nil {
		return Status{}, err
	}

	health, err := ReadHealth(ctx, s.kv, endpoint)
	if err != nil {
		return Status{}, err
	}
	// Failures before the endpoint was last enabled or resumed no longer
	// count, even when a flush stored them after that.
	if state.delivers() && health.FailingSince.Before(state.Since) {
		health.FailingSince = time.Time{}
	}

	attempts, err := s.stream(ctx, s.layout.AttemptsStream())
	if err != nil {
		return Status{}, err
	}
	last, err := lastAttempt(ctx, attempts, s.layout.DestinationAttemptsSubject(endpoint))
	if err != nil {
		return Status{}, err
	}
	status.LastAttempt = last
	status.LastSuccess = health.LastSuccess
	status.FailingSince = health.FailingSince

	// The attempt log is written at once, the health record only at the
	// next flush.
	if last != nil {
		lastTime, err := time.Parse(time.RFC3339Nano, last.Time)
		if err == nil && last.Outcome == OutcomeSuccess && lastTime.After(status.LastSuccess) {
			status.LastSuccess = lastTime
			status.FailingSince = time.Time{}
		}
	}
	return status, nil
}

// Pending returns the number of events waiting in the endpoint's consumer,
// those waiting for a retry and those in flight included, and 0 when the
// consumer does not exist.
func (s *Store) Pending(ctx context.Context, endpoint string) (uint64, error) {
	cons, err := s.js.Consumer(ctx, s.layout.EventsStream(), consumerName(endpoint))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("looking up consumer %s: %w", consumerName(endpoint), err)
	}
	info := cons.CachedInfo()
	return info.NumPending + uint64(max(info.NumAckPending, 0)), nil
}

// Pause, Resume and Enable change the state of an endpoint as the package
// functions of the same names do.
func (s *Store) Pause(ctx context.Context, endpoint string) (EndpointState, error) {
	return Pause(ctx, s.kv, endpoint)
}

func (s *Store) Resume(ctx context.Context, endpoint string) (EndpointState, error) {
	return Resume(ctx, s.kv, endpoint)
}

func (s *Store) Enable(ctx context.Context, endpoint string) (EndpointState, error) {
	return Enable(ctx, s.kv, endpoint)
}
