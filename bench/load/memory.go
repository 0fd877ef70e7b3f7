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

// memoryReading is one reading of a process's resident memory.
type memoryReading struct {
	RSS  int64 `json:"rss"`
	Anon int64 `json:"anonymous"`
	File int64 `json:"file_backed"`
}

func readingOf(mem procstat.Memory) memoryReading {
	return memoryReading{RSS: mem.RSS, Anon: mem.Anon, File: mem.File}
}

func (r memoryReading) String() string {
	return fmt.Sprintf("%s (anonymous %s, file-backed %s)", mib(r.RSS), mib(r.Anon), mib(r.File))
}

// memoryResult holds Caddy's resident memory at the moments of the rss
// scenario. The plain readings are of the same binary with site A alone
// and no webhooks app.
type memoryResult struct {
	PlainIdle     memoryReading `json:"plain_idle"`
	PlainLoadMax  int64         `json:"plain_under_load_max"`
	PlainLoadRate float64       `json:"plain_load_requests_per_second"`

	Idle          memoryReading `json:"idle"`
	LoadMax       int64         `json:"under_load_max"`
	LoadRate      float64       `json:"load_requests_per_second"`
	AfterLoad     memoryReading `json:"after_load"`
	PendingEvents int           `json:"pending_events"`
	Pending       memoryReading `json:"with_pending"`

	// PendingLater is read -pending-wait after the fill, once JetStream
	// has forgotten the message ids of the fill.
	PendingLater *memoryReading `json:"with_pending_later,omitempty"`
	PendingWait  time.Duration  `json:"pending_wait,omitempty"`
	Peak         int64          `json:"peak"`
	FillRate     float64        `json:"fill_events_per_second"`
}

// rss reads the resident memory of a plain Caddy, idle and under load on
// site A. Then it reads that of Caddy with the webhooks app: idle, under
// load on site C, and with a backlog that the held receiver does not take.
func (e *env) rss(ctx context.Context) error {
	out := new(memoryResult)
	e.results.Memory = out
	if err := e.rssPlain(ctx, out); err != nil {
		return err
	}

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

	if out.Idle, err = e.readIdle(ctx, d, "with webhooks"); err != nil {
		return err
	}

	if err := e.rssUnderLoad(ctx, d, rc, out); err != nil {
		return err
	}
	if err := e.rssPending(ctx, d, rc, out); err != nil {
		return err
	}

	final, err := procstat.ReadMemory(d.proc.Pid)
	if err != nil {
		return err
	}
	out.Peak = final.Peak
	fmt.Fprintf(e.out, "peak resident memory of the run (VmHWM): %s\n", mib(out.Peak))
	return nil
}

// rssPlain reads the memory of the same Caddy binary without the webhooks
// app, idle and under load on site A, as the baseline of the readings with
// webhooks.
func (e *env) rssPlain(ctx context.Context, out *memoryResult) error {
	d, err := e.deployPlain(ctx, "rss-plain")
	if err != nil {
		return err
	}
	defer d.stop(e.out)

	if out.PlainIdle, err = e.readIdle(ctx, d, "plain Caddy"); err != nil {
		return err
	}

	stopSampling := sampleMaxRSS(d.proc.Pid)
	res, err := e.loadForRSS(ctx, d.plainURL)
	out.PlainLoadMax = stopSampling()
	if err != nil {
		return err
	}
	out.PlainLoadRate = res.Rate()
	fmt.Fprintf(e.out, "plain Caddy, under load (%s on site A, %.0f req/s): max %s\n",
		e.opts.rssLoad, out.PlainLoadRate, mib(out.PlainLoadMax))
	return nil
}

// loadForRSS runs the closed-loop load of the memory readings against url
// for -rss-load.
func (e *env) loadForRSS(ctx context.Context, url string) (*loadgen.Result, error) {
	client := loadgen.NewClient(e.opts.connections)
	defer client.CloseIdleConnections()
	return loadgen.ClosedLoop{
		Target:      loadgen.Target{Client: client, URL: url, Seq: &e.seq},
		Connections: e.opts.connections,
		Duration:    e.opts.rssLoad,
	}.Run(ctx)
}

// readIdle waits -idle-wait after a deployment's start, reads its memory
// and prints it after label.
func (e *env) readIdle(ctx context.Context, d *deployment, label string) (memoryReading, error) {
	if err := sleepContext(ctx, e.opts.idleWait); err != nil {
		return memoryReading{}, err
	}
	mem, err := procstat.ReadMemory(d.proc.Pid)
	if err != nil {
		return memoryReading{}, err
	}
	reading := readingOf(mem)
	fmt.Fprintf(e.out, "%s, idle %s after start: %s\n", label, e.opts.idleWait, reading)
	return reading, nil
}

// sampleMaxRSS reads the resident memory of process pid every 200ms until
// the returned function is called, which returns the largest reading.
func sampleMaxRSS(pid int) (stop func() int64) {
	done := make(chan struct{})
	var largest int64
	var sampler sync.WaitGroup
	sampler.Go(func() {
		ticker := time.NewTicker(200 * time.Millisecond)
		defer ticker.Stop()
		for {
			if mem, err := procstat.ReadMemory(pid); err == nil {
				largest = max(largest, mem.RSS)
			}
			select {
			case <-done:
				return
			case <-ticker.C:
			}
		}
	})
	return func() int64 {
		close(done)
		sampler.Wait()
		return largest
	}
}

// rssUnderLoad loads site C and samples the resident memory every 200ms.
func (e *env) rssUnderLoad(ctx context.Context, d *deployment, rc *receiver.Receiver, out *memoryResult) error {
	before, err := d.counters(ctx)
	if err != nil {
		return err
	}
	stopSampling := sampleMaxRSS(d.proc.Pid)
	res, err := e.loadForRSS(ctx, d.delURL)
	if err == nil {
		var missing []int64
		missing, err = e.waitDelivered(ctx, d, rc, seqsOf(res), before, e.opts.settleTimeout)
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("%d of %d webhooks missing after the load", len(missing), len(res.Succeeded))
		}
	}
	out.LoadMax = stopSampling()
	if err != nil {
		return err
	}

	after, err := procstat.ReadMemory(d.proc.Pid)
	if err != nil {
		return err
	}
	out.LoadRate = res.Rate()
	out.AfterLoad = readingOf(after)
	fmt.Fprintf(e.out, "with webhooks, under load (%s on site C, %.0f req/s, every webhook delivered): max %s, after the load %s\n",
		e.opts.rssLoad, out.LoadRate, mib(out.LoadMax), out.AfterLoad)
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
	out.Pending = readingOf(mem)
	fmt.Fprintf(e.out, "with %d events pending (of %d requested, stored in %s at %.0f/s, %d dropped): %s, %+.1f MiB over after the load\n",
		out.PendingEvents, e.opts.pendingEvents, fill.Round(time.Second), out.FillRate, dropped, out.Pending, float64(out.Pending.RSS-out.AfterLoad.RSS)/(1<<20))
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
		reading := readingOf(later)
		out.PendingLater, out.PendingWait = &reading, e.opts.pendingWait
		fmt.Fprintf(e.out, "with the same events pending %s later: %s, %+.1f MiB over after the load\n",
			e.opts.pendingWait, reading, float64(reading.RSS-out.AfterLoad.RSS)/(1<<20))
		if err := e.saveHeapProfile(ctx, d, "heap-with-pending-later"); err != nil {
			return err
		}
	}
	if dropped > 0 {
		return fmt.Errorf("%d events dropped while filling the backlog", dropped)
	}
	return nil
}
