// Command load measures this project's Caddy under load on one machine.
// It reports the overhead of the webhooks handler against a plain
// reverse_proxy, the latency from an API call to its webhook, how fast a
// backlog of stored events drains, what a failing endpoint costs a healthy
// one, and Caddy's memory. It builds cmd/caddy, runs it and a small JSON API
// as child processes, and sends every request and webhook over 127.0.0.1.
//
// Run it from the module's directory:
//
//	go run ./bench/load                      # every scenario but profile
//	go run ./bench/load -scenarios compare   # one scenario
//	go run ./bench/load -smoke               # a few seconds, checks only that every event arrives
//
// It prints a report and exits with status 1 when an event was lost or a
// scenario failed. Speeds are reported, never asserted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// allScenarios lists the scenarios in the order they run.
var allScenarios = []string{"compare", "latency", "drain", "failing", "rss", "profile"}

// options are the settings of one run of the harness.
type options struct {
	scenarios []string
	smoke     bool

	// Closed-loop load.
	connections   int
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	settleTimeout time.Duration

	// latency
	latencyRate     float64
	latencyDuration time.Duration

	// drain
	drainEvents      int
	drainConcurrency []int
	drainTimeout     time.Duration

	// failing
	failingEvents      int
	failingConcurrency int
	failingRounds      int

	// rss
	idleWait       time.Duration
	rssLoad        time.Duration
	pendingEvents  int
	pendingTimeout time.Duration
	pendingWait    time.Duration

	// profile
	profileSeconds int

	caddyBinary string
	raceCaddy   bool
	goMemLimit  string
	workDir     string
	keep        bool
	jsonPath    string
}

// memoryLimitPattern matches the values of GOMEMLIMIT that the Go runtime
// accepts, except "off", which is the default.
var memoryLimitPattern = regexp.MustCompile(`^[0-9]+(B|KiB|MiB|GiB|TiB)?$`)

// defaultOptions returns the settings of a full run.
func defaultOptions() options {
	return options{
		scenarios:          slices.DeleteFunc(slices.Clone(allScenarios), func(s string) bool { return s == "profile" }),
		connections:        32,
		rounds:             5,
		duration:           10 * time.Second,
		warmup:             2 * time.Second,
		settleTimeout:      2 * time.Minute,
		latencyRate:        1000,
		latencyDuration:    30 * time.Second,
		drainEvents:        100_000,
		drainConcurrency:   []int{1, 16, 64},
		drainTimeout:       5 * time.Minute,
		failingEvents:      50_000,
		failingConcurrency: 64,
		failingRounds:      2,
		idleWait:           5 * time.Second,
		rssLoad:            20 * time.Second,
		pendingEvents:      1_000_000,
		pendingTimeout:     10 * time.Minute,
		pendingWait:        135 * time.Second,
		profileSeconds:     15,
	}
}

// smokeOptions returns the settings of -smoke: every scenario but profile
// with a few hundred events, a few seconds in all.
func smokeOptions() options {
	o := defaultOptions()
	o.smoke = true
	o.connections = 8
	o.rounds = 1
	o.duration = time.Second
	o.warmup = 200 * time.Millisecond
	o.settleTimeout = 30 * time.Second
	o.latencyRate = 200
	o.latencyDuration = time.Second
	o.drainEvents = 300
	o.drainConcurrency = []int{16}
	o.drainTimeout = 30 * time.Second
	o.failingEvents = 200
	o.failingConcurrency = 16
	o.failingRounds = 1
	o.idleWait = 500 * time.Millisecond
	o.rssLoad = time.Second
	o.pendingEvents = 500
	o.pendingTimeout = 30 * time.Second
	o.pendingWait = 0
	return o
}

