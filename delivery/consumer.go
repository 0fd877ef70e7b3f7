package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
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

// consumerConfig returns the durable pull consumer of an endpoint. It
// filters the endpoint's event types and its direct subject, which carries
// copies and test events for it alone. Retries use NakWithDelay from the
// endpoint's schedule, so BackOff stays unset and MaxDeliver unlimited.
// MaxAckPending is unlimited because events waiting for a retry count
// against it; the workers bound the attempts in flight instead.
func consumerConfig(layout emitter.Layout, e *Endpoint) jetstream.ConsumerConfig {
	subjects := append(eventSubjects(layout, e), layout.DirectSubject(e.Name, ">"))
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

// eventSubjects returns the subjects of layout of the event types that e
// subscribes to, without its direct subject.
func eventSubjects(layout emitter.Layout, e *Endpoint) []string {
	subjects := make([]string, len(e.Events))
	for i, pattern := range e.Events {
		subjects[i] = layout.Subject(pattern)
	}
	return subjects
}

// ensureConsumer creates the endpoint's consumer, which then receives only
// events stored from now on, or updates an existing one while keeping its
// position in the stream.
func ensureConsumer(ctx context.Context, stream jetstream.Stream, layout emitter.Layout, e *Endpoint) (jetstream.Consumer, error) {
	cfg := consumerConfig(layout, e)
	streamName := layout.EventsStream()

	existing, err := stream.Consumer(ctx, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err := stream.CreateConsumer(ctx, cfg)
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			if err != nil {
				return nil, fmt.Errorf("creating consumer %s on stream %s: %w", cfg.Durable, streamName, err)
			}
			return cons, nil
		}
		// Another instance created it with other settings meanwhile.
		existing, err = stream.Consumer(ctx, cfg.Durable)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up consumer %s on stream %s: %w", cfg.Durable, streamName, err)
	}

	current := existing.CachedInfo().Config
	if current.DeliverSubject != "" {
		return nil, fmt.Errorf("consumer %s on stream %s is a push consumer: delete it so that a pull consumer can take its place", cfg.Durable, streamName)
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
		return nil, fmt.Errorf("updating consumer %s on stream %s: %w", cfg.Durable, streamName, err)
	}
	return cons, nil
}

// Reconcile makes the "dest_" consumers on the events stream of layout
// match endpoints: it creates or updates the consumer of each endpoint and deletes
// every other "dest_" consumer, with the events still waiting in it. Call it
// only with the endpoints of the config that stays in charge of the broker,
// because the consumers of endpoints missing from the list are gone for
// every instance that shares the broker. The endpoints must be provisioned
// and the events stream must exist (see emitter.EnsureStreams). A nil logger
// discards the log lines.
func Reconcile(ctx context.Context, js jetstream.JetStream, layout emitter.Layout, endpoints []*Endpoint, logger *zap.Logger) error {
	if err := checkEndpoints(endpoints); err != nil {
		return err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	stream, err := eventsStream(ctx, js, layout)
	if err != nil {
		return err
	}
	_, err = reconcileConsumers(ctx, stream, layout, endpoints, true, logger)
	return err
}

// checkEndpoints validates endpoints and checks that each was provisioned.
func checkEndpoints(endpoints []*Endpoint) error {
	if err := ValidateEndpoints(endpoints); err != nil {
		return err
	}
	for _, e := range endpoints {
		if !e.provisioned {
			return fmt.Errorf("endpoint %q is not provisioned: call Provision before starting delivery", e.Name)
		}
	}
	return nil
}

func eventsStream(ctx context.Context, js jetstream.JetStream, layout emitter.Layout) (jetstream.Stream, error) {
	stream, err := js.Stream(ctx, layout.EventsStream())
	if err != nil {
		return nil, fmt.Errorf("looking up stream %s: %w; create the streams with emitter.EnsureStreams before starting delivery", layout.EventsStream(), err)
	}
	return stream, nil
}

const (
	// consumerAttemptTimeout bounds one attempt to create or update a
	// consumer. In a cluster, a request may get no response while
	// instances create the same consumer at once, or while the cluster
	// elects a leader, and the next attempt succeeds.
	consumerAttemptTimeout = 5 * time.Second

	// consumerRetryDelay is the pause between two such attempts.
	consumerRetryDelay = 500 * time.Millisecond
)

// ensureConsumerRetrying runs ensureConsumer until it succeeds, fails with
// an error that a retry cannot fix, or ctx ends.
func ensureConsumerRetrying(ctx context.Context, stream jetstream.Stream, layout emitter.Layout, e *Endpoint, logger *zap.Logger) (jetstream.Consumer, error) {
	warned := false
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, consumerAttemptTimeout)
		cons, err := ensureConsumer(attemptCtx, stream, layout, e)
		cancel()
		if err == nil || !retryableJetStreamError(err) || ctx.Err() != nil {
			return cons, err
		}
		if !warned {
			warned = true
			logger.Warn("JetStream did not create or update the consumer yet; retrying until the config load times out",
				zap.String("destination", e.Name),
				zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(consumerRetryDelay):
		}
	}
}

