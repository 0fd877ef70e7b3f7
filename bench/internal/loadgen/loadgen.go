// Package loadgen sends HTTP GET requests to one URL. In a closed loop, a
// fixed number of connections each send the next request as soon as the
// response to the last one is read. In an open loop, requests start at a
// fixed rate. Every
// request carries a sequence number in its query, so that the webhook it
// causes can be matched to it.
package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SeqParameter is the query parameter that carries a request's sequence
// number.
const SeqParameter = "seq"

// requestTimeout bounds one request, so that a stuck server ends a run
// with errors instead of hanging it.
const requestTimeout = 30 * time.Second

// NewClient returns an HTTP/1.1 client that keeps up to connections idle
// keep-alive connections to one host, ignores proxy settings from the
// environment and requests no compression. Every phase of a comparison
// uses a client from here, so their transports are set up alike.
func NewClient(connections int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        connections,
		MaxIdleConnsPerHost: connections,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: transport, Timeout: requestTimeout}
}

// Sequence hands out the sequence numbers of requests, starting at 1. One
// Sequence is shared by all the runs against one server, so that numbers
// stay unique across them.
type Sequence struct {
	last atomic.Int64
}

// Next returns the next sequence number.
func (s *Sequence) Next() int64 {
	return s.last.Add(1)
}

// Done is one request that got a 2xx response.
type Done struct {
	Seq     int64
	Latency time.Duration // from sending the request to reading the whole response
	At      time.Time     // when the whole response was read
}

// Result is the outcome of one run.
type Result struct {
	// Succeeded lists the requests that got a 2xx response, sorted by
	// latency.
	Succeeded []Done

	// Failed counts transport errors and responses with another status.
	Failed int

	// FirstError describes the first failure, if any.
	FirstError error

	// Elapsed is the time from the first request sent to the last response
	// read.
	Elapsed time.Duration

	// Late counts the requests of an open-loop run that left more than a
	// millisecond after their scheduled time because every connection was
	// busy or the scheduler fell behind.
	Late int
}

// Rate returns the successful requests per second.
func (r *Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Succeeded)) / r.Elapsed.Seconds()
}

// Percentile returns the latency below which the fraction p (0 to 1) of
// the successful requests fall, by the nearest-rank method, or 0 without
// successful requests.
func (r *Result) Percentile(p float64) time.Duration {
	latencies := make([]time.Duration, len(r.Succeeded))
	for i, d := range r.Succeeded {
		latencies[i] = d.Latency
	}
	return Percentile(latencies, p)
}

// Percentile returns the value below which the fraction p (0 to 1) of the
// sorted values fall, by the nearest-rank method, or 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Target is the destination of a run's requests.
type Target struct {
	Client *http.Client

	// URL is the request URL without a query; the run adds the sequence
	// number as the query parameter SeqParameter.
	URL string

	Seq *Sequence
}

// ClosedLoop configures a closed-loop run.
type ClosedLoop struct {
	Target

	// Connections is the number of requests in flight at any time.
	Connections int

	// Duration ends the run; 0 means no time limit.
	Duration time.Duration

	// Requests ends the run after this many requests were sent; 0 means
	// no count limit. Duration or Requests must be set.
	Requests int64
}

// Run sends requests until Duration has passed, Requests were sent or ctx
// ends, and waits for the responses to the requests in flight.
func (c ClosedLoop) Run(ctx context.Context) (*Result, error) {
	if c.Connections < 1 {
		return nil, fmt.Errorf("invalid connection count %d: use at least 1", c.Connections)
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		return nil, errors.New("closed-loop run without a limit: set a duration or a request count")
	}
	// The duration stops new requests only. A request in flight is not
	// canceled, because the server may have handled it already, and its
	// webhook would then arrive for a request the run did not count.
	start := time.Now()
	deadline := start.Add(c.Duration)
	var sent atomic.Int64
	collectors := make([]collector, c.Connections)

	var wg sync.WaitGroup
	for i := range collectors {
		col := &collectors[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				if c.Duration > 0 && !time.Now().Before(deadline) {
					return
				}
				if c.Requests > 0 && sent.Add(1) > c.Requests {
					return
				}
				col.record(c.Target.send(ctx))
			}
		})
	}
	wg.Wait()
	return merge(collectors, time.Since(start), 0), nil
}

