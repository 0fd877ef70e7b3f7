package delivery

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collectTimeout bounds the JetStream requests of one scrape.
const collectTimeout = 2 * time.Second

// StatusCollector exports the stored status of the endpoints as Prometheus
// gauges, read from JetStream at every scrape: the events pending per
// destination, the dead letters stored per destination and the state of
// each destination. A gauge that cannot be read within two seconds is left
// out of that scrape.
type StatusCollector struct {
	// source returns the store and the endpoint names of the running
	// config, or a nil store when none runs.
	source func() (*Store, []string)

	pending     *prometheus.Desc
	deadLetters *prometheus.Desc
	state       *prometheus.Desc
}

// NewStatusCollector returns a collector that reads the endpoints that
// source returns at each scrape.
func NewStatusCollector(source func() (*Store, []string)) *StatusCollector {
	return &StatusCollector{
		source: source,
		pending: prometheus.NewDesc("caddy_webhooks_destination_pending",
			"Events waiting for a destination, including those waiting for a retry and those in flight.",
			[]string{"destination"}, nil),
		deadLetters: prometheus.NewDesc("caddy_webhooks_dead_letters_stored",
			"Dead letters stored for a destination until they are replayed or purged.",
			[]string{"destination"}, nil),
		state: prometheus.NewDesc("caddy_webhooks_destination_state",
			"State of a destination: 1 for its current state (enabled, paused or disabled), 0 for the others.",
			[]string{"destination", "state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StatusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.deadLetters
	ch <- c.state
}

// Collect implements prometheus.Collector.
func (c *StatusCollector) Collect(ch chan<- prometheus.Metric) {
	store, names := c.source()
	if store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()

	if counts, err := store.DeadLetterCounts(ctx); err == nil {
		for _, name := range names {
			ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.GaugeValue, float64(counts[name]), name)
		}
	}
	for _, name := range names {
		if pending, err := store.Pending(ctx, name); err == nil {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(pending), name)
		}
		state, err := ReadState(ctx, store.kv, name)
		if err != nil {
			continue
		}
		for _, s := range []string{StateEnabled, StatePaused, StateDisabled} {
			value := 0.0
			if state.State == s || s == StateEnabled && state.delivers() {
				value = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, value, name, s)
		}
	}
}
