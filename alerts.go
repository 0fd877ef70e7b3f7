package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/alerts"
	"github.com/caddy-webhooks/caddy-webhooks/delivery"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
	"github.com/caddy-webhooks/caddy-webhooks/payload"
)

// Event types of the happenings that the app publishes itself. Any
// destination can subscribe to them.
const (
	EventEndpointDisabled = "webhooks.endpoint.disabled"
	EventDeadLettered     = "webhooks.event.dead_lettered"
	EventEmitterDropped   = "webhooks.emitter.dropped"
)

// Event types of alerts, which carry a ready subject and text for people.
// The alerts destinations subscribe to all of them.
const (
	alertPrefix              = "webhooks.alert."
	AlertEndpointDisabled    = alertPrefix + "endpoint_disabled"
	AlertDeadLetters         = alertPrefix + "dead_letters"
	AlertEventsDropped       = alertPrefix + "events_dropped"
	alertSubscriptionPattern = alertPrefix + ">"
)

// ownEventDescriptions describe the event types of the app itself in the
// event catalogue.
var ownEventDescriptions = map[string]string{
	EventEndpointDisabled: "The webhooks app disabled a destination, after a 410 Gone or no success for its disable_after",
	EventDeadLettered:     "A destination dead-lettered an event after its last attempt",
	EventEmitterDropped:   "Events were dropped before JetStream stored them, counted per alerts interval",
	AlertEndpointDisabled: "Alert for people: a destination was disabled",
	AlertDeadLetters:      "Alert for people: one digest per destination and interval of dead-lettered events",
	AlertEventsDropped:    "Alert for people: events were dropped before JetStream stored them",
}

// alertsEmailName is the name of the destination that sends the alert
// e-mails.
const alertsEmailName = "alerts_email"

// droppedSinceReport counts the events that the publisher dropped since
// the last report. The publisher is shared by the configs of one store,
// so the count is process-wide, and whichever running app reports first
// takes it.
var droppedSinceReport atomic.Int64

// provisionAlerts adds the destination that sends alert e-mails and
// subscribes the alerts' chat destinations to the alert events.
func (a *App) provisionAlerts() error {
	if a.Alerts == nil {
		return nil
	}
	for _, name := range a.Alerts.Notify {
		ep := a.configuredEndpoint(name)
		if ep == nil {
			return fmt.Errorf("alerts: notify %q is not a configured destination: add 'notify %s <format> <url>', or remove it from alerts", name, name)
		}
		if ep.Kind() != "notify" {
			return fmt.Errorf("alerts: destination %q is a %s destination: alerts notify takes chat destinations (notify <name> <format> <url>)", name, ep.Kind())
		}
		if !ep.Subscribes(AlertDeadLetters) {
			ep.Events = append(ep.Events, alertSubscriptionPattern)
		}
	}

	if len(a.Alerts.Email) == 0 {
		return nil
	}
	if a.configuredEndpoint(alertsEmailName) != nil {
		return fmt.Errorf("destination name %q is used for the alerts e-mail: rename that destination", alertsEmailName)
	}
	if a.SMTP == nil {
		return fmt.Errorf("alerts: e-mail alerts to %s need an SMTP server: configure one with the smtp global option", strings.Join(a.Alerts.Email, ", "))
	}
	a.Endpoints = append(a.Endpoints, &delivery.Endpoint{
		Name:        alertsEmailName,
		Events:      []string{alertSubscriptionPattern},
		Concurrency: 1,
		Email: &delivery.Email{
			To:      a.Alerts.Email,
			Subject: "{webhook.data.subject}",
			Body:    "{webhook.data.text}\n",
		},
	})
	return nil
}

// configuredEndpoint returns the destination with the name, or nil.
func (a *App) configuredEndpoint(name string) *delivery.Endpoint {
	for _, ep := range a.Endpoints {
		if ep != nil && ep.Name == name {
			return ep
		}
	}
	return nil
}

// alerter publishes the app's own events and alerts while the app runs.
type alerter struct {
	app       *App
	digests   *alerts.Collector // nil without alerts
	interval  time.Duration
	cancel    context.CancelFunc
	reporting chan struct{}
}

// startAlerter starts collecting dead letters and reporting dropped
// events.
func (a *App) startAlerter() *alerter {
	al := &alerter{app: a, interval: alerts.DefaultInterval}
	if a.Alerts != nil {
		if a.Alerts.Interval > 0 {
			al.interval = time.Duration(a.Alerts.Interval)
		}
		al.digests = alerts.NewCollector(al.interval, al.sendDigest)
	}
	ctx, cancel := context.WithCancel(context.Background())
	al.cancel = cancel
	al.reporting = make(chan struct{})
	go al.reportDrops(ctx)
	return al
}

// stop ends the drop reports and sends the digests collected so far.
func (al *alerter) stop() {
	al.cancel()
	<-al.reporting
	if al.digests != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		al.digests.Close(ctx)
	}
}

