package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// Outcome of an event at a destination that has not attempted it yet.
const OutcomePending = "pending"

// ErrEventNotFound is returned by FindEvent for an id that no stored event
// has.
var ErrEventNotFound = errors.New("event not found")

// Bounds of the search for an event by id. The id is a ULID that contains the
// millisecond at which the handler created the event, and JetStream stores
// the event after that, so the search reads the stream from shortly before
// that time. It stops at the first event whose own id is more than
// lookupAfter younger, because the publisher stores events about in the
// order it received them, and retries within seconds.
const (
	lookupBefore = 2 * time.Second
	lookupAfter  = time.Minute
)

// sizeHeader contains the data size of a message read without its data.
const sizeHeader = "Nats-Msg-Size"

// Store reads and changes the contents of the JetStream layout for the
// admin API: events, attempt records, dead letters, endpoint states and
// counters.
type Store struct {
	js     jetstream.JetStream
	layout emitter.Layout
	kv     jetstream.KeyValue
}

// OpenStore returns a Store for the streams and the bucket of layout,
// which emitter.EnsureStreams created.
func OpenStore(ctx context.Context, js jetstream.JetStream, layout emitter.Layout) (*Store, error) {
	kv, err := js.KeyValue(ctx, layout.StateBucket())
	if err != nil {
		return nil, fmt.Errorf("opening key-value bucket %s: %w; create it with emitter.EnsureStreams first", layout.StateBucket(), err)
	}
	return &Store{js: js, layout: layout, kv: kv}, nil
}

func (s *Store) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	stream, err := s.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("looking up stream %s: %w", name, err)
	}
	return stream, nil
}

// EventSummary describes a stored event in a list of events.
type EventSummary struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	Time           string `json:"time"`
	StreamSequence uint64 `json:"stream_sequence"`
	Size           int    `json:"size"`

	// Destinations maps every destination that receives the event to the
	// outcome of its latest attempt there.
	Destinations map[string]DestinationOutcome `json:"destinations"`
}

// DestinationOutcome is the delivery state of an event at one destination:
// the outcome of its latest attempt, or "pending" before the first, and the
// number of attempts, counting those of copies made by redeliver and replay.
type DestinationOutcome struct {
	Outcome  string `json:"outcome"`
	Attempts int    `json:"attempts"`
}

// EventQuery selects a page of events, newest first.
type EventQuery struct {
	// Limit is the page size: DefaultPageLimit when 0, and at most
	// MaxPageLimit.
	Limit int

	// Before continues a list: the page holds events stored before this
	// stream sequence. 0 starts with the newest event.
	Before uint64

	// Destination keeps the events that this endpoint receives, if set.
	Destination *Endpoint

	// Type keeps the events whose type matches this event type or
	// pattern, if set.
	Type string

	// Outcome keeps the events whose latest attempt at some destination
	// (at Destination, if set) has this outcome, if set.
	Outcome string

	// Since and Until keep the events stored at or after Since and before
	// Until, if set.
	Since, Until time.Time
}

// EventPage is one page of events.
type EventPage struct {
	Events []EventSummary

	// Next is the Before of the next page, or 0 when this is the last.
	Next uint64
}

// ListEvents returns a page of the stored events, newest first, with the
// outcome at each of endpoints that receives them. Copies made by
// redeliver and replay are not listed, but test events are.
//
// NOTE: the outcomes are read from the attempts stream, one bucket of
// about 33 seconds of events at a time (see emitter.AttemptBucket). A page
// of recent events reads one or two buckets. An Outcome filter that few
// events match reads a bucket for every 33 seconds of events the page
// passes, up to maxScanPerPage events, and a busy site's bucket holds many
// records.
func (s *Store) ListEvents(ctx context.Context, q EventQuery, endpoints []*Endpoint) (EventPage, error) {
	stream, err := s.stream(ctx, s.layout.EventsStream())
	if err != nil {
		return EventPage{}, err
	}
	lo, hi, err := seqBounds(ctx, stream, q.Before, q.Since, q.Until)
	if err != nil {
		return EventPage{}, err
	}
	outcomes, err := s.newOutcomeReader(ctx, endpoints)
	if err != nil {
		return EventPage{}, err
	}

	page := pageQuery[EventSummary]{
		stream:      stream,
		subjects:    q.subjects(s.layout),
		headersOnly: true,
		limit:       pageLimit(q.Limit),
		lo:          lo,
		hi:          hi,
		keep: func(msg jetstream.Msg) (EventSummary, bool, error) {
			if isCopy(msg.Headers()) || !q.selects(s.layout, msg.Subject()) {
				return EventSummary{}, false, nil
			}
			summary, err := outcomes.summarize(ctx, msg)
			if err != nil {
				return EventSummary{}, false, err
			}
			return summary, q.selectsOutcome(summary), nil
		},
	}
	events, next, err := page.run(ctx)
	if err != nil {
		return EventPage{}, err
	}
	return EventPage{Events: events, Next: next}, nil
}

