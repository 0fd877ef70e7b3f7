//go:build unix || windows

package emitter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// lockHolderDirEnv makes TestStoreLockHolderProcess, run in a child
// process, acquire a broker on the directory it names.
const lockHolderDirEnv = "EMITTER_TEST_LOCK_HOLDER_DIR"

// lockHolderReady is the line the child writes once its broker runs.
const lockHolderReady = "broker running"

// TestStoreLockHolderProcess is the body of the child process that
// startLockHolder runs. It acquires a broker, reports it on stdout and
// releases it when its stdin closes, or after a minute so that a lost
// parent cannot leave it running.
func TestStoreLockHolderProcess(t *testing.T) {
	storeDir := os.Getenv(lockHolderDirEnv)
	if storeDir == "" {
		t.Skip("runs only as the child process of the store lock tests")
	}
	cfg := &Config{StoreDir: storeDir, StartTimeout: caddy.Duration(20 * time.Second)}
	if err := cfg.Provision(); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	b, err := Acquire(cfg, zap.NewNop(), Hooks{})
	if err != nil {
		t.Fatalf("Acquire in child process: %v", err)
	}
	fmt.Println(lockHolderReady)

	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stdinClosed:
	case <-time.After(time.Minute):
	}
	if err := b.Release(); err != nil {
		t.Fatalf("Release in child process: %v", err)
	}
}

// lockHolder is a child process that runs a broker on a store directory.
type lockHolder struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *bytes.Buffer
}

// startLockHolder re-runs the test binary as a child process that holds
// a broker on storeDir, and returns once the child's broker runs.
func startLockHolder(t *testing.T, storeDir string) *lockHolder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreLockHolderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHolderDirEnv+"="+storeDir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder := &lockHolder{cmd: cmd, stdin: stdin, stderr: &bytes.Buffer{}}
	cmd.Stderr = holder.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child process: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	// The child's stdout also carries the testing package's own output,
	// so look for the ready line among the others.
	ready := make(chan error, 1)
	go func() {
		var output strings.Builder
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if scanner.Text() == lockHolderReady {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
			output.WriteString(scanner.Text() + "\n")
		}
		ready <- fmt.Errorf("child process ended its output without %q:\n%s", lockHolderReady, output.String())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%v\nstderr:\n%s", err, holder.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("child process did not start its broker within 30s")
	}
	return holder
}

// stop closes the child's stdin, so that it releases its broker, and
// waits for it to exit.
func (h *lockHolder) stop(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("child process: %v\nstderr:\n%s", err, h.stderr)
	}
}

// kill ends the child without letting it release anything, like a crash.
func (h *lockHolder) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing child process: %v", err)
	}
	_ = h.cmd.Wait()
}

func TestAcquireFailsWhileAnotherProcessHoldsStore(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(*lockHolder, *testing.T)
	}{
		{name: "holder stops", end: (*lockHolder).stop},
		{name: "holder is killed", end: (*lockHolder).kill},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			holder := startLockHolder(t, cfg.StoreDir)

			_, err := Acquire(cfg, zap.NewNop(), Hooks{})
			if err == nil {
				t.Fatalf("Acquire succeeded while another process runs a server on the store")
			}
			wantParts := []string{
				fmt.Sprintf("starting embedded NATS server in %q", cfg.StoreDir),
				"store directory is in use by another process",
				fmt.Sprintf("lock file %q", filepath.Join(cfg.StoreDir, lockFileName)),
				"give each Caddy process its own store_dir",
			}
			// Windows blocks reading the locked byte that holds the
			// process ID.
			if runtime.GOOS != "windows" {
				wantParts = append(wantParts, fmt.Sprintf("(pid %d)", holder.cmd.Process.Pid))
			}
			for _, want := range wantParts {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if refs, ok := brokers.References(cfg.StoreDir); ok {
				t.Errorf("failed Acquire left a pool entry with %d references", refs)
			}

			tt.end(holder, t)
			b := acquire(t, cfg, zap.NewNop(), Hooks{})
			if !b.server.Running() {
				t.Errorf("server not running after Acquire")
			}
		})
	}
}

