package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/loadgen"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/receiver"
)

// heldTimeout is the attempt timeout of endpoints whose receiver holds the
// webhooks back while a backlog fills: longer than any fill, so that the
// held attempts succeed once released.
const heldTimeout = 20 * time.Minute

// latencyResult is the time from sending an API request until its webhook
// arrived, at a fixed request rate.
type latencyResult struct {
	Rate     float64       `json:"requests_per_second"`
	Requests int           `json:"requests"`
	Late     int           `json:"late"`
	P50      time.Duration `json:"p50"`
	P99      time.Duration `json:"p99"`
	Max      time.Duration `json:"max"`
	Missing  int           `json:"missing"`
}

// latency sends requests to site C at a fixed rate and measures, for each,
// the time from sending the request until its webhook arrived.
func (e *env) latency(ctx context.Context) error {
	rc, err := receiver.Start()
	if err != nil {
		return err
	}
	defer rc.Close()
	d, err := e.deploy(ctx, "latency", []endpointSpec{{name: "main", receiver: rc, concurrency: 16, timeout: 15 * time.Second}})
	if err != nil {
		return err
	}
	defer d.stop(e.out)

	client := loadgen.NewClient(256)
	defer client.CloseIdleConnections()
	target := loadgen.Target{Client: client, URL: d.delURL, Seq: &e.seq}
	run := func(duration time.Duration) (*loadgen.Result, []int64, error) {
		before, err := d.counters(ctx)
		if err != nil {
			return nil, nil, err
		}
		res, err := loadgen.OpenLoop{Target: target, PerSecond: e.opts.latencyRate, Duration: duration, MaxInFlight: 256}.Run(ctx)
		if err != nil {
			return nil, nil, err
		}
		missing, err := e.waitDelivered(ctx, d, rc, seqsOf(res), before, e.opts.settleTimeout)
		return res, missing, err
	}

	if _, _, err := run(max(e.opts.warmup, time.Second)); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	res, missing, err := run(e.opts.latencyDuration)
	if err != nil {
		return err
	}

	var latencies []time.Duration
	for _, done := range res.Succeeded {
		if arrived, ok := rc.Arrived(done.Seq); ok {
			sent := done.At.Add(-done.Latency)
			latencies = append(latencies, arrived.Sub(sent))
		}
	}
	slices.Sort(latencies)
	out := &latencyResult{
		Rate:     e.opts.latencyRate,
		Requests: len(res.Succeeded),
		Late:     res.Late,
		P50:      loadgen.Percentile(latencies, 0.50),
		P99:      loadgen.Percentile(latencies, 0.99),
		Missing:  len(missing),
	}
	if len(latencies) > 0 {
		out.Max = latencies[len(latencies)-1]
	}
	e.results.Latency = out

	fmt.Fprintf(e.out, "%d requests at %.0f/s (%d sent late, %d failed): request sent to webhook arrived p50 %s, p99 %s, max %s; API response p50 %s, p99 %s\n",
		out.Requests, out.Rate, out.Late, res.Failed, ms(out.P50), ms(out.P99), ms(out.Max), ms(res.Percentile(0.5)), ms(res.Percentile(0.99)))
	if len(missing) > 0 {
		return fmt.Errorf("%d of %d webhooks missing", len(missing), len(res.Succeeded))
	}
	return nil
}

// drainResult is one backlog drain.
type drainResult struct {
	Concurrency int           `json:"concurrency"`
	Stored      int           `json:"stored"`
	Delivered   int           `json:"delivered"`
	Elapsed     time.Duration `json:"elapsed"`
	Rate        float64       `json:"deliveries_per_second"`
	Fill        time.Duration `json:"fill"`
	Duplicates  int           `json:"duplicates"`
}

// backlog is a Caddy whose endpoints' receivers hold every webhook back
// while events are stored, so that the stored events wait in JetStream.
type backlog struct {
	d         *deployment
	receivers []*receiver.Receiver
	seqs      []int64
	fill      time.Duration
}