func main() {
	if os.Getenv(apiRoleEnv) != "" {
		if err := serveAPI(); err != nil {
			fmt.Fprintln(os.Stderr, "load: serving the JSON API:", err)
			os.Exit(1)
		}
		return
	}

	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line. -smoke replaces the defaults, and
// flags given with it still apply on top.
func parseFlags(args []string) (options, error) {
	opts := defaultOptions()
	if slices.Contains(args, "-smoke") || slices.Contains(args, "--smoke") {
		opts = smokeOptions()
	}

	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	scenarios := fs.String("scenarios", strings.Join(opts.scenarios, ","), "comma-separated scenarios to run, of: "+strings.Join(allScenarios, ", "))
	fs.BoolVar(&opts.smoke, "smoke", opts.smoke, "run every scenario but profile with a few hundred events, and check only that every event arrives")
	fs.IntVar(&opts.connections, "connections", opts.connections, "connections of the closed-loop load generator")
	fs.IntVar(&opts.rounds, "rounds", opts.rounds, "rounds of the compare scenario, each running the sites A, B and C in turn")
	fs.DurationVar(&opts.duration, "duration", opts.duration, "measured load per site and round in the compare scenario, and the load of the profile scenario")
	fs.DurationVar(&opts.warmup, "warmup", opts.warmup, "unmeasured load before each measured one")
	fs.DurationVar(&opts.settleTimeout, "settle-timeout", opts.settleTimeout, "maximum wait for the events of a load to be stored or delivered")
	fs.Float64Var(&opts.latencyRate, "latency-rate", opts.latencyRate, "requests per second of the latency scenario")
	fs.DurationVar(&opts.latencyDuration, "latency-duration", opts.latencyDuration, "measured time of the latency scenario")
	fs.IntVar(&opts.drainEvents, "drain-events", opts.drainEvents, "events stored before a backlog drain starts, in the drain and profile scenarios")
	drainConcurrency := fs.String("drain-concurrency", joinInts(opts.drainConcurrency), "comma-separated endpoint concurrencies of the drain scenario")
	fs.DurationVar(&opts.drainTimeout, "drain-timeout", opts.drainTimeout, "maximum time of one backlog drain; the events delivered by then are reported")
	fs.IntVar(&opts.failingEvents, "failing-events", opts.failingEvents, "events stored before each drain of the failing scenario")
	fs.IntVar(&opts.failingConcurrency, "failing-concurrency", opts.failingConcurrency, "concurrency of both endpoints in the failing scenario")
	fs.IntVar(&opts.failingRounds, "failing-rounds", opts.failingRounds, "rounds of the failing scenario, each draining with the healthy endpoint alone and then beside the failing one")
	fs.DurationVar(&opts.idleWait, "idle-wait", opts.idleWait, "time Caddy sits idle after its start before the idle memory is read")
	fs.DurationVar(&opts.rssLoad, "rss-load", opts.rssLoad, "load time of the memory-under-load reading")
	fs.IntVar(&opts.pendingEvents, "pending-events", opts.pendingEvents, "events to leave pending for the memory reading; the count reached within -pending-timeout is reported")
	fs.DurationVar(&opts.pendingTimeout, "pending-timeout", opts.pendingTimeout, "maximum time to fill the pending events")
	fs.DurationVar(&opts.pendingWait, "pending-wait", opts.pendingWait, "wait after the pending fill before memory is read again; JetStream forgets event message ids after 30 seconds")
	fs.IntVar(&opts.profileSeconds, "profile-seconds", opts.profileSeconds, "length of each CPU profile of the profile scenario, in seconds")
	fs.StringVar(&opts.caddyBinary, "caddy", "", "use this Caddy binary instead of building cmd/caddy")
	fs.StringVar(&opts.goMemLimit, "gomemlimit", "", "GOMEMLIMIT of the Caddy processes, such as 150MiB: the heap size from which Go's garbage collector works harder; default: none")
	fs.StringVar(&opts.workDir, "workdir", "", "directory for Caddy's files, logs and profiles; default: a new temporary directory")
	fs.BoolVar(&opts.keep, "keep", false, "keep the work directory, with Caddy's logs and the profiles, after the run")
	fs.StringVar(&opts.jsonPath, "json", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q: every setting is a flag (see -help)", fs.Arg(0))
	}

	var err error
	if opts.scenarios, err = parseScenarios(*scenarios); err != nil {
		return options{}, err
	}
	if opts.drainConcurrency, err = parseInts(*drainConcurrency); err != nil {
		return options{}, fmt.Errorf("invalid -drain-concurrency %q: %w", *drainConcurrency, err)
	}
	if err := opts.validate(); err != nil {
		return options{}, err
	}
	return opts, nil
}

func (o options) validate() error {
	switch {
	case o.goMemLimit != "" && !memoryLimitPattern.MatchString(o.goMemLimit):
		return fmt.Errorf("invalid -gomemlimit %q: use a number of bytes with an optional unit B, KiB, MiB, GiB or TiB, such as 150MiB", o.goMemLimit)
	case o.connections < 1:
		return fmt.Errorf("invalid -connections %d: use at least 1", o.connections)
	case o.rounds < 1:
		return fmt.Errorf("invalid -rounds %d: use at least 1", o.rounds)
	case o.duration <= 0:
		return fmt.Errorf("invalid -duration %s: use a positive duration such as 10s", o.duration)
	case o.warmup < 0:
		return fmt.Errorf("invalid -warmup %s: use 0 or a positive duration", o.warmup)
	case o.latencyRate <= 0 || o.latencyDuration <= 0:
		return fmt.Errorf("invalid -latency-rate %v or -latency-duration %s: both must be positive", o.latencyRate, o.latencyDuration)
	case o.drainEvents < 1 || o.failingEvents < 1 || o.pendingEvents < 1:
		return fmt.Errorf("invalid event count (-drain-events %d, -failing-events %d, -pending-events %d): use at least 1",
			o.drainEvents, o.failingEvents, o.pendingEvents)
	case o.failingConcurrency < 1 || o.failingRounds < 1:
		return fmt.Errorf("invalid -failing-concurrency %d or -failing-rounds %d: use at least 1", o.failingConcurrency, o.failingRounds)
	case o.profileSeconds < 1:
		return fmt.Errorf("invalid -profile-seconds %d: use at least 1", o.profileSeconds)
	}
	for _, c := range o.drainConcurrency {
		if c < 1 || c > 256 {
			return fmt.Errorf("invalid -drain-concurrency value %d: endpoints take 1 to 256", c)
		}
	}
	return nil
}

func parseScenarios(list string) ([]string, error) {
	var scenarios []string
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(allScenarios, name) {
			return nil, fmt.Errorf("unknown scenario %q: use %s", name, strings.Join(allScenarios, ", "))
		}
		scenarios = append(scenarios, name)
	}
	if len(scenarios) == 0 {
		return nil, fmt.Errorf("no scenario selected: use -scenarios with some of %s", strings.Join(allScenarios, ", "))
	}
	return scenarios, nil
}

func parseInts(list string) ([]int, error) {
	var values []int
	for field := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", field)
		}
		values = append(values, n)
	}
	return values, nil
}

func joinInts(values []int) string {
	fields := make([]string, len(values))
	for i, v := range values {
		fields[i] = strconv.Itoa(v)
	}
	return strings.Join(fields, ",")
}
