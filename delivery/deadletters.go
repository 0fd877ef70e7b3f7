package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// StoredDeadLetter is a dead letter with its sequence in the dead-letter
// stream.
type StoredDeadLetter struct {
	DeadLetter
	Sequence uint64 `json:"sequence"`
}

// DeadLetterQuery selects a page of dead letters, newest first.
type DeadLetterQuery struct {
	// Limit is the page size: DefaultPageLimit when 0, and at most
	// MaxPageLimit.
	Limit int

	// Before continues a list: the page holds dead letters stored before
	// this sequence of the dead-letter stream. 0 starts with the newest.
	Before uint64

	// Destination keeps the dead letters of this endpoint, if set.
	Destination string

	// Type keeps the dead letters whose event type matches this event type
	// or pattern, if set.
	Type string

	// Since and Until keep the dead letters stored at or after Since and
	// before Until, if set.
	Since, Until time.Time
}

// DeadLetterPage is one page of dead letters.
type DeadLetterPage struct {
	DeadLetters []StoredDeadLetter

	// Next is the Before of the next page, or 0 when this is the last.
	Next uint64
}

// ListDeadLetters returns a page of the stored dead letters, newest first.
func (s *Store) ListDeadLetters(ctx context.Context, q DeadLetterQuery) (DeadLetterPage, error) {
	stream, err := s.stream(ctx, s.layout.DeadStream())
	if err != nil {
		return DeadLetterPage{}, err
	}
	lo, hi, err := seqBounds(ctx, stream, q.Before, q.Since, q.Until)
	if err != nil {
		return DeadLetterPage{}, err
	}
	subject := s.layout.DeadSubject(">")
	if q.Destination != "" {
		subject = s.layout.DeadSubject(q.Destination)
	}
	page := pageQuery[StoredDeadLetter]{
		stream:   stream,
		subjects: []string{subject},
		limit:    pageLimit(q.Limit),
		lo:       lo,
		hi:       hi,
		keep: func(msg jetstream.Msg) (StoredDeadLetter, bool, error) {
			dead, err := decodeDeadLetter(stream, msg.Data(), sequence(msg))
			if err != nil {
				return StoredDeadLetter{}, false, err
			}
			return dead, q.Type == "" || emitter.MatchPattern(q.Type, dead.EventType), nil
		},
	}
	letters, next, err := page.run(ctx)
	if err != nil {
		return DeadLetterPage{}, err
	}
	return DeadLetterPage{DeadLetters: letters, Next: next}, nil
}

// decodeDeadLetter decodes the dead letter at sequence seq of stream.
func decodeDeadLetter(stream jetstream.Stream, data []byte, seq uint64) (StoredDeadLetter, error) {
	dead := StoredDeadLetter{Sequence: seq}
	if err := json.Unmarshal(data, &dead.DeadLetter); err != nil {
		return StoredDeadLetter{}, fmt.Errorf("decoding the dead letter at sequence %d of stream %s: %w", seq, stream.CachedInfo().Config.Name, err)
	}
	return dead, nil
}

// deadLettersOf calls visit for every dead letter of a destination that was
// stored when the call began, oldest first, until visit returns false or an
// error.
func (s *Store) deadLettersOf(ctx context.Context, destination string, visit func(StoredDeadLetter) (bool, error)) error {
	stream, err := s.stream(ctx, s.layout.DeadStream())
	if err != nil {
		return err
	}
	end := stream.CachedInfo().State.LastSeq + 1
	var visitErr error
	err = scan{stream: stream, subjects: []string{s.layout.DeadSubject(destination)}, endSeq: end}.run(ctx, func(msg jetstream.Msg) bool {
		dead, err := decodeDeadLetter(stream, msg.Data(), sequence(msg))
		if err != nil {
			visitErr = err
			return false
		}
		more, err := visit(dead)
		visitErr = err
		return more && err == nil
	})
	if err != nil {
		return err
	}
	return visitErr
}

// PurgeDeadLetters deletes every dead letter of a destination and returns
// how many there were.
func (s *Store) PurgeDeadLetters(ctx context.Context, destination string) (uint64, error) {
	return purgeSubject(ctx, s.js, s.layout.DeadStream(), s.layout.DeadSubject(destination))
}

// DeleteDeadLetters deletes the dead letters of one event at a destination
// and returns how many there were: 0 when there were none, more than 1 when
// copies of the event were dead-lettered too.
func (s *Store) DeleteDeadLetters(ctx context.Context, destination, eventID string) (int, error) {
	stream, err := s.stream(ctx, s.layout.DeadStream())
	if err != nil {
		return 0, err
	}
	var sequences []uint64
	err = s.deadLettersOf(ctx, destination, func(dead StoredDeadLetter) (bool, error) {
		if dead.EventID == eventID {
			sequences = append(sequences, dead.Sequence)
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, seq := range sequences {
		if err := deleteMsg(ctx, stream, seq); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}

// deleteMsg deletes a message, which may be gone already.
func deleteMsg(ctx context.Context, stream jetstream.Stream, seq uint64) error {
	err := stream.DeleteMsg(ctx, seq)
	if err != nil && !isMsgGone(err) {
		return fmt.Errorf("deleting message %d of stream %s: %w", seq, stream.CachedInfo().Config.Name, err)
	}
	return nil
}

// DeadLetterCounts returns the number of stored dead letters per
// destination.
func (s *Store) DeadLetterCounts(ctx context.Context) (map[string]uint64, error) {
	stream, err := s.stream(ctx, s.layout.DeadStream())
	if err != nil {
		return nil, err
	}
	return subjectCounts(ctx, stream, s.layout.DeadSubjectPrefix())
}

// purgeSubject deletes every message on subject from a stream and returns
// how many there were. It sends the JetStream API request itself, because
// jetstream.Stream.Purge does not return the count.
func purgeSubject(ctx context.Context, js jetstream.JetStream, stream, subject string) (uint64, error) {
	prefix := js.Options().APIPrefix
	if prefix == "" {
		prefix = jetstream.DefaultAPIPrefix
	}
	if !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	request, err := json.Marshal(jetstream.StreamPurgeRequest{Subject: subject})
	if err != nil {
		return 0, fmt.Errorf("encoding purge request: %w", err)
	}
	reply, err := js.Conn().RequestWithContext(ctx, prefix+"STREAM.PURGE."+stream, request)
	if err != nil {
		return 0, fmt.Errorf("purging %s from stream %s: %w", subject, stream, err)
	}
	var response struct {
		Error  *jetstream.APIError `json:"error"`
		Purged uint64              `json:"purged"`
	}
	if err := json.Unmarshal(reply.Data, &response); err != nil {
		return 0, fmt.Errorf("purging %s from stream %s: decoding the response: %w", subject, stream, err)
	}
	if response.Error != nil {
		return 0, fmt.Errorf("purging %s from stream %s: %w", subject, stream, response.Error)
	}
	return response.Purged, nil
}

// isMsgGone reports whether deleting a message failed because it no longer
// exists. nats-server v2.15.3 returns error code 10057 with the text "no
// message found" then.
func isMsgGone(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == 10057 {
		return strings.Contains(apiErr.Description, "no message found")
	}
	return errors.Is(err, jetstream.ErrMsgNotFound)
}