// OpenLoop configures an open-loop run.
type OpenLoop struct {
	Target

	// PerSecond is the request rate.
	PerSecond float64

	// Duration is how long requests are started.
	Duration time.Duration

	// MaxInFlight bounds the requests in flight. A request whose time
	// comes while that many are in flight waits and is counted as late.
	MaxInFlight int
}

// Run starts requests at the fixed rate for Duration and waits for the
// requests in flight.
func (o OpenLoop) Run(ctx context.Context) (*Result, error) {
	if o.PerSecond <= 0 || o.Duration <= 0 || o.MaxInFlight < 1 {
		return nil, fmt.Errorf("invalid open-loop run: rate %v/s, duration %s and max in flight %d must all be positive",
			o.PerSecond, o.Duration, o.MaxInFlight)
	}
	interval := time.Duration(float64(time.Second) / o.PerSecond)
	count := int(o.Duration / interval)

	var mu sync.Mutex
	var col collector
	slots := make(chan struct{}, o.MaxInFlight)
	late := 0
	start := time.Now()
	var wg sync.WaitGroup
	for i := range count {
		scheduled := start.Add(time.Duration(i) * interval)
		if wait := time.Until(scheduled); wait > 0 {
			if sleepContext(ctx, wait) != nil {
				break
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if time.Since(scheduled) > time.Millisecond {
			late++
		}
		wg.Go(func() {
			defer func() { <-slots }()
			outcome := o.Target.send(ctx)
			mu.Lock()
			defer mu.Unlock()
			col.record(outcome)
		})
	}
	wg.Wait()
	return merge([]collector{col}, time.Since(start), late), nil
}

// outcome is the result of one request: done is set on success, err on
// failure.
type outcome struct {
	done Done
	err  error
}

// send makes one request and reads the whole response.
func (t Target) send(ctx context.Context) outcome {
	seq := t.Seq.Next()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"?"+SeqParameter+"="+strconv.FormatInt(seq, 10), nil)
	if err != nil {
		return outcome{err: fmt.Errorf("building request to %s: %w", t.URL, err)}
	}
	start := time.Now()
	resp, err := t.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// The run ended while the request was in flight.
			return outcome{}
		}
		return outcome{err: err}
	}
	_, copyErr := io.Copy(io.Discard, resp.Body)
	closeErr := resp.Body.Close()
	at := time.Now()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return outcome{err: fmt.Errorf("GET %s?%s=%d: status %d", t.URL, SeqParameter, seq, resp.StatusCode)}
	}
	if err := errors.Join(copyErr, closeErr); err != nil {
		return outcome{err: fmt.Errorf("reading response of GET %s?%s=%d: %w", t.URL, SeqParameter, seq, err)}
	}
	return outcome{done: Done{Seq: seq, Latency: at.Sub(start), At: at}}
}

// collector gathers the outcomes of one goroutine.
type collector struct {
	succeeded []Done
	failed    int
	firstErr  error
}

func (c *collector) record(o outcome) {
	switch {
	case o.err != nil:
		c.failed++
		if c.firstErr == nil {
			c.firstErr = o.err
		}
	case o.done.Seq != 0:
		c.succeeded = append(c.succeeded, o.done)
	}
}

func merge(collectors []collector, elapsed time.Duration, late int) *Result {
	res := &Result{Elapsed: elapsed, Late: late}
	for _, c := range collectors {
		res.Succeeded = append(res.Succeeded, c.succeeded...)
		res.Failed += c.failed
		if res.FirstError == nil {
			res.FirstError = c.firstErr
		}
	}
	slices.SortFunc(res.Succeeded, func(a, b Done) int { return cmp.Compare(a.Latency, b.Latency) })
	return res
}

func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
