package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// ackWaitMargin is added to the attempt timeout to form the consumer's
// AckWait, so JetStream never redelivers an event while its attempt, the
// attempt record and the acknowledgement are still under way.
const ackWaitMargin = 30 * time.Second

func consumerName(endpoint string) string {
	return emitter.ConsumerPrefix + endpoint
}

// consumerConfig returns the durable pull consumer of an endpoint. Retries
// use NakWithDelay from the endpoint's schedule, so BackOff stays unset and
// MaxDeliver unlimited. MaxAckPending is unlimited because events waiting for
// a retry count against it; the workers bound the attempts in flight instead.
func consumerConfig(e *Endpoint) jetstream.ConsumerConfig {
	subjects := make([]string, len(e.Events))
	for i, pattern := range e.Events {
		subjects[i] = emitter.Subject(pattern)
	}
	maxAckPending := -1
	if e.Ordered {
		maxAckPending = 1
	}
	return jetstream.ConsumerConfig{
		Durable:        consumerName(e.Name),
		Description:    "Webhook deliveries to endpoint " + e.Name,
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        time.Duration(e.Timeout) + ackWaitMargin,
		MaxDeliver:     -1,
		MaxAckPending:  maxAckPending,
	}
}

// ensureConsumer creates the endpoint's consumer, which then receives only
// events stored from now on, or updates an existing one while keeping its
// position in the stream.
func ensureConsumer(ctx context.Context, stream jetstream.Stream, e *Endpoint) (jetstream.Consumer, error) {
	cfg := consumerConfig(e)

	existing, err := stream.Consumer(ctx, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err := stream.CreateConsumer(ctx, cfg)
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			if err != nil {
				return nil, fmt.Errorf("creating consumer %s on stream %s: %w", cfg.Durable, emitter.EventsStream, err)
			}
			return cons, nil
		}
		// Another instance created it with other settings meanwhile.
		existing, err = stream.Consumer(ctx, cfg.Durable)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up consumer %s on stream %s: %w", cfg.Durable, emitter.EventsStream, err)
	}

	current := existing.CachedInfo().Config
	if current.DeliverSubject != "" {
		return nil, fmt.Errorf("consumer %s on stream %s is a push consumer: delete it so that a pull consumer can take its place", cfg.Durable, emitter.EventsStream)
	}
	// JetStream rejects changes to these fields, and the start position is
	// the consumer's progress.
	cfg.DeliverPolicy = current.DeliverPolicy
	cfg.OptStartSeq = current.OptStartSeq
	cfg.OptStartTime = current.OptStartTime
	cfg.ReplayPolicy = current.ReplayPolicy
	cfg.MaxWaiting = current.MaxWaiting

	cons, err := stream.UpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("updating consumer %s on stream %s: %w", cfg.Durable, emitter.EventsStream, err)
	}
	return cons, nil
}

// removeStaleConsumers deletes the "dest_" consumers whose endpoint is no
// longer configured.
func removeStaleConsumers(ctx context.Context, stream jetstream.Stream, keep map[string]bool, logger *zap.Logger) error {
	lister := stream.ConsumerNames(ctx)
	var stale []string
	for name := range lister.Name() {
		if strings.HasPrefix(name, emitter.ConsumerPrefix) && !keep[name] {
			stale = append(stale, name)
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("listing consumers of stream %s: %w", emitter.EventsStream, err)
	}

	for _, name := range stale {
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("deleting consumer %s of a removed endpoint: %w", name, err)
		}
		logger.Info("deleted consumer of removed endpoint",
			zap.String("consumer", name),
			zap.String("destination", strings.TrimPrefix(name, emitter.ConsumerPrefix)))
	}
	return nil
}
