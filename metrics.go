package webhooks

import (
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-webhooks/caddy-webhooks/delivery"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// The collectors are created once per process and registered into the
// registry of every config that Caddy loads, so counts survive reloads.
var (
	eventsPublished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhooks",
		Name:      "events_published_total",
		Help:      "Events stored in JetStream, by event type.",
	}, []string{"event_type"})

	eventsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhooks",
		Name:      "events_dropped_total",
		Help:      "Events lost before JetStream stored them, by reason (queue_full, closed, publish_failed).",
	}, []string{"reason"})

	publishDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "webhooks",
		Name:      "publish_duration_seconds",
		Help:      "Time from the observed response to the JetStream acknowledgement.",
		Buckets:   prometheus.ExponentialBuckets(0.0001, 4, 9),
	})

	deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhooks",
		Name:      "deliveries_total",
		Help:      "Delivery attempts, by destination and outcome (success, retry, dead_letter, disabled).",
	}, []string{"destination", "outcome"})

	deliveryDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "webhooks",
		Name:      "delivery_duration_seconds",
		Help:      "Duration of delivery attempts, by destination.",
		Buckets:   prometheus.ExponentialBuckets(0.001, 4, 9),
	}, []string{"destination"})

	deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhooks",
		Name:      "dead_letters_total",
		Help:      "Events dead-lettered after their last attempt, by destination.",
	}, []string{"destination"})
)

// Every drop reason starts at zero, so that dashboards and alerts see the
// series before the first drop.
func init() {
	for _, reason := range []string{emitter.DropQueueFull, emitter.DropClosed, emitter.DropPublishFailed} {
		eventsDropped.WithLabelValues(reason)
	}
}

var publisherHooks = emitter.Hooks{
	Published: func(ev *emitter.Event, latency time.Duration) {
		eventsPublished.WithLabelValues(ev.Type).Inc()
		publishDuration.Observe(latency.Seconds())
	},
	Dropped: func(_ *emitter.Event, reason string) {
		eventsDropped.WithLabelValues(reason).Inc()
		droppedSinceReport.Add(1)
	},
}

var deliveryHooks = delivery.Hooks{
	Attempted: func(destination, outcome string, latency time.Duration) {
		deliveries.WithLabelValues(destination, outcome).Inc()
		deliveryDuration.WithLabelValues(destination).Observe(latency.Seconds())
	},
	DeadLettered: func(dead *delivery.DeadLetter) {
		deadLetters.WithLabelValues(dead.Destination).Inc()
	},
}

var metricsWarnOnce sync.Once

// registerMetrics adds the collectors to the registry of the config being
// loaded. A failure only disables the metrics of that config.
func registerMetrics(ctx caddy.Context, logger *zap.Logger) {
	registry := ctx.GetMetricsRegistry()
	if registry == nil {
		return
	}
	collectors := []prometheus.Collector{
		eventsPublished, eventsDropped, publishDuration,
		deliveries, deliveryDuration, deadLetters,
	}
	for _, c := range collectors {
		err := registry.Register(c)
		var already prometheus.AlreadyRegisteredError
		if err != nil && !errors.As(err, &already) {
			metricsWarnOnce.Do(func() {
				logger.Warn("webhooks metrics are not available", zap.Error(err))
			})
			return
		}
	}
}
