package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// incrementHeader adds its value to the counter of the message's subject on
// a stream with AllowMsgCounter, as nats-server v2.15.3 implements it.
const incrementHeader = "Nats-Incr"

// deliveredCounts adds up successful deliveries per event type until they
// are added to the JetStream counters, so a busy endpoint makes one counter
// update per event type and flush instead of one per delivery.
type deliveredCounts struct {
	mu     sync.Mutex
	byType map[string]uint64
}

func (c *deliveredCounts) add(eventType string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byType == nil {
		c.byType = make(map[string]uint64)
	}
	c.byType[eventType]++
}

// flush adds the counts to the counters of layout in JetStream. Counts that
// could not be stored are kept for the next flush.
func (c *deliveredCounts) flush(ctx context.Context, js jetstream.JetStream, layout emitter.Layout) error {
	c.mu.Lock()
	counts := c.byType
	c.byType = nil
	c.mu.Unlock()

	var errs []error
	for eventType, n := range counts {
		if err := incrementCounter(ctx, js, layout.DeliveredCounterSubject(eventType), n); err != nil {
			errs = append(errs, err)
			c.mu.Lock()
			if c.byType == nil {
				c.byType = make(map[string]uint64)
			}
			c.byType[eventType] += n
			c.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

func incrementCounter(ctx context.Context, js jetstream.JetStream, subject string, n uint64) error {
	msg := nats.NewMsg(subject)
	msg.Header.Set(incrementHeader, "+"+strconv.FormatUint(n, 10))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("adding %d to counter %s: %w", n, subject, err)
	}
	return nil
}

// readCounter returns the value of the counter on subject, 0 when it was
// never incremented.
func readCounter(ctx context.Context, stream jetstream.Stream, subject string) (uint64, error) {
	msg, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading counter %s: %w", subject, err)
	}
	var value struct {
		Value string `json:"val"`
	}
	if err := json.Unmarshal(msg.Data, &value); err != nil {
		return 0, fmt.Errorf("decoding counter %s: %w", subject, err)
	}
	n, err := strconv.ParseUint(value.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decoding counter %s: value %q is not a count: %w", subject, value.Value, err)
	}
	return n, nil
}