// hooks returns the delivery hooks: the metrics, plus the events and
// alerts of disabled endpoints and dead letters.
func (al *alerter) hooks() delivery.Hooks {
	hooks := deliveryHooks
	hooks.Disabled = al.endpointDisabled
	hooks.DeadLettered = func(dead *delivery.DeadLetter) {
		deliveryHooks.DeadLettered(dead)
		al.deadLettered(dead)
	}
	return hooks
}

func (al *alerter) endpointDisabled(destination, reason string) {
	al.app.emitOwn(EventEndpointDisabled, map[string]any{"destination": destination, "reason": reason})
	if al.app.Alerts == nil {
		return
	}
	al.app.emitOwn(AlertEndpointDisabled, map[string]any{
		"destination": destination,
		"reason":      reason,
		"subject":     fmt.Sprintf("Webhook destination %s disabled", destination),
		"text": fmt.Sprintf("Destination %s was disabled: %s.\nIts events are kept and are delivered after it is enabled again (POST /webhooks/destinations/%s/enable on the admin API, or caddy webhooks enable %s).",
			destination, reason, destination, destination),
	})
}

// deadLettered publishes the dead letter as an event and adds it to the
// destination's digest. Dead letters of the app's own events raise
// neither, so a failing alerts destination cannot feed itself.
func (al *alerter) deadLettered(dead *delivery.DeadLetter) {
	if strings.HasPrefix(dead.EventType, "webhooks.") {
		return
	}
	al.app.emitOwn(EventDeadLettered, map[string]any{
		"destination": dead.Destination,
		"event_id":    dead.EventID,
		"event_type":  dead.EventType,
		"attempts":    dead.Attempts,
		"status_code": dead.StatusCode,
		"error_class": dead.ErrorClass,
	})
	if al.digests != nil {
		al.digests.Add(alerts.DeadLetter{
			Destination: dead.Destination,
			EventID:     dead.EventID,
			EventType:   dead.EventType,
			Reason:      deadLetterReason(dead),
			Time:        time.Now(),
		})
	}
}

func deadLetterReason(dead *delivery.DeadLetter) string {
	if dead.StatusCode != 0 {
		return fmt.Sprintf("%s (status %d)", dead.ErrorClass, dead.StatusCode)
	}
	return dead.ErrorClass
}

// sendDigest publishes one alert for the dead letters of a destination.
func (al *alerter) sendDigest(d alerts.Digest) {
	more := ""
	if d.Count > len(d.EventIDs) {
		more = fmt.Sprintf(" (the first %d listed)", len(d.EventIDs))
	}
	text := fmt.Sprintf("Destination %s dead-lettered %d event(s) between %s and %s%s: %s.\nLast failure: %s.\nList them with GET /webhooks/dead?destination=%s, and replay them with POST /webhooks/destinations/%s/replay (caddy webhooks replay %s --dead).",
		d.Destination, d.Count, d.First.UTC().Format(time.RFC3339), d.Last.UTC().Format(time.RFC3339), more,
		strings.Join(d.EventIDs, ", "), d.LastReason, d.Destination, d.Destination, d.Destination)
	al.app.emitOwn(AlertDeadLetters, map[string]any{
		"destination": d.Destination,
		"count":       d.Count,
		"event_ids":   d.EventIDs,
		"event_types": d.EventTypes,
		"first":       d.First.UTC().Format(payload.TimestampLayout),
		"last":        d.Last.UTC().Format(payload.TimestampLayout),
		"subject":     fmt.Sprintf("Webhook destination %s dead-lettered %d event(s)", d.Destination, d.Count),
		"text":        text,
	})
}

// reportDrops publishes, once per interval with drops, how many events the
// publisher dropped. The report goes through the same publisher, so it is
// lost too while the publisher cannot take events, and the next one counts
// on.
func (al *alerter) reportDrops(ctx context.Context) {
	defer close(al.reporting)
	ticker := time.NewTicker(al.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		dropped := droppedSinceReport.Swap(0)
		if dropped == 0 {
			continue
		}
		al.app.emitOwn(EventEmitterDropped, map[string]any{"dropped": dropped, "interval_seconds": al.interval.Seconds()})
		if al.app.Alerts != nil {
			al.app.emitOwn(AlertEventsDropped, map[string]any{
				"dropped": dropped,
				"subject": fmt.Sprintf("Webhooks dropped %d event(s)", dropped),
				"text": fmt.Sprintf("%d event(s) were dropped before JetStream stored them in the last %s. The reasons are counted in caddy_webhooks_events_dropped_total and logged by the webhooks app.",
					dropped, al.interval),
			})
		}
	}
}

// emitOwn publishes an event of the app itself, in the envelope shape of
// the handler's events.
func (a *App) emitOwn(eventType string, data map[string]any) {
	now := time.Now()
	body, err := json.Marshal(map[string]any{
		"type":      eventType,
		"timestamp": now.UTC().Format(payload.TimestampLayout),
		"data":      data,
	})
	if err != nil {
		a.logger.Error("building the app's own event failed", zap.String("event_type", eventType), zap.Error(err))
		return
	}
	a.Emit(&emitter.Event{ID: ulid.Make().String(), Type: eventType, Payload: body, Observed: now})
}