// fillBacklog starts a Caddy with one endpoint per receiver, holds the
// receivers, sends up to events requests to site C within limit, and waits
// until JetStream has stored their events. The caller releases the
// receivers and stops the deployment.
func (e *env) fillBacklog(ctx context.Context, name string, receivers []*receiver.Receiver, names []string, concurrency, events int, limit time.Duration) (*backlog, error) {
	var specs []endpointSpec
	for i, rc := range receivers {
		rc.Hold()
		specs = append(specs, endpointSpec{name: names[i], receiver: rc, concurrency: concurrency, timeout: heldTimeout})
	}
	d, err := e.deploy(ctx, name, specs)
	if err != nil {
		return nil, err
	}
	before, err := d.counters(ctx)
	if err != nil {
		d.stop(e.out)
		return nil, err
	}

	client := loadgen.NewClient(e.opts.connections)
	defer client.CloseIdleConnections()
	start := time.Now()
	res, err := loadgen.ClosedLoop{
		Target:      loadgen.Target{Client: client, URL: d.delURL, Seq: &e.seq},
		Connections: e.opts.connections,
		Requests:    int64(events),
		Duration:    limit,
	}.Run(ctx)
	if err == nil {
		var dropped int
		dropped, err = e.waitStored(ctx, d, deliveredEvent, before, len(res.Succeeded))
		if err == nil && dropped > 0 {
			err = fmt.Errorf("%d of %d events dropped before JetStream stored them", dropped, len(res.Succeeded))
		}
	}
	if err != nil {
		for _, rc := range receivers {
			rc.Release()
		}
		d.stop(e.out)
		return nil, fmt.Errorf("filling the backlog: %w", err)
	}
	if res.Failed > 0 {
		fmt.Fprintf(e.out, "warning: %d fill requests failed, the first with: %v\n", res.Failed, res.FirstError)
	}
	return &backlog{d: d, receivers: receivers, seqs: seqsOf(res), fill: time.Since(start)}, nil
}

// release lets the held webhooks through and returns when it did.
func (b *backlog) release() time.Time {
	start := time.Now()
	for _, rc := range b.receivers {
		rc.Release()
	}
	return start
}

// drain stores a backlog of events while the receiver holds webhooks back,
// then releases it and measures the deliveries per second, once per
// endpoint concurrency.
func (e *env) drain(ctx context.Context) error {
	var lost int
	for _, concurrency := range e.opts.drainConcurrency {
		res, missing, err := e.drainOnce(ctx, concurrency, "")
		if err != nil {
			return fmt.Errorf("concurrency %d: %w", concurrency, err)
		}
		lost += missing
		e.results.Drain = append(e.results.Drain, res)
		fmt.Fprintf(e.out, "concurrency %3d: %d of %d stored events delivered in %s: %.0f deliveries/s (fill took %s, %d duplicates)\n",
			concurrency, res.Delivered, res.Stored, res.Elapsed.Round(time.Millisecond), res.Rate, res.Fill.Round(100*time.Millisecond), res.Duplicates)
	}
	if lost > 0 {
		return fmt.Errorf("%d events not delivered within -drain-timeout %s", lost, e.opts.drainTimeout)
	}
	return nil
}

// drainOnce measures one backlog drain. With profilePath set, it records
// a CPU profile of Caddy while the drain runs.
func (e *env) drainOnce(ctx context.Context, concurrency int, profilePath string) (drainResult, int, error) {
	rc, err := receiver.Start()
	if err != nil {
		return drainResult{}, 0, err
	}
	defer rc.Close()
	b, err := e.fillBacklog(ctx, fmt.Sprintf("drain-%d", concurrency), []*receiver.Receiver{rc}, []string{"main"}, concurrency, e.opts.drainEvents, e.opts.pendingTimeout)
	if err != nil {
		return drainResult{}, 0, err
	}
	defer b.d.stop(e.out)
	before, err := b.d.counters(ctx)
	if err != nil {
		return drainResult{}, 0, err
	}

	profileDone := make(chan error, 1)
	if profilePath != "" {
		go func() { profileDone <- b.d.proc.CPUProfile(ctx, e.opts.profileSeconds, profilePath) }()
	} else {
		profileDone <- nil
	}
	start := b.release()
	missing, err := e.waitDelivered(ctx, b.d, rc, b.seqs, before, e.opts.drainTimeout)
	if err != nil {
		return drainResult{}, 0, err
	}
	last := lastArrival(rc, b.seqs)
	if err := <-profileDone; err != nil {
		return drainResult{}, 0, err
	}

	res := drainResult{
		Concurrency: concurrency,
		Stored:      len(b.seqs),
		Delivered:   len(b.seqs) - len(missing),
		Elapsed:     last.Sub(start),
		Fill:        b.fill,
		Duplicates:  rc.Stats().Duplicates,
	}
	if res.Elapsed > 0 {
		res.Rate = float64(res.Delivered) / res.Elapsed.Seconds()
	}
	return res, len(missing), nil
}

