// Package caddyproc builds this project's Caddy and runs it as a child
// process for load tests, with its admin API on 127.0.0.1.
package caddyproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Package is the import path of the Caddy command with this plugin.
const Package = "github.com/caddy-webhooks/caddy-webhooks/cmd/caddy"

// ReadyMessage is the log message after which the webhooks app accepts
// events and delivers them.
const ReadyMessage = "webhooks app started"

// PlainReadyMessage is the log message after which a Caddy without the
// webhooks app serves its config.
const PlainReadyMessage = "serving initial configuration"

// startTimeout bounds the wait for a started Caddy to become ready.
const startTimeout = 60 * time.Second

// Build compiles the Caddy command of this module into dir and returns the
// path of the binary. With race, the binary has the race detector. It must
// run inside this module's tree, because the package is found through the
// module.
func Build(ctx context.Context, dir string, race bool) (string, error) {
	binary := filepath.Join(dir, "caddy")
	args := []string{"build", "-o", binary}
	if race {
		args = append(args, "-race")
	}
	args = append(args, Package)
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building Caddy with 'go %s': %w\n%s", strings.Join(args, " "), err, out)
	}
	return binary, nil
}

// Options describe one Caddy process.
type Options struct {
	// Binary is the Caddy executable.
	Binary string

	// Dir receives the Caddyfile, the log and Caddy's home, data and
	// config directories.
	Dir string

	// Caddyfile is the config. Its global admin option must be Admin.
	Caddyfile string

	// Admin is the host:port of the admin API.
	Admin string

	// Ready is the log message after which the process counts as started.
	// Default: ReadyMessage.
	Ready string

	// Env holds extra environment variables of the process, as
	// KEY=value.
	Env []string
}

// Process is a running Caddy.
type Process struct {
	Admin   string
	Pid     int
	LogPath string

	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	waitErr error
	client  *http.Client
}

// Start starts Caddy and waits until its admin API responds and the
// webhooks app has started. Its standard output and error go to the file
// caddy.log in Dir.
func Start(ctx context.Context, opts Options) (*Process, error) {
	home := filepath.Join(opts.Dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("creating Caddy home directory: %w", err)
	}
	configPath := filepath.Join(opts.Dir, "Caddyfile")
	if err := os.WriteFile(configPath, []byte(opts.Caddyfile), 0o600); err != nil {
		return nil, fmt.Errorf("writing Caddyfile: %w", err)
	}
	logPath := filepath.Join(opts.Dir, "caddy.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating Caddy log file: %w", err)
	}

	cmd := exec.Command(opts.Binary, "run", "--config", configPath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = ChildAttributes()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", opts.Binary, err)
	}

	p := &Process{
		Admin:   opts.Admin,
		Pid:     cmd.Process.Pid,
		LogPath: logPath,
		cmd:     cmd,
		logFile: logFile,
		done:    make(chan struct{}),
		client:  &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Minute},
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()

	ready := opts.Ready
	if ready == "" {
		ready = ReadyMessage
	}
	if err := p.waitReady(ctx, ready); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// waitReady polls the admin API and the log until the message ready is
// logged.
func (p *Process) waitReady(ctx context.Context, ready string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("caddy exited during start (%v); last log lines:\n%s", p.waitErr, p.LogTail(20))
		default:
		}
		if _, err := p.Get(ctx, "/config/"); err == nil {
			logText, err := os.ReadFile(p.LogPath)
			if err != nil {
				return fmt.Errorf("reading Caddy log: %w", err)
			}
			if bytes.Contains(logText, []byte(`"msg":"`+ready+`"`)) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caddy not ready after %s: no %q log line; last log lines:\n%s", startTimeout, ready, p.LogTail(20))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Get fetches a path of the admin API and returns the body of a 200
// response.
func (p *Process) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Admin+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("getting admin path %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading admin path %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("getting admin path %s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// Metrics returns Caddy's Prometheus metrics in the text format.
func (p *Process) Metrics(ctx context.Context) ([]byte, error) {
	return p.Get(ctx, "/metrics")
}

// CPUProfile records a CPU profile of the given length through the admin
// API's pprof handler and writes it to path.
func (p *Process) CPUProfile(ctx context.Context, seconds int, path string) error {
	return p.saveProfile(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), "CPU profile", path)
}

// AllocsProfile records the allocations made during the given number of
// seconds through the admin API's pprof handler and writes the profile to
// path.
func (p *Process) AllocsProfile(ctx context.Context, seconds int, path string) error {
	return p.saveProfile(ctx, fmt.Sprintf("/debug/pprof/allocs?seconds=%d", seconds), "allocation profile", path)
}

// saveProfile fetches a profile from the admin API at uri and writes it to
// path. kind names the profile in errors, such as "CPU profile".
func (p *Process) saveProfile(ctx context.Context, uri, kind, path string) error {
	profile, err := p.Get(ctx, uri)
	if err != nil {
		return fmt.Errorf("recording %s: %w", kind, err)
	}
	if err := os.WriteFile(path, profile, 0o600); err != nil {
		return fmt.Errorf("writing %s to %s: %w", kind, path, err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to timeout for Caddy to exit, then kills
// it.
func (p *Process) Stop(timeout time.Duration) error {
	defer p.logFile.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM to Caddy (pid %d): %w", p.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("caddy (pid %d) still running %s after SIGTERM; killed it", p.Pid, timeout)
	}
}

// Kill ends Caddy at once and waits for it to exit.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
	p.logFile.Close()
}

// Exited reports whether Caddy has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// LogTail returns the last n lines of Caddy's log.
func (p *Process) LogTail(n int) string {
	logText, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.LogPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(logText), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
