package webhooks_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/internal/freeport"
)

// The integration tests run the Caddy binary of cmd/caddy as a separate
// process, the way users run it, so that signals, restarts and reloads are
// real. Every process listens on 127.0.0.1 only, on ports picked at run
// time, and keeps its data in the test's temporary directory.

var (
	buildOnce   sync.Once
	caddyBinary string
	buildErr    error
)

// caddyPath builds cmd/caddy once per test binary, with the race detector
// when the tests have it.
func caddyPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts Caddy processes")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-webhooks-bin-")
		if err != nil {
			buildErr = err
			return
		}
		caddyBinary = filepath.Join(dir, "caddy")
		args := []string{"build", "-o", caddyBinary}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/caddy")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building Caddy: %v", buildErr)
	}
	return caddyBinary
}

// startWait bounds the wait for a started Caddy to become ready.
const startWait = 150 * time.Second

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, from
// below the ephemeral range (see package freeport).
func freePort(t *testing.T) int {
	t.Helper()
	ports, err := freeport.Pick(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// caddyProcess is one running Caddy of this project.
type caddyProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	Admin   string // host:port of the admin API
	HomeDir string // XDG data and config dirs live here, so restarts find the store
	logs    *logBuffer
	done    chan struct{}
}

// logBuffer collects Caddy's JSON log lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
}

func (b *logBuffer) snapshot() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

// renderConfig fills a Caddyfile template; {{.Admin}} is the admin address.
func renderConfig(t *testing.T, text string, data map[string]any) string {
	t.Helper()
	tmpl, err := template.New("Caddyfile").Option("missingkey=error").Parse(text)
	if err != nil {
		t.Fatalf("parsing Caddyfile template: %v", err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		t.Fatalf("rendering Caddyfile template: %v", err)
	}
	return out.String()
}

// startCaddy starts Caddy with a Caddyfile and waits until its admin API
// responds and the webhooks app has started. homeDir is reused across
// restarts of the same logical instance, and "" makes a new one.
func startCaddy(t *testing.T, caddyfile, homeDir, admin string) *caddyProcess {
	return startCaddyWait(t, caddyfile, homeDir, admin, "webhooks app started")
}

func startCaddyWait(t *testing.T, caddyfile, homeDir, admin, ready string) *caddyProcess {
	t.Helper()
	binary := caddyPath(t)
	if homeDir == "" {
		homeDir = t.TempDir()
	}
	configPath := filepath.Join(homeDir, "Caddyfile")
	if err := os.WriteFile(configPath, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(binary, "run", "--config", configPath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(),
		"HOME="+homeDir,
		"XDG_DATA_HOME="+filepath.Join(homeDir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(homeDir, "config"),
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Caddy: %v", err)
	}

	p := &caddyProcess{t: t, cmd: cmd, Admin: admin, HomeDir: homeDir, logs: new(logBuffer), done: make(chan struct{})}
	var readers sync.WaitGroup
	for _, stream := range []io.Reader{stderr, stdout} {
		readers.Go(func() {
			scanner := bufio.NewScanner(stream)
			scanner.Buffer(make([]byte, 1<<20), 1<<20)
			for scanner.Scan() {
				p.logs.add(scanner.Text())
			}
		})
	}
	go func() {
		readers.Wait()
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("Caddy log (%s):\n%s", homeDir, strings.Join(p.logs.snapshot(), "\n"))
		}
	})

	// Caddy responds to the admin API only once the config has loaded, and a
	// cluster test's config may take up to its start_timeout of 2 minutes.
	waitFor(t, startWait, "the Caddy admin API to respond", func() error {
		select {
		case <-p.done:
			return fmt.Errorf("caddy exited:\n%s", strings.Join(p.logs.snapshot(), "\n"))
		default:
		}
		resp, err := http.Get("http://" + admin + "/config/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	// The admin API comes up before the apps have started.
	p.waitLog(startWait, ready)
	return p
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *caddyProcess) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("Caddy did not exit within 60s after SIGTERM")
	}
}

// kill sends SIGKILL: the process gets no chance to clean up.
func (p *caddyProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// load replaces the running config through the admin API.
func (p *caddyProcess) load(caddyfile string) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+p.Admin+"/load", strings.NewReader(caddyfile))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("loading config: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("loading config: status %d: %s", resp.StatusCode, body)
	}
}

// logEntries returns the JSON log entries whose message is msg.
func (p *caddyProcess) logEntries(msg string) []map[string]any {
	var entries []map[string]any
	for _, line := range p.logs.snapshot() {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		if entry["msg"] == msg {
			entries = append(entries, entry)
		}
	}
	return entries
}

// waitLog waits for a log entry with message msg.
func (p *caddyProcess) waitLog(timeout time.Duration, msg string) map[string]any {
	p.t.Helper()
	var found map[string]any
	waitFor(p.t, timeout, fmt.Sprintf("log message %q", msg), func() error {
		if entries := p.logEntries(msg); len(entries) > 0 {
			found = entries[0]
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("caddy exited")
		default:
		}
		return fmt.Errorf("not logged yet")
	})
	return found
}

// waitFor polls check until it returns nil or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// delivery is one request that a test receiver got.
type delivery struct {
	Header http.Header
	Body   []byte
	At     time.Time
	Status int // the status the receiver responded with
}

// receiver is a webhook receiver on 127.0.0.1 that records every request
// and responds with the status that respond returns.
type receiver struct {
	mu         sync.Mutex
	deliveries []delivery
	respond    func(n int, d delivery) int // n counts requests from 1
	server     *http.Server
	URL        string
}

func newReceiver(t *testing.T, respond func(n int, d delivery) int) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc.URL = "http://" + ln.Addr().String() + "/hooks"
	rc.server = &http.Server{Handler: http.HandlerFunc(rc.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = rc.server.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = rc.server.Shutdown(ctx)
		_ = rc.server.Close()
	})
	return rc
}

func (rc *receiver) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivery{Header: r.Header.Clone(), Body: body, At: time.Now()}
	rc.mu.Lock()
	n := len(rc.deliveries) + 1
	rc.mu.Unlock()

	d.Status = http.StatusNoContent
	if rc.respond != nil {
		d.Status = rc.respond(n, d)
	}

	rc.mu.Lock()
	rc.deliveries = append(rc.deliveries, d)
	rc.mu.Unlock()
	w.WriteHeader(d.Status)
}

func (rc *receiver) all() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.deliveries...)
}

// waitCount waits until the receiver got at least n requests.
func (rc *receiver) waitCount(t *testing.T, timeout time.Duration, n int) []delivery {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d deliveries", n), func() error {
		if got := len(rc.all()); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
	return rc.all()
}

// byEventID groups deliveries by their webhook-id.
func byEventID(ds []delivery) map[string][]delivery {
	out := make(map[string][]delivery)
	for _, d := range ds {
		id := d.Header.Get("webhook-id")
		out[id] = append(out[id], d)
	}
	return out
}

// send makes one request to the site under test and returns the status.
func send(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