// retryableJetStreamError reports whether a JetStream API request failed in
// a way that a later attempt can fix: no response in time, no server
// listening yet, or a cluster that is not ready (see
// retryableJetStreamCodes).
func retryableJetStreamError(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders):
		return true
	case errors.As(err, &apiErr):
		return retryableJetStreamCodes[apiErr.ErrorCode]
	default:
		return false
	}
}

// retryableJetStreamCodes are the JetStream error codes (nats-server
// v2.15.3, server/errors.json) of a cluster that is still forming or
// electing leaders: system temporarily unavailable, no suitable peers, not
// assigned, not leader, and stream or consumer offline.
var retryableJetStreamCodes = map[jetstream.ErrorCode]bool{
	10008: true, // JSClusterNotAvailErr
	10005: true, // JSClusterNoPeersErrF
	10007: true, // JSClusterNotAssignedErr
	10009: true, // JSClusterNotLeaderErr
	10118: true, // JSStreamOfflineErr
	10119: true, // JSConsumerOfflineErr
	10194: true, // JSStreamOfflineReasonErrF
	10195: true, // JSConsumerOfflineReasonErrF
}

// reconcileConsumers creates or updates the consumer of each endpoint and
// returns them in the order of endpoints. With removeStale it also deletes
// the "dest_" consumers of all other endpoints.
func reconcileConsumers(ctx context.Context, stream jetstream.Stream, layout emitter.Layout, endpoints []*Endpoint, removeStale bool, logger *zap.Logger) ([]jetstream.Consumer, error) {
	consumers := make([]jetstream.Consumer, len(endpoints))
	keep := make(map[string]bool, len(endpoints))
	for i, e := range endpoints {
		cons, err := ensureConsumerRetrying(ctx, stream, layout, e, logger)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", e.Name, err)
		}
		consumers[i] = cons
		keep[consumerName(e.Name)] = true
	}
	if removeStale {
		if err := removeStaleConsumers(ctx, stream, keep, logger); err != nil {
			return nil, err
		}
	}
	return consumers, nil
}

// removeStaleConsumers deletes the "dest_" consumers that are not in keep.
func removeStaleConsumers(ctx context.Context, stream jetstream.Stream, keep map[string]bool, logger *zap.Logger) error {
	lister := stream.ListConsumers(ctx)
	var stale []*jetstream.ConsumerInfo
	for info := range lister.Info() {
		if strings.HasPrefix(info.Name, emitter.ConsumerPrefix) && !keep[info.Name] {
			stale = append(stale, info)
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("listing consumers of stream %s: %w", stream.CachedInfo().Config.Name, err)
	}

	for _, info := range stale {
		if err := stream.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("deleting consumer %s of a removed endpoint: %w", info.Name, err)
		}
		logDeletedConsumer(logger, info)
	}
	return nil
}

// logDeletedConsumer logs a deleted consumer at Warn when it still held
// events, which its endpoint no longer receives, and at Info otherwise. The
// count comes from the listing made before the deletion, so events stored or
// settled in between are not in it.
func logDeletedConsumer(logger *zap.Logger, info *jetstream.ConsumerInfo) {
	destination := strings.TrimPrefix(info.Name, emitter.ConsumerPrefix)
	undelivered := info.NumPending + uint64(max(info.NumAckPending, 0))
	if undelivered == 0 {
		logger.Info("deleted consumer of removed endpoint",
			zap.String("consumer", info.Name),
			zap.String("destination", destination))
		return
	}
	logger.Warn("deleted consumer of removed endpoint; its undelivered events are dropped for it",
		zap.String("consumer", info.Name),
		zap.String("destination", destination),
		zap.Uint64("undelivered_events", undelivered))
}