// failingResult is one drain of the healthy endpoint, alone or beside an
// endpoint that responds to every webhook with 503.
type failingResult struct {
	Round          int           `json:"round"`
	WithFailing    bool          `json:"with_failing"`
	Stored         int           `json:"stored"`
	Delivered      int           `json:"delivered"`
	Elapsed        time.Duration `json:"elapsed"`
	Rate           float64       `json:"healthy_deliveries_per_second"`
	FailedAttempts int           `json:"failing_endpoint_attempts"`
}

// failing drains a backlog to a healthy endpoint, alone and then beside an
// endpoint that responds to everything with 503, and compares the healthy
// rates.
func (e *env) failing(ctx context.Context) error {
	var alone, beside []float64
	for round := 1; round <= e.opts.failingRounds; round++ {
		for _, withFailing := range []bool{false, true} {
			res, err := e.failingOnce(ctx, round, withFailing)
			if err != nil {
				return fmt.Errorf("round %d (with failing endpoint: %v): %w", round, withFailing, err)
			}
			e.results.Failing = append(e.results.Failing, res)
			label := "healthy alone"
			if withFailing {
				label = "beside 503 endpoint"
				beside = append(beside, res.Rate)
			} else {
				alone = append(alone, res.Rate)
			}
			fmt.Fprintf(e.out, "round %d %-19s: %d of %d delivered in %s: %.0f deliveries/s, %d attempts at the failing endpoint\n",
				round, label, res.Delivered, res.Stored, res.Elapsed.Round(time.Millisecond), res.Rate, res.FailedAttempts)
			if res.Delivered < res.Stored {
				return fmt.Errorf("round %d: %d events not delivered to the healthy endpoint", round, res.Stored-res.Delivered)
			}
		}
	}
	if median(alone) > 0 {
		fmt.Fprintf(e.out, "healthy endpoint rate beside the failing one: %.3f of its rate alone (medians %.0f and %.0f deliveries/s)\n",
			median(beside)/median(alone), median(beside), median(alone))
	}
	return nil
}

func (e *env) failingOnce(ctx context.Context, round int, withFailing bool) (failingResult, error) {
	healthy, err := receiver.Start()
	if err != nil {
		return failingResult{}, err
	}
	defer healthy.Close()
	receivers, names := []*receiver.Receiver{healthy}, []string{"healthy"}
	var failing *receiver.Receiver
	if withFailing {
		if failing, err = receiver.Start(); err != nil {
			return failingResult{}, err
		}
		defer failing.Close()
		failing.SetStatus(http.StatusServiceUnavailable)
		receivers, names = append(receivers, failing), append(names, "failing")
	}

	name := fmt.Sprintf("failing-%d-alone", round)
	if withFailing {
		name = fmt.Sprintf("failing-%d-beside", round)
	}
	b, err := e.fillBacklog(ctx, name, receivers, names, e.opts.failingConcurrency, e.opts.failingEvents, e.opts.pendingTimeout)
	if err != nil {
		return failingResult{}, err
	}
	defer b.d.stop(e.out)
	before, err := b.d.counters(ctx)
	if err != nil {
		return failingResult{}, err
	}

	start := b.release()
	missing, err := e.waitDelivered(ctx, b.d, healthy, b.seqs, before, e.opts.drainTimeout)
	if err != nil {
		return failingResult{}, err
	}
	res := failingResult{
		Round:       round,
		WithFailing: withFailing,
		Stored:      len(b.seqs),
		Delivered:   len(b.seqs) - len(missing),
		Elapsed:     lastArrival(healthy, b.seqs).Sub(start),
	}
	if failing != nil {
		res.FailedAttempts = failing.Stats().Requests
	}
	if res.Elapsed > 0 {
		res.Rate = float64(res.Delivered) / res.Elapsed.Seconds()
	}
	return res, nil
}