// subjects returns the filter subjects of layout that select the query's
// events without overlapping, as JetStream requires.
func (q EventQuery) subjects(layout emitter.Layout) []string {
	switch {
	case q.Type != "" && q.Destination != nil:
		return []string{layout.Subject(q.Type), layout.DirectSubject(q.Destination.Name, q.Type)}
	case q.Type != "":
		return []string{layout.Subject(q.Type), layout.DirectSubject("*", q.Type)}
	case q.Destination != nil:
		return append(eventSubjects(layout, q.Destination), layout.DirectSubject(q.Destination.Name, ">"))
	default:
		return allEventSubjects(layout)
	}
}

// allEventSubjects returns the filter subjects of every message in the
// events stream of layout.
func allEventSubjects(layout emitter.Layout) []string {
	return []string{layout.EventsSubjectPrefix() + ">", layout.DirectSubjectPrefix() + ">"}
}

// selects checks what the filter subjects cannot: with both a type and a
// destination, that the destination receives the type.
func (q EventQuery) selects(layout emitter.Layout, subject string) bool {
	if q.Type == "" || q.Destination == nil || strings.HasPrefix(subject, layout.DirectSubjectPrefix()) {
		return true
	}
	return subscribes(q.Destination, layout.EventType(subject))
}

func (q EventQuery) selectsOutcome(summary EventSummary) bool {
	if q.Outcome == "" {
		return true
	}
	for name, outcome := range summary.Destinations {
		if (q.Destination == nil || q.Destination.Name == name) && outcome.Outcome == q.Outcome {
			return true
		}
	}
	return false
}

// subscribes reports whether the endpoint receives events of eventType
// through its event patterns.
func subscribes(e *Endpoint, eventType string) bool {
	for _, pattern := range e.Events {
		if emitter.MatchPattern(pattern, eventType) {
			return true
		}
	}
	return false
}

// outcomeReader finds the outcome of events at the endpoints that receive
// them.
type outcomeReader struct {
	layout    emitter.Layout
	attempts  jetstream.Stream
	endpoints []*Endpoint

	// created holds when each endpoint's consumer was created. An event
	// stored before then never reaches the endpoint.
	created map[string]time.Time

	// buckets holds the outcomes of the attempt buckets read so far, by
	// bucket, event id and destination. The events of a page are mostly
	// recent, so a few buckets serve a whole page.
	buckets map[string]map[string]map[string]DestinationOutcome
}

func (s *Store) newOutcomeReader(ctx context.Context, endpoints []*Endpoint) (*outcomeReader, error) {
	attempts, err := s.stream(ctx, s.layout.AttemptsStream())
	if err != nil {
		return nil, err
	}
	r := &outcomeReader{
		layout:    s.layout,
		attempts:  attempts,
		endpoints: endpoints,
		created:   make(map[string]time.Time),
		buckets:   make(map[string]map[string]map[string]DestinationOutcome),
	}
	for _, e := range endpoints {
		cons, err := s.js.Consumer(ctx, s.layout.EventsStream(), consumerName(e.Name))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("looking up consumer %s: %w", consumerName(e.Name), err)
		}
		r.created[e.Name] = cons.CachedInfo().Created
	}
	return r, nil
}

