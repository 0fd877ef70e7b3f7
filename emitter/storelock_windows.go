//go:build windows

package emitter

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockFile takes an exclusive LockFileEx lock on the first byte of file
// without waiting. Windows releases the lock when the holding process
// exits, but the LockFileEx documentation warns that this release can lag
// behind the exit, so a start right after a crash may still fail.
//
// NOTE: this file is only type-checked by cross-compiling; its tests have
// not run on Windows.
func lockFile(file *os.File) error {
	raw, err := file.SyscallConn()
	if err != nil {
		return err
	}
	var lockErr error
	err = raw.Control(func(handle uintptr) {
		lockErr = windows.LockFileEx(windows.Handle(handle),
			windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY,
			0, 1, 0, new(windows.Overlapped))
	})
	if err != nil {
		return err
	}
	if errors.Is(lockErr, windows.ERROR_LOCK_VIOLATION) {
		return errLockHeld
	}
	return lockErr
}

func unlockFile(file *os.File) error {
	raw, err := file.SyscallConn()
	if err != nil {
		return err
	}
	var unlockErr error
	err = raw.Control(func(handle uintptr) {
		unlockErr = windows.UnlockFileEx(windows.Handle(handle), 0, 1, 0, new(windows.Overlapped))
	})
	if err != nil {
		return err
	}
	return unlockErr
}
