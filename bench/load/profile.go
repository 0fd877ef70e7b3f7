package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/loadgen"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/receiver"
)

// profile records CPU profiles of Caddy through its admin API under load
// on each site and during a backlog drain at concurrency 64. Site A, plain
// reverse_proxy, is the baseline. Site B shows the request path, and site C
// requests and deliveries sharing the CPU. It prints the top functions of
// each profile with 'go tool pprof'. For sites B and C it also prints the
// functions whose CPU time per request grew most over site A's.
func (e *env) profile(ctx context.Context) error {
	rc, err := receiver.Start()
	if err != nil {
		return err
	}
	defer rc.Close()
	d, err := e.deploy(ctx, "profile", []endpointSpec{{name: "main", receiver: rc, concurrency: 64, timeout: 15 * time.Second}})
	if err != nil {
		return err
	}

	var baseline siteProfile
	for i, s := range compareSites {
		path := filepath.Join(e.workDir, "profile-site-"+s.name+".pprof")
		rate, err := e.profileLoad(ctx, d, rc, s, path)
		if err != nil {
			d.stop(e.out)
			return fmt.Errorf("site %s: %w", s.name, err)
		}
		allocsPath := strings.TrimSuffix(path, ".pprof") + "-allocs.pprof"
		e.results.Profiles["site_"+s.name] = path
		e.results.Profiles["site_"+s.name+"_allocs"] = allocsPath
		e.printTop(ctx, "CPU profile of site "+s.name, "-cum", path)
		e.printTop(ctx, "Bytes allocated on site "+s.name, "-sample_index=alloc_space", allocsPath)

		sp := siteProfile{name: s.name, path: path, requests: rate * float64(e.opts.profileSeconds)}
		if i == 0 {
			baseline = sp
			continue
		}
		e.printPerRequestGrowth(ctx, baseline, sp)
	}
	d.stop(e.out)

	path := filepath.Join(e.workDir, "profile-drain-64.pprof")
	res, missing, err := e.drainOnce(ctx, 64, path)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	fmt.Fprintf(e.out, "drain while profiling: %d of %d delivered at %.0f deliveries/s\n", res.Delivered, res.Stored, res.Rate)
	e.results.Profiles["drain_64"] = path
	e.printTop(ctx, "CPU profile of the drain", "-cum", path)
	if missing > 0 {
		return fmt.Errorf("%d events not delivered", missing)
	}
	return nil
}

// profileLoad loads a site for a second more than the profile on either
// side, and records a CPU profile at path and a profile of the allocations
// next to it in between. It returns the request rate.
func (e *env) profileLoad(ctx context.Context, d *deployment, rc *receiver.Receiver, s site, path string) (float64, error) {
	seconds := e.opts.profileSeconds
	allocsPath := strings.TrimSuffix(path, ".pprof") + "-allocs.pprof"
	profiled := make(chan error, 2)
	for _, record := range []func() error{
		func() error { return d.proc.CPUProfile(ctx, seconds, path) },
		func() error { return d.proc.AllocsProfile(ctx, seconds, allocsPath) },
	} {
		go func() {
			if err := sleepContext(ctx, time.Second); err != nil {
				profiled <- err
				return
			}
			profiled <- record()
		}()
	}

	before, err := d.counters(ctx)
	if err != nil {
		return 0, err
	}
	client := loadgen.NewClient(e.opts.connections)
	defer client.CloseIdleConnections()
	res, err := loadgen.ClosedLoop{
		Target:      loadgen.Target{Client: client, URL: s.url(d), Seq: &e.seq},
		Connections: e.opts.connections,
		Duration:    time.Duration(seconds+2) * time.Second,
	}.Run(ctx)
	if err != nil {
		return 0, err
	}
	if err := errors.Join(<-profiled, <-profiled); err != nil {
		return 0, err
	}
	fmt.Fprintf(e.out, "\nsite %s profiled for %ds at %.0f req/s: %s\n", s.name, seconds, res.Rate(), path)
	missing, _, err := e.settle(ctx, d, rc, s, res, before)
	if err != nil {
		return 0, err
	}
	if len(missing) > 0 {
		return 0, fmt.Errorf("%d of %d webhooks missing", len(missing), len(res.Succeeded))
	}
	return res.Rate(), nil
}