// summarize describes the event of a message read without its data.
func (r *outcomeReader) summarize(ctx context.Context, msg jetstream.Msg) (EventSummary, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return EventSummary{}, fmt.Errorf("reading message metadata: %w", err)
	}
	size, _ := strconv.Atoi(msg.Headers().Get(sizeHeader))
	summary := EventSummary{
		ID:             eventID(msg.Headers()),
		Type:           r.layout.EventType(msg.Subject()),
		Time:           formatTime(meta.Timestamp),
		StreamSequence: meta.Sequence.Stream,
		Size:           size,
		Destinations:   make(map[string]DestinationOutcome),
	}
	receivers := r.receivers(msg.Subject(), meta.Timestamp)
	if len(receivers) == 0 {
		return summary, nil
	}

	outcomes, err := r.outcomes(ctx, summary.ID)
	if err != nil {
		return EventSummary{}, err
	}
	for _, name := range receivers {
		outcome, ok := outcomes[name]
		if !ok {
			outcome = DestinationOutcome{Outcome: OutcomePending}
		}
		summary.Destinations[name] = outcome
	}
	return summary, nil
}

// outcomes returns the outcome of the latest attempt and the number of
// attempts of an event per destination that attempted it. It reads the
// headers of the event's attempt bucket once for all events in it.
func (r *outcomeReader) outcomes(ctx context.Context, eventID string) (map[string]DestinationOutcome, error) {
	bucket := emitter.AttemptBucket(eventID)
	if events, ok := r.buckets[bucket]; ok {
		return events[eventID], nil
	}

	events := make(map[string]map[string]DestinationOutcome)
	prefix := r.layout.AttemptsSubjectPrefix()
	err := scan{stream: r.attempts, subjects: []string{r.layout.AttemptSubject("*", eventID)}, headersOnly: true}.run(ctx, func(msg jetstream.Msg) bool {
		id := msg.Headers().Get(emitter.EventIDHeader)
		destination, _, _ := strings.Cut(strings.TrimPrefix(msg.Subject(), prefix), ".")
		if events[id] == nil {
			events[id] = make(map[string]DestinationOutcome)
		}
		outcome := events[id][destination]
		outcome.Attempts++
		outcome.Outcome = msg.Headers().Get(outcomeHeader)
		events[id][destination] = outcome
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("reading the attempts of event %s: %w", eventID, err)
	}
	r.buckets[bucket] = events
	if outcomes := events[eventID]; outcomes != nil {
		return outcomes, nil
	}
	return r.legacyOutcomes(ctx, eventID)
}

// legacyOutcomes reads the outcomes of an event without records in its
// bucket from the subjects of the layout before buckets (see
// emitter.Layout.LegacyAttemptSubject). It costs a request per event, and
// one more per destination that attempted it.
func (r *outcomeReader) legacyOutcomes(ctx context.Context, eventID string) (map[string]DestinationOutcome, error) {
	if !hasLegacySubject(eventID) {
		return nil, nil
	}
	info, err := r.attempts.Info(ctx, jetstream.WithSubjectFilter(r.layout.LegacyAttemptSubject("*", eventID)))
	if err != nil {
		return nil, fmt.Errorf("counting the attempts of event %s: %w", eventID, err)
	}
	if len(info.State.Subjects) == 0 {
		return nil, nil
	}
	outcomes := make(map[string]DestinationOutcome, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		destination, _, _ := strings.Cut(strings.TrimPrefix(subject, r.layout.AttemptsSubjectPrefix()), ".")
		outcome := DestinationOutcome{Outcome: OutcomePending, Attempts: int(n)}
		last, err := lastAttempt(ctx, r.attempts, subject)
		if err != nil {
			return nil, err
		}
		if last != nil {
			outcome.Outcome = last.Outcome
		}
		outcomes[destination] = outcome
	}
	return outcomes, nil
}

// hasLegacySubject reports whether eventID can have attempt records on a
// subject of the layout before buckets, which differs from its bucket's.
func hasLegacySubject(eventID string) bool {
	return isToken(eventID) && emitter.AttemptBucket(eventID) != eventID
}

// receivers returns the configured endpoints that receive a message on
// subject, stored at stored.
func (r *outcomeReader) receivers(subject string, stored time.Time) []string {
	var names []string
	if destination, ok := r.layout.DirectDestination(subject); ok {
		for _, e := range r.endpoints {
			if e.Name == destination {
				names = append(names, e.Name)
			}
		}
		return names
	}
	eventType := r.layout.EventType(subject)
	for _, e := range r.endpoints {
		created, ok := r.created[e.Name]
		if ok && subscribes(e, eventType) && !stored.Before(created) {
			names = append(names, e.Name)
		}
	}
	return names
}

// lastAttempt returns the latest attempt record on subject, which may be a
// wildcard, or nil when there is none.
func lastAttempt(ctx context.Context, attempts jetstream.Stream, subject string) (*AttemptRecord, error) {
	msg, err := attempts.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the last attempt record on %s: %w", subject, err)
	}
	rec := new(AttemptRecord)
	if err := json.Unmarshal(msg.Data, rec); err != nil {
		return nil, fmt.Errorf("decoding the attempt record at sequence %d of stream %s: %w", msg.Sequence, attempts.CachedInfo().Config.Name, err)
	}
	return rec, nil
}

