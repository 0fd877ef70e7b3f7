package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// States of an endpoint in the state bucket. A missing or deleted key means
// enabled.
const (
	StateEnabled  = "enabled"
	StateDisabled = "disabled"
	StatePaused   = "paused"
)

// EndpointState is the JSON value stored under the endpoint's name in the
// state bucket. Workers stop fetching events at "disabled" or "paused" and
// resume when the state changes to "enabled" or the key is deleted.
type EndpointState struct {
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`

	// URLSHA256 is the hex SHA-256 of the endpoint URL at the time a 410
	// response disabled it. Start enables the endpoint again when its URL
	// has changed since. The URL itself is not stored because it may carry
	// a token.
	URLSHA256 string `json:"url_sha256,omitempty"`
}

// urlChangedReason is stored in the state bucket when Start enables an
// endpoint again because its URL changed.
const urlChangedReason = "endpoint url changed since it was disabled"

func urlSHA256(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return hex.EncodeToString(sum[:])
}

// delivers reports whether workers fetch events in this state. Unknown
// states deliver, so that a typo cannot silently stop an endpoint.
func (s EndpointState) delivers() bool {
	return s.State != StateDisabled && s.State != StatePaused
}

// gate lets an endpoint's fetch loop request events while it is open.
type gate struct {
	mu      sync.Mutex
	open    bool
	changed chan struct{} // closed and replaced on every change
}

func newGate(open bool) *gate {
	return &gate{open: open, changed: make(chan struct{})}
}

// set opens or closes the gate and reports whether that changed it.
func (g *gate) set(open bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == open {
		return false
	}
	g.open = open
	close(g.changed)
	g.changed = make(chan struct{})
	return true
}

func (g *gate) isOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// wait blocks until the gate is open and reports true, or false when ctx
// ends first.
func (g *gate) wait(ctx context.Context) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		g.mu.Lock()
		open, changed := g.open, g.changed
		g.mu.Unlock()
		if open {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// watchState starts watching the endpoint's key in the state bucket and
// returns the watcher with the current state, read before returning so that
// an endpoint disabled before Start never fetches. ctx bounds the setup, and
// the watch itself lasts until runCtx ends.
func watchState(ctx, runCtx context.Context, kv jetstream.KeyValue, name string) (jetstream.KeyWatcher, EndpointState, error) {
	// The client unsubscribes a watch when the context given to Watch ends,
	// so that context must outlive ctx once the current value is read.
	watchCtx, cancelWatch := context.WithCancel(runCtx)
	detach := context.AfterFunc(ctx, cancelWatch)

	watcher, err := kv.Watch(watchCtx, name)
	if err != nil {
		cancelWatch()
		return nil, EndpointState{}, fmt.Errorf("watching key %q in bucket %s: %w", name, kv.Bucket(), err)
	}
	state := EndpointState{State: StateEnabled}
	for {
		select {
		case entry, ok := <-watcher.Updates():
			if !ok {
				cancelWatch()
				return nil, EndpointState{}, fmt.Errorf("watching key %q in bucket %s: watcher closed before the current value arrived", name, kv.Bucket())
			}
			if entry != nil {
				state, _ = decodeState(entry)
				continue
			}
			if !detach() {
				_ = watcher.Stop()
				return nil, EndpointState{}, fmt.Errorf("reading key %q in bucket %s: %w", name, kv.Bucket(), ctx.Err())
			}
			return watcher, state, nil
		case <-watchCtx.Done():
			_ = watcher.Stop()
			return nil, EndpointState{}, fmt.Errorf("reading key %q in bucket %s: %w", name, kv.Bucket(), context.Cause(watchCtx))
		}
	}
}

// decodeState returns the state an entry sets. A deleted key is enabled, and
// so is a value that is not valid JSON, with the decoding error.
func decodeState(entry jetstream.KeyValueEntry) (EndpointState, error) {
	if entry.Operation() != jetstream.KeyValuePut {
		return EndpointState{State: StateEnabled}, nil
	}
	var state EndpointState
	if err := json.Unmarshal(entry.Value(), &state); err != nil {
		return EndpointState{State: StateEnabled}, fmt.Errorf("decoding state of endpoint %q: %w", entry.Key(), err)
	}
	return state, nil
}

// followState applies every later change of the endpoint's state to its
// gate until the watcher stops.
func (r *runner) followState(ctx context.Context, watcher jetstream.KeyWatcher) {
	defer func() { _ = watcher.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case entry, ok := <-watcher.Updates():
			if !ok {
				return
			}
			if entry != nil {
				r.applyState(entry)
			}
		}
	}
}

func (r *runner) applyState(entry jetstream.KeyValueEntry) {
	state, err := decodeState(entry)
	if err != nil {
		r.logger.Warn("ignoring invalid endpoint state; delivering",
			zap.String("destination", r.name),
			zap.Error(err))
	}
	if state.delivers() {
		r.health.restartAt(state.Since)
	}
	if !r.gate.set(state.delivers()) {
		return
	}
	if state.delivers() {
		r.breaker.close()
		r.logger.Info("endpoint enabled; delivery resumes",
			zap.String("destination", r.name))
		return
	}
	r.logger.Warn("endpoint stopped; delivery waits until it is enabled",
		zap.String("destination", r.name),
		zap.String("state", state.State),
		zap.String("reason", state.Reason))
}

// disable closes the gate at once and records the endpoint as disabled in
// the state bucket, keeping the time and reason of an earlier disable. It
// reports whether it stored the disable.
func (r *runner) disable(ctx context.Context, reason string) (bool, error) {
	r.gate.set(false)

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()

	if entry, err := r.kv.Get(ctx, r.name); err == nil {
		if current, err := decodeState(entry); err == nil && current.State == StateDisabled {
			return false, nil
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, fmt.Errorf("reading state of endpoint %q: %w", r.name, err)
	}

	value, err := json.Marshal(EndpointState{
		State:     StateDisabled,
		Reason:    reason,
		Since:     time.Now().UTC(),
		URLSHA256: urlSHA256(r.endpoint.URL),
	})
	if err != nil {
		return false, fmt.Errorf("encoding state of endpoint %q: %w", r.name, err)
	}
	if _, err := r.kv.Put(ctx, r.name, value); err != nil {
		return false, fmt.Errorf("writing state of endpoint %q to bucket %s: %w", r.name, r.kv.Bucket(), err)
	}
	return true, nil
}

// enableIfURLChanged enables an endpoint that a 410 response disabled while
// it had another URL, because the new URL deserves its own attempts. An
// endpoint disabled without a stored URL hash, such as by an operator, stays
// disabled.
func enableIfURLChanged(ctx context.Context, kv jetstream.KeyValue, e *Endpoint, logger *zap.Logger) error {
	entry, err := kv.Get(ctx, e.Name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading state of endpoint %q from bucket %s: %w", e.Name, kv.Bucket(), err)
	}
	state, err := decodeState(entry)
	if err != nil || state.State != StateDisabled || state.URLSHA256 == "" || state.URLSHA256 == urlSHA256(e.URL) {
		return nil
	}

	value, err := json.Marshal(EndpointState{State: StateEnabled, Reason: urlChangedReason, Since: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("encoding state of endpoint %q: %w", e.Name, err)
	}
	// Update writes only over the entry read above. If the state changed
	// meanwhile, the newer state is kept and the workers follow it.
	if _, err := kv.Update(ctx, e.Name, value, entry.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil
		}
		return fmt.Errorf("writing state of endpoint %q to bucket %s: %w", e.Name, kv.Bucket(), err)
	}
	logger.Info("endpoint url changed since it was disabled; enabling it",
		zap.String("destination", e.Name))
	return nil
}
