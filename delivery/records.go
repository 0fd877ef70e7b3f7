package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// Outcomes of an attempt, as stored in the attempt log and passed to
// Hooks.Attempted.
const (
	OutcomeSuccess    = "success"
	OutcomeRetry      = "retry"
	OutcomeDeadLetter = "dead_letter"
	OutcomeDisabled   = "disabled"
)

// TimeFormat is the layout of the times in attempt records and dead letters:
// RFC 3339 in UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// publishTimeout bounds the wait for JetStream to store a record.
const publishTimeout = 5 * time.Second

// AttemptRecord is the JSON message stored in the attempts stream for every
// attempt, on the subject "webhooks.attempts.<destination>.<bucket>" (see
// emitter.AttemptBucket), with the event id and the outcome in the headers
// Webhooks-Event-Id and Webhooks-Outcome.
// StreamSequence is the sequence of the delivered message in the events
// stream, which differs from the event's own for a copy made by redeliver
// or replay, whose attempts count from 1 again.
type AttemptRecord struct {
	EventID        string `json:"event_id"`
	EventType      string `json:"event_type"`
	Destination    string `json:"destination"`
	StreamSequence uint64 `json:"stream_sequence"`

	Attempt     int     `json:"attempt"`
	Time        string  `json:"time"`
	Outcome     string  `json:"outcome"`
	StatusCode  int     `json:"status_code"`
	ErrorClass  string  `json:"error_class"`
	Error       string  `json:"error"`
	DurationMS  float64 `json:"duration_ms"`
	Response    string  `json:"response"`
	NextAttempt string  `json:"next_attempt,omitempty"`
}

// DeadLetter is the JSON message stored in the dead-letter stream on the
// subject "webhooks.dead.<destination>" when an event's last attempt failed.
type DeadLetter struct {
	EventID        string `json:"event_id"`
	EventType      string `json:"event_type"`
	Destination    string `json:"destination"`
	StreamSequence uint64 `json:"stream_sequence"`
	Attempts       int    `json:"attempts"`
	StatusCode     int    `json:"status_code"`
	ErrorClass     string `json:"error_class"`
	Error          string `json:"error"`
	Time           string `json:"time"`

	// Payload is the event's payload when encoding/json writes it back
	// byte for byte as a json.RawMessage. PayloadBase64 contains any other
	// payload, so that a replay sends the original bytes either way.
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
}

func formatTime(t time.Time) string {
	return t.UTC().Format(TimeFormat)
}

func newAttemptRecord(destination string, ev *event, res *attemptResult, outcome string, next time.Time) AttemptRecord {
	rec := AttemptRecord{
		EventID:        ev.id,
		EventType:      ev.eventType,
		Destination:    destination,
		StreamSequence: ev.streamSequence,
		Attempt:        ev.attempt,
		Time:           formatTime(res.start),
		Outcome:        outcome,
		StatusCode:     res.statusCode,
		ErrorClass:     res.errorClass,
		DurationMS:     float64(res.duration.Microseconds()) / 1000,
		Response:       string(res.response),
	}
	if res.err != nil {
		rec.Error = res.err.Error()
	}
	if !next.IsZero() {
		rec.NextAttempt = formatTime(next)
	}
	return rec
}

func newDeadLetter(destination string, ev *event, res *attemptResult, now time.Time) DeadLetter {
	dead := DeadLetter{
		EventID:        ev.id,
		EventType:      ev.eventType,
		Destination:    destination,
		StreamSequence: ev.streamSequence,
		Attempts:       ev.attempt,
		StatusCode:     res.statusCode,
		ErrorClass:     res.errorClass,
		Time:           formatTime(now),
	}
	if res.err != nil {
		dead.Error = res.err.Error()
	}
	if encodesUnchanged(ev.payload) {
		dead.Payload = ev.payload
	} else {
		dead.PayloadBase64 = ev.payload
	}
	return dead
}

// PayloadBytes returns the payload of the dead-lettered event byte for byte.
func (d *DeadLetter) PayloadBytes() []byte {
	if d.PayloadBase64 != nil {
		return d.PayloadBase64
	}
	return d.Payload
}

// encodesUnchanged reports whether json.Marshal writes payload as a
// json.RawMessage byte for byte. It compacts the JSON and escapes '<', '>'
// and '&', so other payloads would change.
func encodesUnchanged(payload []byte) bool {
	if !json.Valid(payload) {
		return false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, payload); err != nil || !bytes.Equal(buf.Bytes(), payload) {
		return false
	}
	buf.Reset()
	json.HTMLEscape(&buf, payload)
	return bytes.Equal(buf.Bytes(), payload)
}

// attemptMsg builds the message that stores rec in the attempts stream.
// The message id makes a repeated write of the same attempt a no-op. It
// includes the stream sequence, so the attempts of a copy of the event are
// stored too.
func attemptMsg(layout emitter.Layout, rec AttemptRecord) (*nats.Msg, error) {
	subject := layout.AttemptSubject(rec.Destination, rec.EventID)
	msgID := rec.Destination + "." + rec.EventID + "." + strconv.FormatUint(rec.StreamSequence, 10) + "." + strconv.Itoa(rec.Attempt)
	msg, err := jsonMsg(subject, msgID, rec)
	if err != nil {
		return nil, err
	}
	msg.Header.Set(emitter.EventIDHeader, rec.EventID)
	msg.Header.Set(outcomeHeader, rec.Outcome)
	return msg, nil
}

// outcomeHeader carries the outcome of an attempt record, so that the
// outcomes of events can be read without the records' data.
const outcomeHeader = "Webhooks-Outcome"

// publishDeadLetter stores dead in the dead-letter stream, once per
// destination and stored message, so a replayed copy that fails again gets
// its own dead letter.
func publishDeadLetter(ctx context.Context, js jetstream.JetStream, layout emitter.Layout, dead DeadLetter) error {
	subject := layout.DeadSubject(dead.Destination)
	msgID := dead.Destination + "." + dead.EventID + "." + strconv.FormatUint(dead.StreamSequence, 10)
	msg, err := jsonMsg(subject, msgID, dead)
	if err != nil {
		return err
	}

	// Records are written even while the workers stop, so the caller's
	// cancellation is ignored and only publishTimeout applies.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publishing to %s: %w", subject, err)
	}
	return nil
}

func jsonMsg(subject, msgID string, v any) (*nats.Msg, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding record for %s: %w", subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	msg.Data = data
	return msg, nil
}
