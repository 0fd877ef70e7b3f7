package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/template"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/caddyproc"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/jsonapi"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/loadgen"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/procstat"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/promtext"
	"github.com/caddy-webhooks/caddy-webhooks/bench/internal/receiver"
	"github.com/caddy-webhooks/caddy-webhooks/internal/freeport"
)

// apiRoleEnv, when set, makes the harness binary serve the JSON API instead
// of running the scenarios. The harness starts itself that way, so the
// API's CPU use stays out of the load generator's process.
const apiRoleEnv = "CADDY_WEBHOOKS_BENCH_API"

// Event types of the sites: storedEvent has no subscriber, deliveredEvent
// goes to every endpoint.
const (
	storedEvent    = "bench.stored"
	deliveredEvent = "bench.delivered"
)

// stopTimeout bounds a graceful stop of Caddy before it is killed.
const stopTimeout = 30 * time.Second

// env is the state shared by the scenarios of one run.
type env struct {
	opts    options
	out     io.Writer
	workDir string
	binary  string
	apiAddr string
	seq     loadgen.Sequence
	secret  string
	results *results

	deployments int
}

// run builds Caddy, starts the JSON API and runs the selected scenarios.
func run(ctx context.Context, opts options, out io.Writer) (err error) {
	e := &env{opts: opts, out: out, results: newResults(opts)}
	if e.workDir, err = makeWorkDir(opts.workDir); err != nil {
		return err
	}
	defer func() {
		if opts.keep || opts.workDir != "" {
			fmt.Fprintf(out, "\nwork directory kept: %s\n", e.workDir)
			return
		}
		if removeErr := os.RemoveAll(e.workDir); removeErr != nil {
			err = errors.Join(err, fmt.Errorf("removing work directory: %w", removeErr))
		}
	}()

	e.printMachine()
	if e.binary, err = e.caddyBinary(ctx); err != nil {
		return err
	}
	if e.secret, err = newSecret(); err != nil {
		return err
	}
	stopAPI, err := e.startAPI()
	if err != nil {
		return err
	}
	defer stopAPI()

	scenarios := map[string]func(context.Context) error{
		"compare": e.compare,
		"latency": e.latency,
		"drain":   e.drain,
		"failing": e.failing,
		"rss":     e.rss,
		"profile": e.profile,
	}
	var failures []error
	for _, name := range opts.scenarios {
		if ctx.Err() != nil {
			failures = append(failures, ctx.Err())
			break
		}
		fmt.Fprintf(out, "\n== %s (load average before: %s)\n", name, loadAverage())
		start := time.Now()
		if err := scenarios[name](ctx); err != nil {
			fmt.Fprintf(out, "FAILED: %v\n", err)
			failures = append(failures, fmt.Errorf("scenario %s: %w", name, err))
		}
		fmt.Fprintf(out, "load average after: %s; the scenario took %s\n", loadAverage(), time.Since(start).Round(100*time.Millisecond))
	}

	if opts.jsonPath != "" {
		if err := e.results.write(opts.jsonPath); err != nil {
			failures = append(failures, err)
		}
	}
	return errors.Join(failures...)
}

func makeWorkDir(dir string) (string, error) {
	if dir == "" {
		created, err := os.MkdirTemp("", "caddy-webhooks-load-")
		if err != nil {
			return "", fmt.Errorf("creating work directory: %w", err)
		}
		return created, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating work directory %q: %w", dir, err)
	}
	return filepath.Abs(dir)
}

// printMachine prints what the numbers depend on.
func (e *env) printMachine() {
	goVersion := runtime.Version()
	if out, err := exec.Command("go", "version").Output(); err == nil {
		goVersion = strings.TrimSpace(string(out))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(e.out, "machine: %d CPUs (%s), kernel %s, %s\n",
		runtime.NumCPU(), cpuModel(), strings.TrimSpace(string(kernel)), goVersion)
	fmt.Fprintf(e.out, "load average at start: %s\n", loadAverage())
	if e.opts.goMemLimit != "" {
		fmt.Fprintf(e.out, "Caddy runs with GOMEMLIMIT=%s\n", e.opts.goMemLimit)
	}
	e.results.Machine = machineInfo{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), Kernel: strings.TrimSpace(string(kernel)), Go: goVersion, GoMemLimit: e.opts.goMemLimit}
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}

func loadAverage() string {
	load, err := procstat.LoadAverage()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	fields := strings.Fields(load)
	return strings.Join(fields[:min(3, len(fields))], " ")
}

func (e *env) caddyBinary(ctx context.Context) (string, error) {
	if e.opts.caddyBinary != "" {
		return e.opts.caddyBinary, nil
	}
	start := time.Now()
	binary, err := caddyproc.Build(ctx, e.workDir, e.opts.raceCaddy)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(e.out, "built %s in %s\n", caddyproc.Package, time.Since(start).Round(100*time.Millisecond))
	return binary, nil
}

