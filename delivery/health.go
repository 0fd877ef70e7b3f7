package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// healthKeyPrefix is followed by the endpoint name to form the key of its
// Health in the state bucket. Endpoint names contain no '.', so health keys
// never collide with state keys.
const healthKeyPrefix = "health."

func healthKey(endpoint string) string {
	return healthKeyPrefix + endpoint
}

// Health is the JSON value of an endpoint's health key in the state bucket.
// Every instance that delivers to the endpoint merges its own view into it.
type Health struct {
	// LastSuccess is the time of the latest successful attempt.
	LastSuccess time.Time `json:"last_success,omitzero"`

	// FailingSince is the time of the first failed attempt after
	// LastSuccess, or after the endpoint was last enabled or resumed. It is
	// zero while the endpoint has no such failure.
	FailingSince time.Time `json:"failing_since,omitzero"`
}

// mergeHealth combines two views of an endpoint's health. Failures before
// the later success, or before restart (when the endpoint was last enabled
// or resumed), no longer count.
func mergeHealth(a, b Health, restart time.Time) Health {
	merged := Health{LastSuccess: a.LastSuccess}
	if b.LastSuccess.After(merged.LastSuccess) {
		merged.LastSuccess = b.LastSuccess
	}
	for _, since := range []time.Time{a.FailingSince, b.FailingSince} {
		if since.IsZero() || since.Before(merged.LastSuccess) || since.Before(restart) {
			continue
		}
		if merged.FailingSince.IsZero() || since.Before(merged.FailingSince) {
			merged.FailingSince = since
		}
	}
	return merged
}

// healthTracker is one runner's view of its endpoint's health. The runner
// updates it after every attempt, and the workers store it in the state
// bucket once per flushInterval when it changed, and once more when they
// stop.
type healthTracker struct {
	mu      sync.Mutex
	current Health
	restart time.Time // when the endpoint was last enabled or resumed
	dirty   bool      // current has changes not yet stored

	// stored is the latest view read from or written to the state bucket.
	stored Health
}

// successWriteInterval is the maximum age of the stored LastSuccess while
// an endpoint keeps succeeding, so a busy endpoint does not write its health
// at every flush. The end of failures is stored at the next flush.
const successWriteInterval = time.Minute

func (h *healthTracker) recordSuccess(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.current.FailingSince.IsZero() || now.Sub(h.stored.LastSuccess) >= successWriteInterval {
		h.dirty = true
	}
	h.current.LastSuccess = now
	h.current.FailingSince = time.Time{}
}

// recordFailure notes a failed attempt and returns the start of the
// endpoint's current failures.
func (h *healthTracker) recordFailure(now time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.current.FailingSince.IsZero() {
		h.current.FailingSince = now
		h.dirty = true
	}
	return h.current.FailingSince
}

// restartAt drops the failures before since, when the endpoint was enabled
// or resumed.
func (h *healthTracker) restartAt(since time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !since.After(h.restart) {
		return
	}
	h.restart = since
	if h.current.FailingSince.Before(since) {
		h.current.FailingSince = time.Time{}
	}
}

func (h *healthTracker) failingSince() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current.FailingSince
}

// adopt merges a stored view into the tracker.
func (h *healthTracker) adopt(stored Health) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.current = mergeHealth(h.current, stored, h.restart)
	h.stored = stored
}

// ReadHealth returns the stored health of an endpoint, and a zero Health
// when none is stored.
func ReadHealth(ctx context.Context, kv jetstream.KeyValue, endpoint string) (Health, error) {
	health, _, err := readHealth(ctx, kv, endpoint)
	return health, err
}

// readHealth returns the stored health and the revision of its entry, 0
// when there is none.
func readHealth(ctx context.Context, kv jetstream.KeyValue, endpoint string) (Health, uint64, error) {
	entry, err := kv.Get(ctx, healthKey(endpoint))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Health{}, 0, nil
	}
	if err != nil {
		return Health{}, 0, fmt.Errorf("reading health of endpoint %q from bucket %s: %w", endpoint, kv.Bucket(), err)
	}
	var health Health
	if err := json.Unmarshal(entry.Value(), &health); err != nil {
		// An invalid value is replaced at the next flush.
		return Health{}, entry.Revision(), nil
	}
	return health, entry.Revision(), nil
}

// flushHealth merges the runner's view of its endpoint's health into the
// stored one, when it changed. A concurrent write by another instance makes
// it fail with jetstream.ErrKeyExists or ErrKeyRevisionMismatch, and the
// next flush tries again.
func (r *runner) flushHealth(ctx context.Context) error {
	r.health.mu.Lock()
	if !r.health.dirty {
		r.health.mu.Unlock()
		return nil
	}
	view, restart := r.health.current, r.health.restart
	r.health.dirty = false
	r.health.mu.Unlock()

	err := r.storeHealth(ctx, view, restart)
	if err != nil {
		r.health.mu.Lock()
		r.health.dirty = true
		r.health.mu.Unlock()
	}
	return err
}

func (r *runner) storeHealth(ctx context.Context, view Health, restart time.Time) error {
	stored, revision, err := readHealth(ctx, r.kv, r.name)
	if err != nil {
		return err
	}
	merged := mergeHealth(view, stored, restart)
	value, err := json.Marshal(merged)
	if err != nil {
		return fmt.Errorf("encoding health of endpoint %q: %w", r.name, err)
	}
	if revision == 0 {
		_, err = r.kv.Create(ctx, healthKey(r.name), value)
	} else {
		_, err = r.kv.Update(ctx, healthKey(r.name), value, revision)
	}
	if err != nil {
		return fmt.Errorf("writing health of endpoint %q to bucket %s: %w", r.name, r.kv.Bucket(), err)
	}
	r.health.adopt(merged)
	return nil
}

// checkDisableAfter disables the endpoint when it has failed without a
// success for DisableAfter, counted from failingSince. Another instance may
// have delivered meanwhile, so the stored health is merged in first.
func (r *runner) checkDisableAfter(ctx context.Context, failingSince, now time.Time) {
	if r.disableAfter <= 0 || now.Sub(failingSince) < r.disableAfter {
		return
	}
	// Failed attempts run concurrently, and one disable is enough.
	r.disabling.Lock()
	defer r.disabling.Unlock()
	if !r.gate.isOpen() {
		return
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if stored, _, err := readHealth(ctx, r.kv, r.name); err == nil {
		r.health.adopt(stored)
	}
	failingSince = r.health.failingSince()
	if failingSince.IsZero() || now.Sub(failingSince) < r.disableAfter {
		return
	}

	reason := fmt.Sprintf("no successful delivery since %s, for longer than disable_after (%s)", formatTime(failingSince), FormatDuration(r.disableAfter))
	changed, err := r.disable(ctx, reason)
	if err != nil {
		r.logger.Error("storing disabled state failed; this instance stops delivering to the endpoint until it is enabled or Caddy restarts",
			zap.String("destination", r.name),
			zap.Error(err))
	}
	if !changed {
		return
	}
	r.logger.Error("endpoint disabled: it kept failing for longer than disable_after; its events wait until it is enabled",
		zap.String("destination", r.name),
		zap.Time("failing_since", failingSince),
		zap.Duration("disable_after", r.disableAfter))
	if r.hooks.Disabled != nil {
		r.hooks.Disabled(r.name, reason)
	}
}

// FormatDuration writes whole days as "5d", the way the config accepts
// them, and other durations as Go does.
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
