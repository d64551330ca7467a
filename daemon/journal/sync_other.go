//go:build !linux

package journal

import "os"

// datasync flushes f: FlushFileBuffers on Windows, fsync elsewhere.
func datasync(f *os.File) error { return f.Sync() }
