//go:build !windows

package journal

import "os"

// FailWrites makes the journal opened with o fail every write, the way a
// full or broken disk does, by giving bbolt a read-only file.
func FailWrites(o *Options) {
	o.openFile = func(path string, _ int, mode os.FileMode) (*os.File, error) {
		return os.OpenFile(path, os.O_RDONLY, mode)
	}
}
