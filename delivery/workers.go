package delivery

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// Options are the parts of the app that the workers use.
type Options struct {
	// Logger receives one line per attempt and the lifecycle messages. Nil
	// discards them.
	Logger *zap.Logger

	// RemoveStale lets Start delete the "dest_" consumers of endpoints that
	// are not in its list, with the events still waiting in them. Set it
	// only when no other config uses the broker, such as at the first start
	// of the process. During a config reload Caddy starts the new config
	// before the reload is certain to succeed, so the consumers of the
	// running config must stay until Reconcile runs for the config that
	// remains. Default: false, which creates and updates consumers only.
	RemoveStale bool

	Hooks Hooks
}

// Hooks are called after each attempt, for metrics. Any of them may be nil.
// They run on the worker goroutines and must return quickly.
type Hooks struct {
	// Attempted is called once per attempt with the outcome ("success",
	// "retry", "dead_letter" or "disabled") and the attempt's duration.
	Attempted func(destination, outcome string, latency time.Duration)

	// DeadLettered is called after a dead letter is stored, with that
	// dead letter.
	DeadLettered func(dead *DeadLetter)

	// Disabled is called when this instance disables an endpoint, after a
	// 410 response or when it failed for longer than its DisableAfter,
	// with the reason stored in the state bucket.
	Disabled func(destination, reason string)
}

// Workers deliver the events of a set of endpoints until Drain or Stop.
type Workers struct {
	logger  *zap.Logger
	js      jetstream.JetStream
	layout  emitter.Layout
	runners []*runner

	// delivered counts successful deliveries per event type until the
	// next flush.
	delivered *deliveredCounts

	// records stores the attempt records of every runner.
	records *recordWriter

	// cancelFlush ends the loop that stores health records and counts.
	// The final flush follows the last attempt.
	cancelFlush   context.CancelFunc
	flushDone     chan struct{}
	flushStopOnce sync.Once

	// cancelFetch stops fetching; cancelAttempts also aborts the HTTP
	// requests in flight.
	cancelFetch    context.CancelFunc
	cancelAttempts context.CancelFunc

	wg        sync.WaitGroup
	drainOnce sync.Once
	stopOnce  sync.Once
}

// Start creates or updates the durable consumer "dest_<name>" on the events
// stream of layout for each endpoint, and with opts.RemoveStale deletes the "dest_"
// consumers of other endpoints. It re-enables an endpoint that a 410
// response disabled when its URL has changed since. Then it starts one
// fetch loop per endpoint, which runs up to Concurrency attempts at a time.
// The endpoints must be provisioned, and the streams and the state bucket
// of layout must exist (see emitter.EnsureStreams). ctx bounds the setup
// only; the workers run until Drain or Stop.
func Start(ctx context.Context, js jetstream.JetStream, layout emitter.Layout, endpoints []*Endpoint, opts Options) (*Workers, error) {
	if err := checkEndpoints(endpoints); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}

	stream, err := eventsStream(ctx, js, layout)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, layout.StateBucket())
	if err != nil {
		return nil, fmt.Errorf("opening key-value bucket %s: %w; create it with emitter.EnsureStreams before starting delivery", layout.StateBucket(), err)
	}
	consumers, err := reconcileConsumers(ctx, stream, layout, endpoints, opts.RemoveStale, logger)
	if err != nil {
		return nil, err
	}
	for _, e := range endpoints {
		if err := enableIfURLChanged(ctx, kv, e, logger); err != nil {
			return nil, err
		}
	}

	fetchCtx, cancelFetch := context.WithCancel(context.Background())
	attemptCtx, cancelAttempts := context.WithCancel(context.Background())
	w := &Workers{
		logger:         logger,
		js:             js,
		layout:         layout,
		delivered:      new(deliveredCounts),
		records:        newRecordWriter(js, layout, logger),
		cancelFetch:    cancelFetch,
		cancelAttempts: cancelAttempts,
	}
	for i, e := range endpoints {
		r := newRunner(e, js, layout, kv, consumers[i], logger, opts.Hooks)
		r.delivered = w.delivered
		r.records = w.records
		watcher, state, err := watchState(ctx, fetchCtx, kv, e.Name)
		if err != nil {
			w.abort()
			return nil, fmt.Errorf("endpoint %q: %w", e.Name, err)
		}
		if err := r.loadHealth(ctx, state); err != nil {
			_ = watcher.Stop()
			w.abort()
			return nil, err
		}
		r.gate = newGate(state.delivers())
		r.attemptCtx = attemptCtx
		w.runners = append(w.runners, r)
		w.wg.Go(func() { r.followState(fetchCtx, watcher) })
		w.wg.Go(func() { r.fetch(&w.wg, fetchCtx, attemptCtx) })
		r.logStart(state)
	}
	w.startFlushing()
	activate(w.runners)
	return w, nil
}

