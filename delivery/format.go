package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Body formats of an endpoint.
const (
	// FormatStandard sends the stored event payload byte for byte as
	// application/json.
	FormatStandard = "standard"

	// FormatCloudEvents sends a CloudEvents 1.0 event in structured JSON
	// mode (application/cloudevents+json) that wraps the data of the
	// stored envelope.
	FormatCloudEvents = "cloudevents"
)

// Content types of the request bodies.
const (
	contentTypeJSON        = "application/json"
	contentTypeCloudEvents = "application/cloudevents+json"
)

// cloudEventsSourceWithoutHost is the source of an event whose payload
// names no request host, such as one from an HTTP/1.0 request without a
// Host header. CloudEvents 1.0 requires a non-empty URI reference, and "/"
// is the shortest one.
const cloudEventsSourceWithoutHost = "/"

// validateFormat checks Format, which may be empty for the default, and
// Text, which only chat formats use.
func (e *Endpoint) validateFormat() error {
	switch {
	case e.Format == "" || e.Format == FormatStandard || e.Format == FormatCloudEvents:
		if e.Text != "" {
			return fmt.Errorf("text is set, but format %q sends the event payload: remove text, or use a chat format (%s)", e.formatName(), chatFormatList())
		}
	case isChatFormat(e.Format):
		if e.Email != nil {
			return fmt.Errorf("format %q does not apply to e-mail: remove it", e.Format)
		}
		if e.Text != "" {
			if _, err := parseStoredTemplate(e.Text); err != nil {
				return fmt.Errorf("text: %w", err)
			}
		}
	default:
		return fmt.Errorf("invalid format %q: use %s, %s or a chat format (%s)", e.Format, FormatStandard, FormatCloudEvents, chatFormatList())
	}
	if e.Email != nil && e.Format == FormatCloudEvents {
		return fmt.Errorf("format %q does not apply to e-mail: remove it", e.Format)
	}
	return nil
}

func (e *Endpoint) formatName() string {
	if e.Format == "" {
		return FormatStandard
	}
	return e.Format
}

// formatBody sets the body and content type that every attempt of ev sends.
// With FormatStandard it leaves them unset, so the stored payload is sent.
// An error means the stored payload cannot be sent in the format, and the
// event is dead-lettered.
func formatBody(e *Endpoint, ev *event) error {
	switch {
	case e.Format == FormatCloudEvents:
		body, err := encodeCloudEvent(ev.id, ev.eventType, ev.payload)
		if err != nil {
			return err
		}
		ev.body = body
		ev.contentType = contentTypeCloudEvents
	case isChatFormat(e.Format):
		body, contentType, err := renderChat(e, ev)
		if err != nil {
			return err
		}
		ev.body = body
		ev.contentType = contentType
	}
	return nil
}

// storedEnvelope is the part of the default envelope, as package payload
// builds it, that a CloudEvent needs. The pointers tell a missing field
// from an empty one.
type storedEnvelope struct {
	Type      *string         `json:"type"`
	Timestamp *string         `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// cloudEvent is a CloudEvents 1.0 event in structured JSON mode. The field
// order is fixed, so the same event always encodes to the same bytes.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// encodeCloudEvent builds the CloudEvent of a stored envelope. The source
// is a network-path reference to the host of the observed request, such as
// "//api.example.com" or "//api.example.com:8443", so receivers can tell
// the sites of one Caddy apart. The time is the envelope's timestamp, and
// the data is the envelope's data, compacted but otherwise unchanged.
func encodeCloudEvent(id, eventType string, stored []byte) ([]byte, error) {
	var env storedEnvelope
	if err := json.Unmarshal(stored, &env); err != nil {
		return nil, notEnvelopeError(fmt.Sprintf("parsing it failed: %v", err))
	}
	if env.Type == nil {
		return nil, notEnvelopeError(`it has no "type" string`)
	}
	if env.Timestamp == nil {
		return nil, notEnvelopeError(`it has no "timestamp" string`)
	}
	if _, err := time.Parse(time.RFC3339Nano, *env.Timestamp); err != nil {
		return nil, notEnvelopeError(fmt.Sprintf("its timestamp %q is not an RFC 3339 time", *env.Timestamp))
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return nil, notEnvelopeError(`it has no "data"`)
	}

	ce := cloudEvent{
		SpecVersion:     "1.0",
		ID:              id,
		Source:          cloudEventsSource(env.Data),
		Type:            eventType,
		Time:            *env.Timestamp,
		DataContentType: contentTypeJSON,
		Data:            env.Data,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ce); err != nil {
		return nil, fmt.Errorf("encoding CloudEvent: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func notEnvelopeError(reason string) error {
	return fmt.Errorf("stored payload is not an event envelope, because %s: only events published by the webhooks handler can be sent in format %s; use format %s for other payloads", reason, FormatCloudEvents, FormatStandard)
}

// cloudEventsSource returns the source attribute: the request host of the
// envelope's data as a network-path reference, escaped as in a URL so the
// result is a valid URI reference.
//
// TODO: the host is read from data, so a payload whose data does not keep
// request.host gets cloudEventsSourceWithoutHost. Storing the host next to
// the payload, for example in a message header, would keep the source.
func cloudEventsSource(data json.RawMessage) string {
	var fields struct {
		Request struct {
			Host string `json:"host"`
		} `json:"request"`
	}
	// Data that is not an object, or has no request host, has no source
	// of its own.
	if err := json.Unmarshal(data, &fields); err != nil || fields.Request.Host == "" {
		return cloudEventsSourceWithoutHost
	}
	return (&url.URL{Host: fields.Request.Host}).String()
}

// request returns the body that an attempt sends and its content type: the
// formatted body, or else the stored payload as application/json.
func (ev *event) request() (body []byte, contentType string) {
	if ev.body != nil {
		return ev.body, ev.contentType
	}
	return ev.payload, contentTypeJSON
}