// StoredEvent is an event read from the events stream.
type StoredEvent struct {
	ID             string
	Type           string
	Time           time.Time
	StreamSequence uint64
	Payload        []byte

	// Destination is set for a test event, which only it receives.
	Destination string
}

// FindEvent returns the stored event with the id, or ErrEventNotFound. The
// id is a ULID, and the search reads the stream from the time it holds (see
// lookupBefore).
func (s *Store) FindEvent(ctx context.Context, id string) (*StoredEvent, error) {
	parsed, err := ulid.ParseStrict(id)
	if err != nil {
		return nil, ErrEventNotFound
	}
	created := ulid.Time(parsed.Time())
	stream, err := s.stream(ctx, s.layout.EventsStream())
	if err != nil {
		return nil, err
	}

	var found uint64
	search := scan{
		stream:      stream,
		subjects:    allEventSubjects(s.layout),
		startTime:   created.Add(-lookupBefore),
		headersOnly: true,
	}
	err = search.run(ctx, func(msg jetstream.Msg) bool {
		if isCopy(msg.Headers()) {
			return true
		}
		msgID := msg.Headers().Get(jetstream.MsgIDHeader)
		if msgID == id {
			found = sequence(msg)
			return false
		}
		other, err := ulid.ParseStrict(msgID)
		return err != nil || !ulid.Time(other.Time()).After(created.Add(lookupAfter))
	})
	if err != nil {
		return nil, err
	}
	if found == 0 {
		return nil, ErrEventNotFound
	}

	msg, err := stream.GetMsg(ctx, found)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrEventNotFound // expired since the search
	}
	if err != nil {
		return nil, fmt.Errorf("reading event %s at sequence %d: %w", id, found, err)
	}
	return storedEvent(s.layout, id, msg), nil
}

func storedEvent(layout emitter.Layout, id string, msg *jetstream.RawStreamMsg) *StoredEvent {
	ev := &StoredEvent{
		ID:             id,
		Type:           layout.EventType(msg.Subject),
		Time:           msg.Time,
		StreamSequence: msg.Sequence,
		Payload:        msg.Data,
	}
	ev.Destination, _ = layout.DirectDestination(msg.Subject)
	return ev
}

// EventAttempts returns the attempt records of an event per destination, in
// the order they were stored.
func (s *Store) EventAttempts(ctx context.Context, id string) (map[string][]AttemptRecord, error) {
	attempts := make(map[string][]AttemptRecord)
	if !isToken(id) {
		return attempts, nil
	}
	stream, err := s.stream(ctx, s.layout.AttemptsStream())
	if err != nil {
		return nil, err
	}
	subjects := []string{s.layout.AttemptSubject("*", id)}
	if hasLegacySubject(id) {
		subjects = append(subjects, s.layout.LegacyAttemptSubject("*", id))
	}
	var decodeErr error
	err = scan{stream: stream, subjects: subjects}.run(ctx, func(msg jetstream.Msg) bool {
		// Records of the layout before buckets have no header.
		if other := msg.Headers().Get(emitter.EventIDHeader); other != "" && other != id {
			return true
		}
		var rec AttemptRecord
		if err := json.Unmarshal(msg.Data(), &rec); err != nil {
			decodeErr = fmt.Errorf("decoding the attempt record at sequence %d of stream %s: %w", sequence(msg), s.layout.AttemptsStream(), err)
			return false
		}
		if rec.EventID == id {
			attempts[rec.Destination] = append(attempts[rec.Destination], rec)
		}
		return true
	})
	if err == nil {
		err = decodeErr
	}
	return attempts, err
}