// Drain stops fetching events and returns at once, for a config reload.
// The attempts in flight, and those of events that arrive for pull requests
// still open, finish in the background and settle as usual, so the NATS
// connection must stay open until they are done. Stop may follow to bound
// the wait. Later calls do nothing.
func (w *Workers) Drain() {
	w.drainOnce.Do(func() {
		deactivate(w.runners)
		w.cancelFetch()
		go func() {
			w.wg.Wait()
			w.cancelAttempts()
			w.stopFlushing()
			w.flushSettlements()
			w.closeIdleConnections()
		}()
	})
}

// Stop stops fetching events and waits up to timeout for the attempts in
// flight, an event waiting for the rate limit among them, and for the open
// pull requests, which end within about a second.
// Attempts still running then are aborted and their events released for
// redelivery, without waiting for that to finish. Later calls do nothing.
func (w *Workers) Stop(timeout time.Duration) {
	w.stopOnce.Do(func() {
		deactivate(w.runners)
		w.cancelFetch()
		if !w.waitFor(timeout) {
			w.logger.Warn("workers still busy after the stop timeout; aborting attempts in flight",
				zap.Duration("timeout", timeout))
		}
		w.cancelAttempts()
		w.stopFlushing()
		w.flushSettlements()
		w.closeIdleConnections()
	})
}

// flushSettlements waits up to publishTimeout for the attempt records
// still unconfirmed and for the connection to send the Acks and Naks of
// the last attempts, which the workers send without waiting.
func (w *Workers) flushSettlements() {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if !w.records.wait(ctx) {
		w.logger.Warn("attempt records still unconfirmed at stop; they may be missing from the attempt log",
			zap.Duration("timeout", publishTimeout))
	}
	if err := w.js.Conn().FlushWithContext(ctx); err != nil {
		w.logger.Warn("flushing acknowledgements at stop failed; JetStream delivers the affected events again after the ack wait",
			zap.Error(err))
	}
}

// abort stops the workers of a Start that failed half-way.
func (w *Workers) abort() {
	w.stopOnce.Do(func() {
		deactivate(w.runners)
		w.cancelFetch()
		w.cancelAttempts()
		w.wg.Wait()
		w.closeIdleConnections()
	})
}

func (w *Workers) closeIdleConnections() {
	for _, r := range w.runners {
		r.client.CloseIdleConnections()
	}
}

// waitFor waits up to timeout for every worker to return and reports whether
// they did.
func (w *Workers) waitFor(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}

// runner delivers the events of one endpoint.
type runner struct {
	name          string
	js            jetstream.JetStream
	layout        emitter.Layout
	kv            jetstream.KeyValue
	consumer      jetstream.Consumer
	client        *http.Client
	sender        *sender
	mail          *mailSender   // set for e-mail destinations, which do not use sender
	slots         chan struct{} // one element per attempt in flight
	limiter       *rate.Limiter // nil when Rate is 0
	retry         []time.Duration
	retryAfterMax time.Duration
	ackWait       time.Duration
	gate          *gate
	logger        *zap.Logger
	hooks         Hooks
	endpoint      *Endpoint

	// health tracks successes and failures for DisableAfter, and
	// disabling serializes the disables of the runner's attempts.
	health       *healthTracker
	disableAfter time.Duration
	disabling    sync.Mutex
	breaker      breaker

	delivered *deliveredCounts
	records   *recordWriter

	// attemptCtx ends when this runner's attempts are aborted.
	attemptCtx context.Context
}

