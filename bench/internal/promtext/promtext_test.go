package promtext

import "testing"

const exposition = `# HELP caddy_webhooks_events_dropped_total Events lost before JetStream stored them.
# TYPE caddy_webhooks_events_dropped_total counter
caddy_webhooks_events_dropped_total{reason="closed"} 0
caddy_webhooks_events_dropped_total{reason="queue_full"} 3
caddy_webhooks_events_dropped_total{reason="publish_failed"} 1
# TYPE caddy_webhooks_events_published_total counter
caddy_webhooks_events_published_total{event_type="bench.stored"} 1500
caddy_webhooks_events_published_total{event_type="bench.delivered"} 2.5e+06
caddy_webhooks_deliveries_total{destination="main",outcome="success"} 42 1796423016000
caddy_webhooks_deliveries_total{destination="main",outcome="retry"} 7
caddy_webhooks_deliveries_total{destination="odd \"name\", with comma",outcome="success"} 5
process_open_fds 12
`

func TestSum(t *testing.T) {
	tests := []struct {
		name   string
		metric string
		match  map[string]string
		want   float64
	}{
		{"all samples", "caddy_webhooks_events_dropped_total", nil, 4},
		{"one label value", "caddy_webhooks_events_published_total", map[string]string{"event_type": "bench.stored"}, 1500},
		{"exponent notation", "caddy_webhooks_events_published_total", map[string]string{"event_type": "bench.delivered"}, 2.5e6},
		{"two labels with a timestamp", "caddy_webhooks_deliveries_total", map[string]string{"destination": "main", "outcome": "success"}, 42},
		{"escaped label value", "caddy_webhooks_deliveries_total", map[string]string{"destination": `odd "name", with comma`}, 5},
		{"no labels", "process_open_fds", nil, 12},
		{"metric absent", "caddy_webhooks_dead_letters_total", nil, 0},
		{"prefix of another metric", "caddy_webhooks_events", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sum([]byte(exposition), tt.metric, tt.match)
			if err != nil {
				t.Fatalf("Sum: %v", err)
			}
			if got != tt.want {
				t.Errorf("Sum(%s, %v) = %v, want %v", tt.metric, tt.match, got, tt.want)
			}
		})
	}
}

func TestSumRejectsInvalidSample(t *testing.T) {
	tests := []string{
		`caddy_metric{reason="closed} 1`,
		`caddy_metric{reason=closed} 1`,
		`caddy_metric{reason="closed"} one`,
		`caddy_metric`,
	}
	for _, text := range tests {
		if got, err := Sum([]byte(text), "caddy_metric", nil); err == nil {
			t.Errorf("Sum(%q) = %v, want an error", text, got)
		}
	}
}
