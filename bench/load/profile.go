package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/loadgen"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/receiver"
)

// profile records CPU profiles of Caddy through its admin API: of the
// request path under load on site B, of site C where requests and
// deliveries share the CPU, and of a backlog drain at concurrency 64. It
// prints the top functions of each with 'go tool pprof'.
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

	for _, s := range compareSites[1:] {
		path := filepath.Join(e.workDir, "profile-site-"+s.name+".pprof")
		if err := e.profileLoad(ctx, d, rc, s, path); err != nil {
			d.stop(e.out)
			return fmt.Errorf("site %s: %w", s.name, err)
		}
		e.results.Profiles["site_"+s.name] = path
		e.printTop(ctx, "CPU profile of site "+s.name, "-cum", path)
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
// side, and records the profile in between.
func (e *env) profileLoad(ctx context.Context, d *deployment, rc *receiver.Receiver, s site, path string) error {
	seconds := e.opts.profileSeconds
	profiled := make(chan error, 1)
	go func() {
		if err := sleepContext(ctx, time.Second); err != nil {
			profiled <- err
			return
		}
		profiled <- d.proc.CPUProfile(ctx, seconds, path)
	}()

	before, err := d.counters(ctx)
	if err != nil {
		return err
	}
	client := loadgen.NewClient(e.opts.connections)
	defer client.CloseIdleConnections()
	res, err := loadgen.ClosedLoop{
		Target:      loadgen.Target{Client: client, URL: s.url(d), Seq: &e.seq},
		Connections: e.opts.connections,
		Duration:    time.Duration(seconds+2) * time.Second,
	}.Run(ctx)
	if err != nil {
		return err
	}
	if err := <-profiled; err != nil {
		return err
	}
	fmt.Fprintf(e.out, "\nsite %s profiled for %ds at %.0f req/s: %s\n", s.name, seconds, res.Rate(), path)
	missing, _, err := e.settle(ctx, d, rc, s, res, before)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d of %d webhooks missing", len(missing), len(res.Succeeded))
	}
	return nil
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
