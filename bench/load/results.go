package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// results are the measurements of one run, written as JSON with -json.
// Durations are in nanoseconds, memory in bytes.
type results struct {
	Machine     machineInfo       `json:"machine"`
	Connections int               `json:"connections"`
	Smoke       bool              `json:"smoke"`
	Compare     []phaseResult     `json:"compare,omitempty"`
	Latency     *latencyResult    `json:"latency,omitempty"`
	Drain       []drainResult     `json:"drain,omitempty"`
	Failing     []failingResult   `json:"failing,omitempty"`
	Memory      *memoryResult     `json:"memory,omitempty"`
	Profiles    map[string]string `json:"profiles,omitempty"`
}

type machineInfo struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`

	// GoMemLimit is the GOMEMLIMIT of the Caddy processes, if one was set.
	GoMemLimit string `json:"caddy_gomemlimit,omitempty"`
}

func newResults(opts options) *results {
	return &results{Connections: opts.connections, Smoke: opts.smoke, Profiles: make(map[string]string)}
}

func (r *results) write(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing results to %s: %w", path, err)
	}
	return nil
}

// median returns the median of values, or 0 for none.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	mid := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[mid]
	}
	return (sorted[mid-1] + sorted[mid]) / 2
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// mib formats a byte count in MiB with one decimal.
func mib(bytes int64) string {
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}
