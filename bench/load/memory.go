package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/loadgen"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/procstat"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/receiver"
)

// memoryResult holds Caddy's resident memory at the moments of the rss
// scenario.
type memoryResult struct {
	Idle          int64 `json:"idle"`
	LoadMax       int64 `json:"under_load_max"`
	AfterLoad     int64 `json:"after_load"`
	PendingEvents int   `json:"pending_events"`
	Pending       int64 `json:"with_pending"`

	// PendingLater is read -pending-wait after the fill, once JetStream
	// has forgotten the message ids of the fill.
	PendingLater int64         `json:"with_pending_later,omitempty"`
	PendingWait  time.Duration `json:"pending_wait,omitempty"`
	Peak         int64         `json:"peak"`
	FillRate     float64       `json:"fill_events_per_second"`
}

// rss reads Caddy's resident memory when idle, under load on site C, and
// with a backlog of pending events that the held receiver does not take.
func (e *env) rss(ctx context.Context) error {
	rc, err := receiver.Start()
	if err != nil {
		return err
	}
	defer rc.Close()
	d, err := e.deploy(ctx, "rss", []endpointSpec{{name: "main", receiver: rc, concurrency: 64, timeout: heldTimeout}})
	if err != nil {
		return err
	}
	defer d.stop(e.out)
	pid := d.proc.Pid
	out := new(memoryResult)
	e.results.Memory = out

	if err := sleepContext(ctx, e.opts.idleWait); err != nil {
		return err
	}
	idle, err := procstat.ReadMemory(pid)
	if err != nil {
		return err
	}
	out.Idle = idle.RSS
	fmt.Fprintf(e.out, "idle %s after start: %s\n", e.opts.idleWait, mib(out.Idle))

	if err := e.rssUnderLoad(ctx, d, rc, out); err != nil {
		return err
	}
	if err := e.rssPending(ctx, d, rc, out); err != nil {
		return err
	}

	final, err := procstat.ReadMemory(pid)
	if err != nil {
		return err
	}
	out.Peak = final.Peak
	fmt.Fprintf(e.out, "peak resident memory of the run (VmHWM): %s\n", mib(out.Peak))
	return nil
}

// rssUnderLoad loads site C and samples the resident memory every 200ms.
func (e *env) rssUnderLoad(ctx context.Context, d *deployment, rc *receiver.Receiver, out *memoryResult) error {
	before, err := d.counters(ctx)
	if err != nil {
		return err
	}
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		ticker := time.NewTicker(200 * time.Millisecond)
		defer ticker.Stop()
		for {
			if mem, err := procstat.ReadMemory(d.proc.Pid); err == nil {
				out.LoadMax = max(out.LoadMax, mem.RSS)
			}
			select {
			case <-stopSampling:
				return
			case <-ticker.C:
			}
		}
	})

	client := loadgen.NewClient(e.opts.connections)
	defer client.CloseIdleConnections()
	res, err := loadgen.ClosedLoop{
		Target:      loadgen.Target{Client: client, URL: d.delURL, Seq: &e.seq},
		Connections: e.opts.connections,
		Duration:    e.opts.rssLoad,
	}.Run(ctx)
	if err == nil {
		var missing []int64
		missing, err = e.waitDelivered(ctx, d, rc, seqsOf(res), before, e.opts.settleTimeout)
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("%d of %d webhooks missing after the load", len(missing), len(res.Succeeded))
		}
	}
	close(stopSampling)
	sampler.Wait()
	if err != nil {
		return err
	}

	after, err := procstat.ReadMemory(d.proc.Pid)
	if err != nil {
		return err
	}
	out.AfterLoad = after.RSS
	fmt.Fprintf(e.out, "under load (%s on site C, %.0f req/s, every webhook delivered): max %s, after the load %s\n",
		e.opts.rssLoad, res.Rate(), mib(out.LoadMax), mib(out.AfterLoad))
	return e.saveHeapProfile(ctx, d, "heap-after-load")
}

// saveHeapProfile writes Caddy's heap profile into the work directory and
// prints the largest in-use allocations, for the memory figures of the
// report.
func (e *env) saveHeapProfile(ctx context.Context, d *deployment, name string) error {
	profile, err := d.proc.Get(ctx, "/debug/pprof/heap")
	if err != nil {
		return fmt.Errorf("getting heap profile: %w", err)
	}
	path := filepath.Join(e.workDir, name+".pprof")
	if err := os.WriteFile(path, profile, 0o600); err != nil {
		return fmt.Errorf("writing heap profile: %w", err)
	}
	e.results.Profiles[name] = path
	if !e.opts.smoke {
		e.printTop(ctx, "heap profile "+name, "-sample_index=inuse_space", path)
	}
	return nil
}

// rssPending holds the receiver, stores up to -pending-events events
// within -pending-timeout, and reads the resident memory right after and
// again after -pending-wait.
func (e *env) rssPending(ctx context.Context, d *deployment, rc *receiver.Receiver, out *memoryResult) error {
	rc.Hold()
	defer rc.Release()
	before, err := d.counters(ctx)
	if err != nil {
		return err
	}

	client := loadgen.NewClient(e.opts.connections)
	defer client.CloseIdleConnections()
	start := time.Now()
	res, err := loadgen.ClosedLoop{
		Target:      loadgen.Target{Client: client, URL: d.delURL, Seq: &e.seq},
		Connections: e.opts.connections,
		Requests:    int64(e.opts.pendingEvents),
		Duration:    e.opts.pendingTimeout,
	}.Run(ctx)
	if err != nil {
		return err
	}
	dropped, err := e.waitStored(ctx, d, deliveredEvent, before, len(res.Succeeded))
	if err != nil {
		return err
	}
	fill := time.Since(start)
	out.PendingEvents = len(res.Succeeded) - dropped
	out.FillRate = float64(out.PendingEvents) / fill.Seconds()

	mem, err := procstat.ReadMemory(d.proc.Pid)
	if err != nil {
		return err
	}
	out.Pending = mem.RSS
	fmt.Fprintf(e.out, "with %d events pending (of %d requested, stored in %s at %.0f/s, %d dropped): %s, %+.1f MiB over after the load\n",
		out.PendingEvents, e.opts.pendingEvents, fill.Round(time.Second), out.FillRate, dropped, mib(out.Pending), float64(out.Pending-out.AfterLoad)/(1<<20))
	if err := e.saveHeapProfile(ctx, d, "heap-with-pending"); err != nil {
		return err
	}

	if e.opts.pendingWait > 0 {
		if err := sleepContext(ctx, e.opts.pendingWait); err != nil {
			return err
		}
		later, err := procstat.ReadMemory(d.proc.Pid)
		if err != nil {
			return err
		}
		out.PendingLater, out.PendingWait = later.RSS, e.opts.pendingWait
		fmt.Fprintf(e.out, "with the same events pending %s later: %s, %+.1f MiB over after the load\n",
			e.opts.pendingWait, mib(out.PendingLater), float64(out.PendingLater-out.AfterLoad)/(1<<20))
		if err := e.saveHeapProfile(ctx, d, "heap-with-pending-later"); err != nil {
			return err
		}
	}
	if dropped > 0 {
		return fmt.Errorf("%d events dropped while filling the backlog", dropped)
	}
	return nil
}
