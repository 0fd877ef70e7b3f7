//go:build !linux

package caddyproc

import "syscall"

// ChildAttributes returns nil: only Linux can tie a child's life to its
// parent, so an interrupted run may leave Caddy running elsewhere.
func ChildAttributes() *syscall.SysProcAttr {
	return nil
}