func TestStoreFileLockFollowsBrokerLifetime(t *testing.T) {
	cfg := testConfig(t)
	first := acquire(t, cfg, zap.NewNop(), Hooks{})
	assertStoreLocked(t, cfg.StoreDir, true)

	// A config reload acquires the running broker a second time. The
	// file lock stays with the first Acquire, so this neither waits nor
	// fails.
	second := acquire(t, cfg, zap.NewNop(), Hooks{})
	if second != first {
		t.Fatalf("second Acquire returned a different broker")
	}
	if err := first.Release(); err != nil {
		t.Fatalf("first Release: %v", err)
	}
	assertStoreLocked(t, cfg.StoreDir, true)

	if err := second.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	assertStoreLocked(t, cfg.StoreDir, false)

	third := acquire(t, cfg, zap.NewNop(), Hooks{})
	if third == first {
		t.Fatalf("Acquire after the last Release returned the stopped broker")
	}
	assertStoreLocked(t, cfg.StoreDir, true)
}

func TestAcquireReleasesStoreLockWhenStartFails(t *testing.T) {
	cfg := testConfig(t)
	// nats-server cannot create its jetstream directory where a regular
	// file is in the way.
	if err := os.WriteFile(filepath.Join(cfg.StoreDir, "jetstream"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(cfg, zap.NewNop(), Hooks{}); err == nil {
		t.Fatalf("Acquire succeeded with a regular file in place of the jetstream directory")
	}
	assertStoreLocked(t, cfg.StoreDir, false)
}

func TestLockStoreFileCreatesPrivateFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows does not use Unix permission bits")
	}
	storeDir := filepath.Join(t.TempDir(), "new", "store")
	lock, err := lockStoreFile(storeDir)
	if err != nil {
		t.Fatalf("lockStoreFile: %v", err)
	}
	defer lock.release()

	for _, tt := range []struct {
		path string
		want os.FileMode
	}{
		{path: storeDir, want: storeDirPerm},
		{path: filepath.Join(storeDir, lockFileName), want: lockFilePerm},
	} {
		info, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != tt.want {
			t.Errorf("%s has mode %o, want %o", tt.path, got, tt.want)
		}
	}
	if got, want := lockHolderPID(filepath.Join(storeDir, lockFileName)), os.Getpid(); got != want {
		t.Errorf("lock file holds pid %d, want %d", got, want)
	}
}

func TestLockStoreFileErrors(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	lockedDir := filepath.Join(parent, "locked")
	lock, err := lockStoreFile(lockedDir)
	if err != nil {
		t.Fatalf("lockStoreFile: %v", err)
	}
	defer lock.release()

	for _, tt := range []struct {
		name     string
		storeDir string
		want     []string
	}{
		{
			name:     "below a regular file",
			storeDir: filepath.Join(file, "store"),
			want:     []string{"creating store directory", filepath.Join(file, "store"), "check store_dir"},
		},
		{
			name:     "held by this process",
			storeDir: lockedDir,
			want:     []string{"in use by this Caddy process under another path", "use the same store_dir path"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lock, err := lockStoreFile(tt.storeDir)
			if err == nil {
				lock.release()
				t.Fatalf("lockStoreFile(%q) succeeded", tt.storeDir)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestAcquireRejectsSymlinkToUsedStore(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("creating symbolic links needs privileges on Windows")
	}
	cfg := testConfig(t)
	acquire(t, cfg, zap.NewNop(), Hooks{})

	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(cfg.StoreDir, link); err != nil {
		t.Fatal(err)
	}
	linked := *cfg
	linked.StoreDir = link
	_, err := Acquire(&linked, zap.NewNop(), Hooks{})
	if err == nil || !strings.Contains(err.Error(), "in use by this Caddy process under another path") {
		t.Errorf("Acquire through a symbolic link to a used store = %v, want an error about the other path", err)
	}
}

// assertStoreLocked checks whether a lock on storeDir's lock file is held,
// by trying to take it.
func assertStoreLocked(t *testing.T, storeDir string, want bool) {
	t.Helper()
	lock, err := lockStoreFile(storeDir)
	if err == nil {
		if releaseErr := lock.release(); releaseErr != nil {
			t.Fatalf("releasing test lock: %v", releaseErr)
		}
	}
	locked := errors.Is(err, errLockHeld)
	if err != nil && !locked {
		t.Fatalf("lockStoreFile(%q): %v", storeDir, err)
	}
	if locked != want {
		t.Errorf("store lock held = %t, want %t (lockStoreFile error: %v)", locked, want, err)
	}
}