// newSecret returns a random Standard Webhooks signing secret.
func newSecret() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("making a signing secret: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key), nil
}

// serveAPI serves the JSON API on a port of 127.0.0.1 picked by the kernel.
// It prints the address as the first line of standard output and exits
// when standard input closes, which happens when the harness ends.
func serveAPI() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	server := &http.Server{Handler: jsonapi.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return server.Serve(ln)
}

// startAPI starts the JSON API as a child process and returns the function
// that stops it.
func (e *env) startAPI() (func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary to start the JSON API: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), apiRoleEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = caddyproc.ChildAttributes()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the JSON API process: %w", err)
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}

	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case e.apiAddr = <-addr:
	case <-time.After(30 * time.Second):
		stop()
		return nil, errors.New("the JSON API process printed no address within 30s")
	}
	if _, _, err := net.SplitHostPort(e.apiAddr); err != nil {
		stop()
		return nil, fmt.Errorf("the JSON API process printed %q instead of its address", e.apiAddr)
	}
	return stop, nil
}

// endpointSpec is one webhook endpoint of a deployment. All endpoints
// subscribe to deliveredEvent.
type endpointSpec struct {
	name        string
	receiver    *receiver.Receiver
	concurrency int
	timeout     time.Duration
}

// deployment is one Caddy with three sites in front of the JSON API:
// plain is a reverse_proxy only, stored emits storedEvent for every
// request, and delivered emits deliveredEvent. A plain deployment has the
// first site only, and empty URLs for the others.
type deployment struct {
	proc                        *caddyproc.Process
	plainURL, storedURL, delURL string
	name                        string
}

var caddyfileTemplate = template.Must(template.New("Caddyfile").Option("missingkey=error").Parse(`{
	admin {{.Admin}}
	persist_config off
	auto_https off
	grace_period 2s
{{- if .Webhooks}}
	webhooks {
		nats embedded {
			store_dir {{.StoreDir}}
		}
{{- range .Endpoints}}
		endpoint {{.Name}} {{.URL}} {
			events ` + deliveredEvent + `
			secret {{$.Secret}}
			concurrency {{.Concurrency}}
			timeout {{.Timeout}}
			allow_private
		}
{{- end}}
	}
{{- end}}
}

http://127.0.0.1:{{.PlainPort}} {
	bind 127.0.0.1
	reverse_proxy {{.API}}
}
{{- if .Webhooks}}

http://127.0.0.1:{{.StoredPort}} {
	bind 127.0.0.1
	webhooks {
		event ` + storedEvent + ` {
			path ` + jsonapi.ItemsPath + `*
		}
	}
	reverse_proxy {{.API}}
}

http://127.0.0.1:{{.DeliveredPort}} {
	bind 127.0.0.1
	webhooks {
		event ` + deliveredEvent + ` {
			path ` + jsonapi.ItemsPath + `*
		}
	}
	reverse_proxy {{.API}}
}
{{- end}}
`))

// deploy starts a Caddy with a new store and the given endpoints.
func (e *env) deploy(ctx context.Context, name string, endpoints []endpointSpec) (*deployment, error) {
	return e.startCaddy(ctx, name, endpoints, true)
}

// deployPlain starts the same Caddy binary with site A alone and no
// webhooks app: the baseline of the memory readings.
func (e *env) deployPlain(ctx context.Context, name string) (*deployment, error) {
	return e.startCaddy(ctx, name, nil, false)
}

// startCaddy renders the Caddyfile of a deployment and starts Caddy with
// it. Without webhooks, only the plain site is configured.
func (e *env) startCaddy(ctx context.Context, name string, endpoints []endpointSpec, webhooks bool) (*deployment, error) {
	e.deployments++
	dir := filepath.Join(e.workDir, fmt.Sprintf("%02d-%s", e.deployments, name))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating directory of deployment %s: %w", name, err)
	}
	ports, err := freeport.Pick(4)
	if err != nil {
		return nil, err
	}

	type endpointData struct {
		Name, URL, Timeout string
		Concurrency        int
	}
	var eps []endpointData
	for _, ep := range endpoints {
		eps = append(eps, endpointData{
			Name:        ep.name,
			URL:         ep.receiver.URL,
			Timeout:     fmt.Sprintf("%ds", int(ep.timeout.Seconds())),
			Concurrency: ep.concurrency,
		})
	}
	var config strings.Builder
	err = caddyfileTemplate.Execute(&config, map[string]any{
		"Admin":         fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"Webhooks":      webhooks,
		"StoreDir":      filepath.Join(dir, "nats"),
		"Endpoints":     eps,
		"Secret":        e.secret,
		"PlainPort":     ports[1],
		"StoredPort":    ports[2],
		"DeliveredPort": ports[3],
		"API":           e.apiAddr,
	})
	if err != nil {
		return nil, fmt.Errorf("rendering Caddyfile: %w", err)
	}

	ready := caddyproc.ReadyMessage
	if !webhooks {
		ready = caddyproc.PlainReadyMessage
	}
	proc, err := caddyproc.Start(ctx, caddyproc.Options{
		Binary:    e.binary,
		Dir:       dir,
		Caddyfile: config.String(),
		Admin:     fmt.Sprintf("127.0.0.1:%d", ports[0]),
		Ready:     ready,
		Env:       e.caddyEnv(),
	})
	if err != nil {
		return nil, fmt.Errorf("starting Caddy for %s: %w", name, err)
	}
	site := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d%s1", port, jsonapi.ItemsPath) }
	d := &deployment{proc: proc, name: name, plainURL: site(ports[1])}
	if webhooks {
		d.storedURL, d.delURL = site(ports[2]), site(ports[3])
	}
	return d, nil
}

