package caddyproc

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestStartMissingBinary(t *testing.T) {
	_, err := Start(context.Background(), Options{
		Binary:    "/nonexistent/caddy",
		Dir:       t.TempDir(),
		Caddyfile: "{\n\tadmin 127.0.0.1:1\n}\n",
		Admin:     "127.0.0.1:1",
	})
	if err == nil {
		t.Fatal("Start with a missing binary returned no error")
	}
	if !strings.Contains(err.Error(), "/nonexistent/caddy") {
		t.Errorf("error %q does not name the binary", err)
	}
}

func TestStartReportsEarlyExit(t *testing.T) {
	const exitAtOnce = "/bin/false"
	if _, err := os.Stat(exitAtOnce); err != nil {
		t.Skipf("no %s on this system", exitAtOnce)
	}
	dir := t.TempDir()
	_, err := Start(context.Background(), Options{
		Binary:    exitAtOnce,
		Dir:       dir,
		Caddyfile: "{\n\tadmin 127.0.0.1:1\n}\n",
		Admin:     "127.0.0.1:1",
	})
	if err == nil {
		t.Fatal("Start of a process that exits at once returned no error")
	}
	// Without the exit check, Start would wait for its 60s start timeout
	// and report that instead.
	if !strings.Contains(err.Error(), "exited during start") {
		t.Errorf("error %q does not say that the process exited", err)
	}
	if _, err := os.Stat(dir + "/Caddyfile"); err != nil {
		t.Errorf("Caddyfile not written to Dir: %v", err)
	}
}
