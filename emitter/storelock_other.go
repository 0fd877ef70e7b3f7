//go:build !unix && !windows

package emitter

import "os"

// TODO: on systems other than Unix and Windows, nothing keeps a second
// process from starting a server on the same store directory.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