func newRunner(e *Endpoint, js jetstream.JetStream, layout emitter.Layout, kv jetstream.KeyValue, consumer jetstream.Consumer, logger *zap.Logger, hooks Hooks) *runner {
	client := newHTTPClient(e.clientPolicy())
	r := &runner{
		name:     e.Name,
		js:       js,
		layout:   layout,
		kv:       kv,
		consumer: consumer,
		client:   client,
		mail:     e.mail,
		sender: &sender{
			client:          client,
			url:             e.URL,
			headers:         e.headers,
			signer:          NewSigner(e.secrets),
			signingKeys:     e.signingKeys,
			timeout:         time.Duration(e.Timeout),
			followRedirects: e.FollowRedirects,
			format:          e.Format,
		},
		slots:         make(chan struct{}, e.Concurrency),
		retry:         e.retryDelays(),
		retryAfterMax: time.Duration(e.RetryAfterMax),
		ackWait:       time.Duration(e.Timeout) + ackWaitMargin,
		logger:        logger,
		hooks:         hooks,
		endpoint:      e,
		health:        new(healthTracker),
		disableAfter:  e.disableAfter(),
		delivered:     new(deliveredCounts),
	}
	if e.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(e.Rate), 1)
	}
	return r
}

func (r *runner) logStart(state EndpointState) {
	host := ""
	if u, err := url.Parse(r.endpoint.URL); err == nil {
		host = u.Host
	}
	r.logger.Info("delivering webhooks",
		zap.String("destination", r.name),
		zap.String("host", host),
		zap.Strings("events", r.endpoint.Events),
		zap.Int("concurrency", r.endpoint.Concurrency),
		zap.Bool("ordered", r.endpoint.Ordered),
		zap.Bool("allow_private", r.endpoint.allowPrivate()),
		zap.Strings("allow_hosts", r.endpoint.allowHosts()),
		zap.String("proxy", proxyHost(r.endpoint.proxyURL)),
		zap.String("state", state.State))
	if r.mail == nil && len(r.endpoint.secrets) == 0 && len(r.sender.signingKeys) == 0 && !isChatFormat(r.endpoint.Format) {
		r.logger.Warn("endpoint has no signing secret or signing key; webhooks are sent unsigned",
			zap.String("destination", r.name))
	}
	// Receivers verify v1a signatures with these public keys, which are
	// not secret.
	for i, key := range r.sender.signingKeys {
		r.logger.Info("signing webhooks with ed25519",
			zap.String("destination", r.name),
			zap.Int("signing_key", i+1),
			zap.String("public_key", FormatPublicKey(key.Public().(ed25519.PublicKey))))
	}
}

// fetchErrorPause is the wait after a failed pull request, so a broken
// connection does not turn the fetch loop into a busy loop.
const fetchErrorPause = time.Second

// fetchWait is how long one pull request waits for an event. Pull requests
// are never canceled, because an event that JetStream sends to a canceled
// request is dropped by the client and redelivered only after AckWait. So
// Stop and a disabled endpoint wait up to this long for the open request.
// Tests shorten it.
var fetchWait = time.Second

// releaseDelay returns the wait before an event released by a disabled
// endpoint is delivered again. By then the pull request open at the time of
// release has expired, so the event is not fetched and released once more.
func releaseDelay() time.Duration {
	return 2 * fetchWait
}

// fetch requests events only while slots for attempts are free, and
// delivers each on a goroutine of a worker pool tracked by wg. Once one
// slot is free, it takes every other free slot without blocking and
// fetches that many events with one pull request, so the round trip is
// shared. An event is handed to
// its goroutine as soon as it arrives, so no event waits in a client buffer,
// where its AckWait would run, and at most Concurrency attempts are in
// flight. It returns when fetchCtx ends.
//
// A long-lived pull subscription (Consume or Messages) would save the
// request per batch, but it keeps requesting events ahead of free slots and
// buffers them in the client, which that rule forbids.
func (r *runner) fetch(wg *sync.WaitGroup, fetchCtx, attemptCtx context.Context) {
	pool := &workerPool{runner: r, wg: wg, jobs: make(chan attemptJob)}
	defer close(pool.jobs)

	failing := false
	for {
		if !r.gate.wait(fetchCtx) || !r.waitForProbe(fetchCtx) {
			return
		}
		batch, ok := r.acquireSlots(fetchCtx)
		if !ok {
			return
		}

		events, err := r.consumer.Fetch(batch, jetstream.FetchMaxWait(fetchWait))
		if err == nil {
			var received int
			received, err = r.dispatch(pool, events, fetchCtx, attemptCtx)
			r.releaseSlots(batch - received)
		} else {
			r.releaseSlots(batch)
		}
		if err != nil && !isFetchTimeout(err) {
			if !failing {
				r.logger.Warn("fetching events failed; retrying every second until it works",
					zap.String("destination", r.name),
					zap.Error(err))
				failing = true
			}
			sleep(fetchCtx, fetchErrorPause)
			continue
		}
		if failing && err == nil {
			r.logger.Info("fetching events works again", zap.String("destination", r.name))
			failing = false
		}
	}
}

