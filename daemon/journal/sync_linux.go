package journal

import (
	"os"
	"syscall"
)

// datasync flushes f's data without its timestamps, as bbolt does on
// Linux: the start log never changes size, so that is all it needs.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
