package emitter

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

const (
	// lockFileName is the file inside the store directory that the
	// running embedded server's process holds an exclusive lock on.
	lockFileName = "caddy-webhooks.lock"

	// storeDirPerm and lockFilePerm keep the store readable only by the
	// Caddy user. nats-server v2.15.3 creates its own directories with
	// 0700 too (defaultDirPerms).
	storeDirPerm = 0o700
	lockFilePerm = 0o600
)

// errLockHeld is returned by lockFile when another open file description
// holds the lock, in this process or in another.
var errLockHeld = errors.New("lock held")

// storeFileLock is an exclusive OS lock on the lock file of a store
// directory. nats-server takes no lock of its own on the store, so
// without it two Caddy processes would both start a server on one store
// and corrupt it.
type storeFileLock struct {
	file *os.File
}

// lockStoreFile creates storeDir if needed and takes the exclusive lock on
// its lock file without waiting. It writes the process ID into the lock
// file so that the error of a process that finds the lock held can name
// the holder.
func lockStoreFile(storeDir string) (*storeFileLock, error) {
	if err := os.MkdirAll(storeDir, storeDirPerm); err != nil {
		return nil, fmt.Errorf("creating store directory %q: %w; check store_dir and the permissions of its parent directories", storeDir, err)
	}

	path := filepath.Join(storeDir, lockFileName)
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, lockFilePerm)
	if err != nil {
		return nil, fmt.Errorf("opening lock file %q: %w; check that the Caddy user can write to the store directory", path, err)
	}

	if err := lockFile(file); err != nil {
		file.Close()
		if errors.Is(err, errLockHeld) {
			return nil, lockHeldError(storeDir, path)
		}
		return nil, fmt.Errorf("locking store directory %q (lock file %q): %w", storeDir, path, err)
	}

	// The process ID only helps operators, so failing to write it does
	// not fail the start.
	if err := file.Truncate(0); err == nil {
		_, _ = file.WriteAt(strconv.AppendInt(nil, int64(os.Getpid()), 10), 0)
	}
	return &storeFileLock{file: file}, nil
}

// release unlocks and closes the lock file. It leaves the file in place,
// because removing it would let a process that opened the old file before
// the removal and a process that creates a new one both hold a lock.
func (l *storeFileLock) release() error {
	unlockErr := unlockFile(l.file)
	closeErr := l.file.Close()
	if err := errors.Join(unlockErr, closeErr); err != nil {
		return fmt.Errorf("releasing lock file %q: %w", l.file.Name(), err)
	}
	return nil
}

// storeInUseError reports a store directory whose lock another server
// holds. errors.Is matches it with errLockHeld.
type storeInUseError struct {
	message string
}

func (e *storeInUseError) Error() string { return e.message }

func (e *storeInUseError) Unwrap() error { return errLockHeld }

// lockHeldError describes a store directory that another server holds,
// naming the holding process when the lock file shows it.
func lockHeldError(storeDir, path string) error {
	holder := "another process"
	pid := lockHolderPID(path)
	switch {
	case pid == os.Getpid():
		return &storeInUseError{message: fmt.Sprintf("starting embedded NATS server in %q: store directory is in use by this Caddy process under another path (lock file %q); use the same store_dir path everywhere in the config", storeDir, path)}
	case pid > 0:
		holder = fmt.Sprintf("another process (pid %d)", pid)
	}
	return &storeInUseError{message: fmt.Sprintf("starting embedded NATS server in %q: store directory is in use by %s (lock file %q); give each Caddy process its own store_dir", storeDir, holder, path)}
}

// lockHolderPID reads the process ID that the holder wrote into the lock
// file. It returns 0 when the file cannot be read, which is the case on
// Windows, where the holder's lock also blocks reading, or while the
// holder is still writing it.
func lockHolderPID(path string) int {
	content, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(content)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