// caddyEnv returns the extra environment of the Caddy processes.
func (e *env) caddyEnv() []string {
	if e.opts.goMemLimit == "" {
		return nil
	}
	return []string{"GOMEMLIMIT=" + e.opts.goMemLimit}
}

// stop stops Caddy and reports a failed graceful stop.
func (d *deployment) stop(out io.Writer) {
	if err := d.proc.Stop(stopTimeout); err != nil {
		fmt.Fprintf(out, "warning: stopping Caddy of %s: %v\n", d.name, err)
	}
}

// counters are the webhooks metrics of a Caddy at one moment.
type counters struct {
	published  map[string]float64 // by event type
	dropped    float64
	deliveries map[string]float64 // by outcome
}

func (d *deployment) counters(ctx context.Context) (counters, error) {
	text, err := d.proc.Metrics(ctx)
	if err != nil {
		return counters{}, err
	}
	c := counters{published: make(map[string]float64), deliveries: make(map[string]float64)}
	for _, eventType := range []string{storedEvent, deliveredEvent} {
		if c.published[eventType], err = promtext.Sum(text, "caddy_webhooks_events_published_total", map[string]string{"event_type": eventType}); err != nil {
			return counters{}, err
		}
	}
	if c.dropped, err = promtext.Sum(text, "caddy_webhooks_events_dropped_total", nil); err != nil {
		return counters{}, err
	}
	for _, outcome := range []string{"success", "retry", "dead_letter", "disabled"} {
		if c.deliveries[outcome], err = promtext.Sum(text, "caddy_webhooks_deliveries_total", map[string]string{"outcome": outcome}); err != nil {
			return counters{}, err
		}
	}
	return c, nil
}

// waitStored waits until JetStream has stored or the publisher has dropped
// want events of eventType more than before. It returns the number
// dropped meanwhile.
func (e *env) waitStored(ctx context.Context, d *deployment, eventType string, before counters, want int) (dropped int, err error) {
	deadline := time.Now().Add(e.opts.settleTimeout)
	for {
		now, err := d.counters(ctx)
		if err != nil {
			return 0, err
		}
		stored := int(now.published[eventType] - before.published[eventType])
		dropped = int(now.dropped - before.dropped)
		if stored+dropped >= want {
			return dropped, nil
		}
		if time.Now().After(deadline) {
			return dropped, fmt.Errorf("%d of %d %s events stored and %d dropped after %s", stored, want, eventType, dropped, e.opts.settleTimeout)
		}
		if err := sleepContext(ctx, 50*time.Millisecond); err != nil {
			return dropped, err
		}
	}
}

// waitDelivered waits until the webhooks of every request in seqs have
// arrived at rc, or as many events as are missing were dropped before
// JetStream stored them, or timeout passes. It returns the requests whose
// webhook is missing.
func (e *env) waitDelivered(ctx context.Context, d *deployment, rc *receiver.Receiver, seqs []int64, before counters, timeout time.Duration) ([]int64, error) {
	deadline := time.Now().Add(timeout)
	missing := rc.Missing(seqs)
	lastCheck := time.Now()
	for len(missing) > 0 {
		if time.Now().After(deadline) {
			return missing, nil
		}
		if time.Since(lastCheck) > 500*time.Millisecond {
			lastCheck = time.Now()
			now, err := d.counters(ctx)
			if err != nil {
				return missing, err
			}
			if dropped := int(now.dropped - before.dropped); dropped >= len(missing) {
				return missing, nil
			}
		}
		if err := sleepContext(ctx, 20*time.Millisecond); err != nil {
			return missing, err
		}
		missing = rc.Missing(missing)
	}
	return nil, nil
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

// seqsOf returns the sequence numbers of the successful requests.
func seqsOf(res *loadgen.Result) []int64 {
	seqs := make([]int64, len(res.Succeeded))
	for i, d := range res.Succeeded {
		seqs[i] = d.Seq
	}
	return seqs
}

// lastArrival returns when the last of the webhooks of seqs arrived.
func lastArrival(rc *receiver.Receiver, seqs []int64) time.Time {
	var last time.Time
	for _, seq := range seqs {
		if at, ok := rc.Arrived(seq); ok && at.After(last) {
			last = at
		}
	}
	return last
}
