//go:build unix

package emitter

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock on file without waiting. The kernel
// drops a flock when the last descriptor of its open file description
// closes, which includes the holder's exit or crash, so a lock file left
// by a dead process does not block a new start.
//
// flock locks belong to the open file description, so a second open of
// the same file conflicts even inside one process. The in-process lock in
// lockStore keeps one process from reaching this point twice for a store.
func lockFile(file *os.File) error {
	return controlFile(file, func(fd uintptr) error {
		for {
			err := unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EWOULDBLOCK):
				return errLockHeld
			default:
				return err
			}
		}
	})
}

func unlockFile(file *os.File) error {
	return controlFile(file, func(fd uintptr) error {
		return unix.Flock(int(fd), unix.LOCK_UN)
	})
}

// controlFile runs op on the descriptor of file. Going through SyscallConn
// instead of Fd leaves the descriptor in the mode the os package chose.
func controlFile(file *os.File, op func(fd uintptr) error) error {
	raw, err := file.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := raw.Control(func(fd uintptr) { opErr = op(fd) }); err != nil {
		return err
	}
	return opErr
}
