package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Page sizes of the list queries.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000

	// maxScanPerPage bounds the messages that one page reads. A page of a
	// filter that few messages match may then hold fewer than its limit,
	// even none, and still have a next page.
	maxScanPerPage = 20_000

	// minScanBlock is the size of the first range of sequences that a page
	// reads. Each further range is twice as large.
	minScanBlock = 64
)

// pageLimit returns the page size for a requested limit: DefaultPageLimit
// for 0 or less, and at most MaxPageLimit.
func pageLimit(limit int) int {
	if limit <= 0 {
		return DefaultPageLimit
	}
	return min(limit, MaxPageLimit)
}

// pageQuery reads one page of a stream, newest first.
type pageQuery[T any] struct {
	stream      jetstream.Stream
	subjects    []string
	headersOnly bool
	limit       int

	// The page holds messages with lo <= sequence < hi.
	lo, hi uint64

	// keep returns the item of a message and whether the page includes it.
	keep func(msg jetstream.Msg) (T, bool, error)
}

// run returns the items of the page and the sequence before which the next
// page starts, or 0 when there is no next page.
func (q pageQuery[T]) run(ctx context.Context) ([]T, uint64, error) {
	var items []T
	var sequences []uint64 // of items
	hi, scanned := q.hi, 0
	block := uint64(max(2*q.limit, minScanBlock))

	for hi > q.lo && scanned < maxScanPerPage {
		start := q.lo
		if hi-q.lo > block {
			start = hi - block
		}
		var msgs []jetstream.Msg
		err := scan{stream: q.stream, subjects: q.subjects, startSeq: start, endSeq: hi, headersOnly: q.headersOnly}.run(ctx, func(msg jetstream.Msg) bool {
			msgs = append(msgs, msg)
			return true
		})
		if err != nil {
			return nil, 0, err
		}
		scanned += len(msgs)

		for i := len(msgs) - 1; i >= 0; i-- {
			item, ok, err := q.keep(msgs[i])
			if err != nil {
				return nil, 0, err
			}
			if !ok {
				continue
			}
			// One item more than the limit shows that a next page exists.
			if len(items) == q.limit {
				return items, sequences[len(sequences)-1], nil
			}
			items = append(items, item)
			sequences = append(sequences, sequence(msgs[i]))
		}
		hi = start
		block *= 2
	}
	if hi > q.lo {
		// The scan stopped at maxScanPerPage.
		return items, hi, nil
	}
	return items, 0, nil
}

// sequence returns the stream sequence of a message that a scan read.
func sequence(msg jetstream.Msg) uint64 {
	meta, err := msg.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

// seqBounds returns the range of sequences lo <= sequence < hi that contains
// the messages stored in [since, until) and before the sequence before. Zero
// values leave a bound open.
func seqBounds(ctx context.Context, stream jetstream.Stream, before uint64, since, until time.Time) (lo, hi uint64, err error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading stream %s: %w", stream.CachedInfo().Config.Name, err)
	}
	lo, hi = info.State.FirstSeq, info.State.LastSeq+1
	if before > 0 && before < hi {
		hi = before
	}
	if !since.IsZero() {
		first, err := firstSeqAtOrAfter(ctx, stream, since, hi)
		if err != nil {
			return 0, 0, err
		}
		lo = max(lo, first)
	}
	if !until.IsZero() {
		first, err := firstSeqAtOrAfter(ctx, stream, until, hi)
		if err != nil {
			return 0, 0, err
		}
		hi = min(hi, first)
	}
	return lo, hi, nil
}

// firstSeqAtOrAfter returns the sequence of the first message stored at or
// after t, or end when there is none before end.
func firstSeqAtOrAfter(ctx context.Context, stream jetstream.Stream, t time.Time, end uint64) (uint64, error) {
	first := end
	err := scan{stream: stream, startTime: t, endSeq: end, headersOnly: true}.run(ctx, func(msg jetstream.Msg) bool {
		first = sequence(msg)
		return false
	})
	return first, err
}
