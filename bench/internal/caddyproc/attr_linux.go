package caddyproc

import "syscall"

// ChildAttributes makes the kernel kill a child process when the load test
// exits, so that no Caddy outlives an interrupted run. Linux sends the
// signal when the thread that started the child exits, and the Go runtime
// keeps its threads until the process exits.
func ChildAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
