package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve the JSON API when the harness starts
// it as its API process, as the harness binary does.
func TestMain(m *testing.M) {
	if os.Getenv(apiRoleEnv) != "" {
		if err := serveAPI(); err != nil {
			os.Stderr.WriteString("serving the JSON API: " + err.Error() + "\n")
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

func TestSmokeDeliversEveryEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Caddy processes")
	}
	opts := smokeOptions()
	opts.raceCaddy = raceEnabled
	var report bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	err := run(ctx, opts, &report)
	t.Logf("report:\n%s", report.String())
	if err != nil {
		t.Fatalf("smoke run failed: %v", err)
	}
	for _, want := range []string{"== compare", "== latency", "== drain", "== failing", "== rss", "end to end"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report has no %q", want)
		}
	}
	if strings.Contains(report.String(), "FAILED") {
		t.Error("report lists a failed scenario")
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, o options)
	}{
		{name: "defaults", args: nil, check: func(t *testing.T, o options) {
			if o.smoke || o.rounds != 5 || o.drainEvents != 100_000 || o.pendingEvents != 1_000_000 {
				t.Errorf("defaults = smoke %v, rounds %d, drain events %d, pending events %d", o.smoke, o.rounds, o.drainEvents, o.pendingEvents)
			}
			if strings.Join(o.scenarios, ",") != "compare,latency,drain,failing,rss" {
				t.Errorf("default scenarios = %v, want all but profile", o.scenarios)
			}
		}},
		{name: "smoke with an override", args: []string{"-smoke", "-rounds", "2"}, check: func(t *testing.T, o options) {
			if !o.smoke || o.rounds != 2 || o.drainEvents != smokeOptions().drainEvents {
				t.Errorf("smoke options = smoke %v, rounds %d, drain events %d", o.smoke, o.rounds, o.drainEvents)
			}
		}},
		{name: "scenario list", args: []string{"-scenarios", "drain, profile", "-drain-concurrency", "4,8"}, check: func(t *testing.T, o options) {
			if strings.Join(o.scenarios, ",") != "drain,profile" {
				t.Errorf("scenarios = %v, want drain and profile", o.scenarios)
			}
			if len(o.drainConcurrency) != 2 || o.drainConcurrency[0] != 4 || o.drainConcurrency[1] != 8 {
				t.Errorf("drain concurrency = %v, want [4 8]", o.drainConcurrency)
			}
		}},
		{name: "unknown scenario", args: []string{"-scenarios", "speed"}, wantErr: true},
		{name: "concurrency above the endpoint maximum", args: []string{"-drain-concurrency", "1,300"}, wantErr: true},
		{name: "concurrency not a number", args: []string{"-drain-concurrency", "many"}, wantErr: true},
		{name: "memory limit", args: []string{"-gomemlimit", "150MiB"}, check: func(t *testing.T, o options) {
			if o.goMemLimit != "150MiB" {
				t.Errorf("goMemLimit = %q, want 150MiB", o.goMemLimit)
			}
		}},
		{name: "memory limit with a decimal unit", args: []string{"-gomemlimit", "150MB"}, wantErr: true},
		{name: "zero connections", args: []string{"-connections", "0"}, wantErr: true},
		{name: "stray argument", args: []string{"compare"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseFlags(%q) returned no error", tt.args)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			}
			tt.check(t, o)
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		values []float64
		want   float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.values); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.values, got, tt.want)
		}
	}
}