// printTop prints the 40 largest entries of a profile with 'go tool pprof
// -top' and the given option, such as -cum to count the time of the
// functions that each calls.
func (e *env) printTop(ctx context.Context, title, option, path string) {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", option, "-nodecount=40", e.binary, path).CombinedOutput()
	if err != nil {
		fmt.Fprintf(e.out, "warning: go tool pprof %s: %v\n%s", path, err, out)
		return
	}
	fmt.Fprintf(e.out, "\n%s (%s):\n%s\n", title, path, out)
}

// siteProfile is a CPU profile of a site under load and the number of
// requests served while it was recorded, estimated from the load's rate.
type siteProfile struct {
	name     string
	path     string
	requests float64
}

// printPerRequestGrowth prints the functions whose cumulative CPU time per
// request grew most from the baseline profile to p, in microseconds. A
// function's cumulative time includes the functions it calls, so the lines
// overlap. The largest entries show where the extra time of p's site goes.
func (e *env) printPerRequestGrowth(ctx context.Context, baseline, p siteProfile) {
	base, err := e.cumulativeTimes(ctx, baseline.path)
	if err == nil {
		var cur map[string]time.Duration
		if cur, err = e.cumulativeTimes(ctx, p.path); err == nil {
			printGrowth(e.out, baseline, p, base, cur)
			return
		}
	}
	fmt.Fprintf(e.out, "warning: comparing the profiles of sites %s and %s: %v\n", baseline.name, p.name, err)
}

func printGrowth(out io.Writer, baseline, p siteProfile, base, cur map[string]time.Duration) {
	perRequest := func(d time.Duration, requests float64) float64 {
		return float64(d.Microseconds()) / requests
	}
	type growth struct {
		name     string
		from, to float64
	}
	var rows []growth
	for name, d := range cur {
		rows = append(rows, growth{name, perRequest(base[name], baseline.requests), perRequest(d, p.requests)})
	}
	slices.SortFunc(rows, func(a, b growth) int { return cmp.Compare(b.to-b.from, a.to-a.from) })

	fmt.Fprintf(out, "\nCPU µs per request that grew most from site %s (about %.0f requests profiled) to site %s (about %.0f), cumulative:\n",
		baseline.name, baseline.requests, p.name, p.requests)
	fmt.Fprintf(out, "%8s %8s %8s  %s\n", "growth", baseline.name, p.name, "function")
	for _, r := range rows[:min(len(rows), 30)] {
		fmt.Fprintf(out, "%8.1f %8.1f %8.1f  %s\n", r.to-r.from, r.from, r.to, r.name)
	}
}

// cumulativeTimes reads the cumulative CPU time of every function in a
// profile from 'go tool pprof -top -cum'.
func (e *env) cumulativeTimes(ctx context.Context, path string) (map[string]time.Duration, error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", "-nodefraction=0", e.binary, path).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof %s: %w", path, err)
	}
	return parseTopCum(out), nil
}

// parseTopCum parses the rows of 'go tool pprof -top' output, such as
//
//	0.01s 0.069%  0.62%      4.96s 34.14%  net/http.(*conn).serve
//
// into the cumulative time (the fourth column) per function. Other lines
// are skipped.
func parseTopCum(out []byte) map[string]time.Duration {
	times := make(map[string]time.Duration)
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) < 6 || !strings.HasSuffix(fields[1], "%") || !strings.HasSuffix(fields[4], "%") {
			continue
		}
		cum, err := time.ParseDuration(fields[3])
		if err != nil {
			continue
		}
		times[strings.Join(fields[5:], " ")] = cum
	}
	return times
}
