//go:build unix

package freeport

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

var (
	claimsMu sync.Mutex
	// claims keeps the lock files of the ports this process claimed open,
	// because closing one would release its lock.
	claims []*os.File
)

// claim takes an exclusive lock on a file named after port in a directory
// shared by every process of the machine. It reports false when another
// process, or an earlier Pick of this one, holds the lock. When the lock
// file cannot be opened, it reports true, and the port is only as safe as
// the bind check made it.
func claim(port int) bool {
	dir := filepath.Join(os.TempDir(), "caddy-webhooks-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	claimsMu.Lock()
	claims = append(claims, f)
	claimsMu.Unlock()
	return true
}
