package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrEndpointDisabled is returned by Pause and Resume for a disabled
// endpoint, which only Enable changes.
var ErrEndpointDisabled = errors.New("endpoint is disabled")

// Reasons stored with the states that the admin API sets.
const (
	pausedReason  = "paused through the admin API"
	resumedReason = "resumed through the admin API"
	enabledReason = "enabled through the admin API"
)

// stateWriteAttempts bounds the compare-and-set loop of a state change that
// races with workers disabling the endpoint.
const stateWriteAttempts = 5

// ReadState returns the stored state of an endpoint. An endpoint without a
// stored state, or with a deleted one, is enabled.
func ReadState(ctx context.Context, kv jetstream.KeyValue, endpoint string) (EndpointState, error) {
	state, _, err := readState(ctx, kv, endpoint)
	return state, err
}

// readState returns the state and the revision of its entry, 0 when there is
// none.
func readState(ctx context.Context, kv jetstream.KeyValue, endpoint string) (EndpointState, uint64, error) {
	entry, err := kv.Get(ctx, endpoint)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return EndpointState{State: StateEnabled}, 0, nil
	}
	if err != nil {
		return EndpointState{}, 0, fmt.Errorf("reading state of endpoint %q from bucket %s: %w", endpoint, kv.Bucket(), err)
	}
	state, _ := decodeState(entry) // an invalid value delivers, as the workers treat it
	return state, entry.Revision(), nil
}

// Pause stops delivery to the endpoint until Resume or Enable. Its events
// wait in its consumer meanwhile, and attempts in flight finish. Pausing a
// paused endpoint changes nothing, and a disabled endpoint returns
// ErrEndpointDisabled.
func Pause(ctx context.Context, kv jetstream.KeyValue, endpoint string) (EndpointState, error) {
	return changeState(ctx, kv, endpoint, func(current EndpointState) (EndpointState, bool, error) {
		switch current.State {
		case StatePaused:
			return current, false, nil
		case StateDisabled:
			return current, false, ErrEndpointDisabled
		}
		return EndpointState{State: StatePaused, Reason: pausedReason, Since: time.Now().UTC()}, true, nil
	})
}

// Resume lets a paused endpoint deliver again, beginning with the events
// that waited. Resuming an enabled endpoint changes nothing, and a disabled
// endpoint returns ErrEndpointDisabled. Failures before the resume no
// longer count for DisableAfter.
func Resume(ctx context.Context, kv jetstream.KeyValue, endpoint string) (EndpointState, error) {
	return changeState(ctx, kv, endpoint, func(current EndpointState) (EndpointState, bool, error) {
		switch current.State {
		case StatePaused:
			return EndpointState{State: StateEnabled, Reason: resumedReason, Since: time.Now().UTC()}, true, nil
		case StateDisabled:
			return current, false, ErrEndpointDisabled
		}
		return current, false, nil
	})
}

// Enable lets a disabled or paused endpoint deliver again, beginning with
// the events that waited, and clears the start of its failures, so
// DisableAfter counts anew. Enabling an enabled endpoint changes nothing.
func Enable(ctx context.Context, kv jetstream.KeyValue, endpoint string) (EndpointState, error) {
	state, err := changeState(ctx, kv, endpoint, func(current EndpointState) (EndpointState, bool, error) {
		if current.delivers() {
			return current, false, nil
		}
		return EndpointState{State: StateEnabled, Reason: enabledReason, Since: time.Now().UTC()}, true, nil
	})
	if err != nil {
		return state, err
	}
	return state, clearFailures(ctx, kv, endpoint)
}

// changeState applies change to the stored state with compare-and-set, so a
// concurrent disable by the workers is never overwritten unseen. change
// returns the new state and whether to store it.
func changeState(ctx context.Context, kv jetstream.KeyValue, endpoint string, change func(EndpointState) (EndpointState, bool, error)) (EndpointState, error) {
	for range stateWriteAttempts {
		current, revision, err := readState(ctx, kv, endpoint)
		if err != nil {
			return EndpointState{}, err
		}
		next, store, err := change(current)
		if err != nil || !store {
			return next, err
		}
		value, err := json.Marshal(next)
		if err != nil {
			return EndpointState{}, fmt.Errorf("encoding state of endpoint %q: %w", endpoint, err)
		}
		if revision == 0 {
			_, err = kv.Create(ctx, endpoint, value)
		} else {
			_, err = kv.Update(ctx, endpoint, value, revision)
		}
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return EndpointState{}, fmt.Errorf("writing state of endpoint %q to bucket %s: %w", endpoint, kv.Bucket(), err)
		}
	}
	return EndpointState{}, fmt.Errorf("writing state of endpoint %q to bucket %s: it changed concurrently %d times in a row; try again", endpoint, kv.Bucket(), stateWriteAttempts)
}

// clearFailures removes the start of the endpoint's failures from its
// stored health and keeps the time of its last success.
func clearFailures(ctx context.Context, kv jetstream.KeyValue, endpoint string) error {
	stored, _, err := readHealth(ctx, kv, endpoint)
	if err != nil {
		return err
	}
	if stored.FailingSince.IsZero() {
		return nil
	}
	value, err := json.Marshal(Health{LastSuccess: stored.LastSuccess})
	if err != nil {
		return fmt.Errorf("encoding health of endpoint %q: %w", endpoint, err)
	}
	if _, err := kv.Put(ctx, healthKey(endpoint), value); err != nil {
		return fmt.Errorf("writing health of endpoint %q to bucket %s: %w", endpoint, kv.Bucket(), err)
	}
	return nil
}