// dispatch starts an attempt for each event of the batch as it arrives and
// returns the number of events received, each of which took one slot, and
// the error that ended the pull request, if any. A canceled fetchCtx does
// not end the batch early, because JetStream still sends its events.
func (r *runner) dispatch(pool *workerPool, events jetstream.MessageBatch, fetchCtx, attemptCtx context.Context) (int, error) {
	received := 0
	for msg := range events.Messages() {
		received++

		// A pull request still open when a reload drained this runner can
		// bring more events. The runner of the config now running
		// delivers them, so they go out with that config's URL, secrets
		// and headers.
		target, targetCtx := r, attemptCtx
		if fetchCtx.Err() != nil {
			if successor := activeRunner(r.name); successor != nil {
				target, targetCtx = successor, successor.attemptCtx
			}
		}
		if !target.ready(targetCtx, msg) {
			<-r.slots
			continue
		}
		pool.start(attemptJob{target: target, ctx: targetCtx, msg: msg})
	}
	return received, events.Error()
}

// acquireSlots waits for one free slot, then takes every other free slot
// without waiting, up to the batch size that batchLimit allows. It returns
// the number of slots taken, or false when ctx ends first.
func (r *runner) acquireSlots(ctx context.Context) (int, bool) {
	if !r.acquireSlot(ctx) {
		return 0, false
	}
	taken, limit := 1, r.batchLimit()
	for taken < limit {
		select {
		case r.slots <- struct{}{}:
			taken++
		default:
			return taken, true
		}
	}
	return taken, true
}

// batchLimit returns the maximum number of events of one pull request. A
// rate limit makes ready wait between events, so with a limit the batch is
// one event, which then does not wait in the client buffer behind others.
// An open breaker allows a single probe.
func (r *runner) batchLimit() int {
	if r.limiter != nil || r.breaker.isOpen() {
		return 1
	}
	return cap(r.slots)
}

func (r *runner) releaseSlots(n int) {
	for range n {
		<-r.slots
	}
}

func (r *runner) acquireSlot(ctx context.Context) bool {
	select {
	case r.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// ready waits for the rate limit and reports whether msg may be attempted
// now. Otherwise it releases msg: at once when Stop aborts the attempts, so
// other instances can take it, or after releaseDelay when the endpoint was
// disabled meanwhile. Drain lets the wait go on, because a fetched event is
// an attempt in flight.
func (r *runner) ready(attemptCtx context.Context, msg jetstream.Msg) bool {
	if r.waitRate(attemptCtx, msg) != nil {
		r.release(msg, 0)
		return false
	}
	if !r.gate.isOpen() {
		r.release(msg, releaseDelay())
		return false
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// activeRunners holds, per endpoint name, the runners that are neither
// drained nor stopped, in start order. During a reload the old and the new
// config each have one.
var activeRunners = struct {
	sync.Mutex
	byName map[string][]*runner
}{byName: make(map[string][]*runner)}

func activate(runners []*runner) {
	activeRunners.Lock()
	defer activeRunners.Unlock()
	for _, r := range runners {
		activeRunners.byName[r.name] = append(activeRunners.byName[r.name], r)
	}
}

func deactivate(runners []*runner) {
	activeRunners.Lock()
	defer activeRunners.Unlock()
	for _, r := range runners {
		remaining := slices.DeleteFunc(activeRunners.byName[r.name], func(other *runner) bool { return other == r })
		if len(remaining) == 0 {
			delete(activeRunners.byName, r.name)
		} else {
			activeRunners.byName[r.name] = remaining
		}
	}
}

// activeRunner returns the most recently started active runner for the
// endpoint name, or nil if there is none.
func activeRunner(name string) *runner {
	activeRunners.Lock()
	defer activeRunners.Unlock()
	runners := activeRunners.byName[name]
	if len(runners) == 0 {
		return nil
	}
	return runners[len(runners)-1]
}
