package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/loadgen"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/procstat"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/receiver"
)

// site is one of the three sites that the compare scenario loads in turn.
type site struct {
	name      string // A, B or C
	eventType string // "" for the plain site
	url       func(*deployment) string
}

var compareSites = []site{
	{"A", "", func(d *deployment) string { return d.plainURL }},
	{"B", storedEvent, func(d *deployment) string { return d.storedURL }},
	{"C", deliveredEvent, func(d *deployment) string { return d.delURL }},
}

// phaseResult is the measurement of one site in one round.
type phaseResult struct {
	Round     int           `json:"round"`
	Site      string        `json:"site"`
	Requests  int           `json:"requests"`
	Failed    int           `json:"failed"`
	Rate      float64       `json:"requests_per_second"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	CPUPerReq time.Duration `json:"caddy_cpu_per_request"`

	// EndToEndRate counts C's requests per second from the start of the
	// load until the last webhook arrived.
	EndToEndRate float64 `json:"end_to_end_per_second,omitempty"`

	// Settle is the time from the end of the load until every event was
	// stored (B) or delivered (C).
	Settle  time.Duration `json:"settle"`
	Missing int           `json:"missing"`
	Dropped int           `json:"dropped"`
}

// compare loads the sites A (reverse_proxy), B (events stored, no
// subscriber) and C (events delivered) in turn, round after round, with
// the same client settings, and reports each against A.
func (e *env) compare(ctx context.Context) error {
	rc, err := receiver.Start()
	if err != nil {
		return err
	}
	defer rc.Close()
	d, err := e.deploy(ctx, "compare", []endpointSpec{{name: "main", receiver: rc, concurrency: 64, timeout: 15 * time.Second}})
	if err != nil {
		return err
	}
	defer d.stop(e.out)

	fmt.Fprintf(e.out, "%d rounds of A B C, %d connections, %s warm-up and %s load each\n",
		e.opts.rounds, e.opts.connections, e.opts.warmup, e.opts.duration)
	var lost int
	for round := 1; round <= e.opts.rounds; round++ {
		for _, s := range compareSites {
			res, err := e.comparePhase(ctx, d, rc, s, round)
			if err != nil {
				return fmt.Errorf("round %d, site %s: %w", round, s.name, err)
			}
			lost += res.Missing
			e.results.Compare = append(e.results.Compare, res)
			fmt.Fprintf(e.out, "round %d site %s: %.0f req/s, p50 %s, p99 %s, %.1fµs CPU/req%s\n",
				round, s.name, res.Rate, ms(res.P50), ms(res.P99), float64(res.CPUPerReq)/float64(time.Microsecond), endToEndNote(res))
		}
	}
	e.printCompareSummary()
	if lost > 0 {
		return fmt.Errorf("%d events lost", lost)
	}
	return nil
}

func endToEndNote(res phaseResult) string {
	if res.EndToEndRate == 0 {
		return ""
	}
	return fmt.Sprintf(", end to end %.0f/s", res.EndToEndRate)
}

// comparePhase warms a site up, lets its events settle, then measures it.
func (e *env) comparePhase(ctx context.Context, d *deployment, rc *receiver.Receiver, s site, round int) (phaseResult, error) {
	client := loadgen.NewClient(e.opts.connections)
	defer client.CloseIdleConnections()
	target := loadgen.Target{Client: client, URL: s.url(d), Seq: &e.seq}

	if e.opts.warmup > 0 {
		warmBefore, err := d.counters(ctx)
		if err != nil {
			return phaseResult{}, err
		}
		warm, err := loadgen.ClosedLoop{Target: target, Connections: e.opts.connections, Duration: e.opts.warmup}.Run(ctx)
		if err != nil {
			return phaseResult{}, err
		}
		if _, _, err := e.settle(ctx, d, rc, s, warm, warmBefore); err != nil {
			return phaseResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}

	before, err := d.counters(ctx)
	if err != nil {
		return phaseResult{}, err
	}
	cpuBefore, err := procstat.CPUTime(d.proc.Pid)
	if err != nil {
		return phaseResult{}, err
	}
	start := time.Now()
	res, err := loadgen.ClosedLoop{Target: target, Connections: e.opts.connections, Duration: e.opts.duration}.Run(ctx)
	if err != nil {
		return phaseResult{}, err
	}
	loadEnd := time.Now()
	missing, dropped, err := e.settle(ctx, d, rc, s, res, before)
	if err != nil {
		return phaseResult{}, err
	}
	settled := time.Now()
	cpuAfter, err := procstat.CPUTime(d.proc.Pid)
	if err != nil {
		return phaseResult{}, err
	}

	out := phaseResult{
		Round:    round,
		Site:     s.name,
		Requests: len(res.Succeeded),
		Failed:   res.Failed,
		Rate:     res.Rate(),
		P50:      res.Percentile(0.50),
		P99:      res.Percentile(0.99),
		Settle:   settled.Sub(loadEnd),
		Missing:  len(missing),
		Dropped:  dropped,
	}
	if out.Requests > 0 {
		out.CPUPerReq = (cpuAfter - cpuBefore) / time.Duration(out.Requests)
	}
	if s.eventType == deliveredEvent {
		if last := lastArrival(rc, seqsOf(res)); last.After(start) {
			out.EndToEndRate = float64(out.Requests) / last.Sub(start).Seconds()
		}
	}
	if res.Failed > 0 {
		fmt.Fprintf(e.out, "warning: %d requests failed, the first with: %v\n", res.Failed, res.FirstError)
	}
	return out, nil
}

// settle waits until the events of a load on site s are stored (B) or
// delivered (C), and returns the requests whose webhook is missing and the
// events dropped since before.
func (e *env) settle(ctx context.Context, d *deployment, rc *receiver.Receiver, s site, res *loadgen.Result, before counters) (missing []int64, dropped int, err error) {
	switch s.eventType {
	case storedEvent:
		dropped, err = e.waitStored(ctx, d, storedEvent, before, len(res.Succeeded))
		return nil, dropped, err
	case deliveredEvent:
		missing, err = e.waitDelivered(ctx, d, rc, seqsOf(res), before, e.opts.settleTimeout)
		if err != nil {
			return missing, 0, err
		}
		now, err := d.counters(ctx)
		if err != nil {
			return missing, 0, err
		}
		dropped = int(now.dropped - before.dropped)
		if len(missing) > 0 {
			fmt.Fprintf(e.out, "warning: %d of %d webhooks missing after %s (events dropped: %d)\n",
				len(missing), len(res.Succeeded), e.opts.settleTimeout, dropped)
		}
		return missing, dropped, nil
	}
	return nil, 0, nil
}

// printCompareSummary prints the medians over the rounds and the ratios to
// site A, whose per-round values are paired with B's and C's of the same
// round.
func (e *env) printCompareSummary() {
	bySite := make(map[string][]phaseResult)
	for _, r := range e.results.Compare {
		bySite[r.Site] = append(bySite[r.Site], r)
	}
	a := bySite["A"]

	w := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "site\treq/s\tratio to A\tp50\tp99\tp99 − A\tCPU µs/req\tend to end/s\tratio to A\t")
	for _, s := range compareSites {
		rows := bySite[s.name]
		var rate, p50, p99, cpu, e2e, rateRatio, p99Delta, e2eRatio []float64
		for i, r := range rows {
			rate = append(rate, r.Rate)
			p50 = append(p50, float64(r.P50))
			p99 = append(p99, float64(r.P99))
			cpu = append(cpu, float64(r.CPUPerReq)/float64(time.Microsecond))
			if i < len(a) && a[i].Rate > 0 {
				rateRatio = append(rateRatio, r.Rate/a[i].Rate)
				p99Delta = append(p99Delta, float64(r.P99-a[i].P99))
				if r.EndToEndRate > 0 {
					e2e = append(e2e, r.EndToEndRate)
					e2eRatio = append(e2eRatio, r.EndToEndRate/a[i].Rate)
				}
			}
		}
		e2eText, e2eRatioText := "-", "-"
		if len(e2e) > 0 {
			e2eText = fmt.Sprintf("%.0f", median(e2e))
			e2eRatioText = fmt.Sprintf("%.3f", median(e2eRatio))
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.3f\t%s\t%s\t%+.2fms\t%.1f\t%s\t%s\t\n",
			s.name, median(rate), median(rateRatio),
			ms(time.Duration(median(p50))), ms(time.Duration(median(p99))),
			median(p99Delta)/float64(time.Millisecond), median(cpu), e2eText, e2eRatioText)
	}
	fmt.Fprintln(e.out, "\nmedians over the rounds; ratios and p99 differences are taken per round against that round's A, then the median:")
	w.Flush()
}
