package packaging

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-webhooks/caddy-webhooks/internal/freeport"
)

// modulePath is the Go module of this repository.
const modulePath = "github.com/caddy-webhooks/caddy-webhooks"

// repoRoot returns the repository root: the nearest parent directory whose
// go.mod declares modulePath.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module "+modulePath+"\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of module %s above the test's directory", modulePath)
		}
		dir = parent
	}
}

// requireGo returns the absolute path of the go command, and skips the test
// when go is not on PATH.
func requireGo(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go is not on PATH: %v", err)
	}
	return path
}

// goEnv returns the environment for go and xcaddy commands: the test's own,
// without the variables that would change what they build (a target
// platform, a workspace, xcaddy's settings), plus extra.
func goEnv(extra ...string) []string {
	dropped := []string{"GOOS=", "GOARCH=", "GOARM=", "CGO_ENABLED=", "GOWORK=", "CADDY_VERSION=", "XCADDY_"}
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, prefix := range dropped {
			if strings.HasPrefix(kv, prefix) {
				keep = false
				break
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return append(append(env, "GOWORK=off"), extra...)
}

// commandTimeout bounds a long command by limit, and by the test binary's
// deadline less a minute, so a hung command fails the test with its output
// instead of ending the test binary.
func commandTimeout(t *testing.T, limit time.Duration) time.Duration {
	if deadline, ok := t.Deadline(); ok {
		limit = min(limit, time.Until(deadline)-time.Minute)
	}
	if limit <= 0 {
		t.Fatalf("less than a minute is left before the test deadline: run go test with a longer -timeout")
	}
	return limit
}

// runCommand runs cmd within timeout and returns its combined output. On
// failure it fails the test with the last part of the output.
func runCommand(t *testing.T, timeout time.Duration, name string, args []string, dir string, env []string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s timed out after %s; last output:\n%s", filepath.Base(name), strings.Join(args, " "), timeout, tail(out, 8<<10))
	}
	if err != nil {
		t.Fatalf("%s %s failed: %v; last output:\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(out, 8<<10))
	}
	return out
}

// tail returns the last n bytes of out.
func tail(out []byte, n int) []byte {
	if len(out) <= n {
		return out
	}
	return out[len(out)-n:]
}

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

// waitFor polls check every 50ms until it returns nil, and fails the test
// when timeout passes first.
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

// process is a program that a test started, with its output collected line
// by line. The test's cleanup kills it and, when the test failed, logs its
// output.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	lines []string
}

// startProcess starts name with args and env, and returns once it runs.
func startProcess(t *testing.T, name string, args, env []string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Env = env
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}

	var readers sync.WaitGroup
	for _, stream := range []io.Reader{stdout, stderr} {
		readers.Go(func() { p.collect(stream) })
	}
	go func() {
		readers.Wait()
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(name), strings.Join(p.output(), "\n"))
		}
	})
	return p
}

func (p *process) collect(stream io.Reader) {
	scanner := bufio.NewScanner(stream)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, scanner.Text())
		p.mu.Unlock()
	}
}

// output returns the lines printed so far.
func (p *process) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// exited returns an error when the process has exited.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("the process exited: %v", p.cmd.ProcessState)
	default:
		return nil
	}
}

// logEntries returns the JSON log lines whose msg is msg.
func (p *process) logEntries(msg string) []map[string]any {
	var entries []map[string]any
	for _, line := range p.output() {
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

// countLines returns how many output lines contain substr.
func (p *process) countLines(substr string) int {
	n := 0
	for _, line := range p.output() {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}
