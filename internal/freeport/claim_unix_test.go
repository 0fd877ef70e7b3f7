//go:build unix

package freeport

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// TestClaimHolderProcess is not a test of its own: the claim tests run the
// test binary again with this test selected, to hold a claim in another
// process until its standard input closes.
func TestClaimHolderProcess(t *testing.T) {
	port, err := strconv.Atoi(os.Getenv("FREEPORT_HOLD_PORT"))
	if err != nil {
		t.Skip("runs only as the claim holder of another test")
	}
	if !claim(port) {
		fmt.Println("not claimed")
		return
	}
	fmt.Println("claimed")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

func TestClaimSkipsPortOfOtherProcess(t *testing.T) {
	const port = 19999 // below the range Pick uses, so no Pick of another test takes it
	cmd := exec.Command(os.Args[0], "-test.run=^TestClaimHolderProcess$")
	cmd.Env = append(os.Environ(), "FREEPORT_HOLD_PORT="+strconv.Itoa(port))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "claimed\n" {
		stdin.Close()
		_ = cmd.Wait()
		t.Fatalf("holder process printed %q (%v), want claimed", line, err)
	}

	if claim(port) {
		t.Errorf("claim(%d) succeeded while another process holds it", port)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder process: %v", err)
	}
	if !claim(port) {
		t.Errorf("claim(%d) failed after the holder process exited", port)
	}
	if claim(port) {
		t.Errorf("claim(%d) succeeded twice in one process", port)
	}
}
