package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Limits of the ephemeral consumers that read streams for the admin API.
const (
	// scanBatch is the number of messages requested at once.
	scanBatch = 256

	// scanFetchWait bounds the wait for one batch. A batch that brings no
	// message ends the scan, because its messages were removed meanwhile.
	scanFetchWait = 2 * time.Second

	// scanInactiveThreshold lets the server delete a scan's consumer that
	// the scan could not delete itself.
	scanInactiveThreshold = time.Minute

	// scanCleanupTimeout bounds the deletion of a scan's consumer.
	scanCleanupTimeout = 5 * time.Second
)

// scan reads the messages of a stream in stream order with an ephemeral
// consumer that acknowledges nothing, so it changes no state but its own.
type scan struct {
	stream jetstream.Stream

	// subjects filter the messages. None selects every subject.
	subjects []string

	// The scan starts at startTime when it is set, otherwise at startSeq,
	// or else at the first message.
	startTime time.Time
	startSeq  uint64

	// endSeq ends the scan before this sequence. 0 scans to the last
	// message.
	endSeq uint64

	// headersOnly leaves the message data out. The Nats-Msg-Size header
	// then contains its size.
	headersOnly bool
}

// run calls visit for every selected message until visit returns false or
// the messages run out.
func (s scan) run(ctx context.Context, visit func(msg jetstream.Msg) bool) error {
	if s.endSeq != 0 && s.startSeq >= s.endSeq && s.startTime.IsZero() {
		return nil
	}
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       s.headersOnly,
		InactiveThreshold: scanInactiveThreshold,
		MemoryStorage:     true,
		Replicas:          1,
	}
	switch {
	case len(s.subjects) == 1:
		cfg.FilterSubject = s.subjects[0]
	case len(s.subjects) > 1:
		cfg.FilterSubjects = s.subjects
	}
	switch {
	case !s.startTime.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		start := s.startTime.UTC()
		cfg.OptStartTime = &start
	case s.startSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = s.startSeq
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}

	cons, err := s.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("creating a consumer to read stream %s: %w", s.stream.CachedInfo().Config.Name, err)
	}
	defer s.deleteConsumer(cons)

	pending := cons.CachedInfo().NumPending
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, scanBatch)), jetstream.FetchMaxWait(scanFetchWait))
		if err != nil {
			return fmt.Errorf("reading stream %s: %w", s.stream.CachedInfo().Config.Name, err)
		}
		received := 0
		for msg := range batch.Messages() {
			received++
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("reading stream %s: %w", s.stream.CachedInfo().Config.Name, err)
			}
			if s.endSeq != 0 && meta.Sequence.Stream >= s.endSeq {
				return nil
			}
			if !visit(msg) {
				return nil
			}
			pending = meta.NumPending
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !isFetchTimeout(err) {
			return fmt.Errorf("reading stream %s: %w", s.stream.CachedInfo().Config.Name, err)
		}
		if received == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s scan) deleteConsumer(cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), scanCleanupTimeout)
	defer cancel()
	// The inactive threshold removes it later if this fails.
	_ = s.stream.DeleteConsumer(ctx, cons.CachedInfo().Name)
}
