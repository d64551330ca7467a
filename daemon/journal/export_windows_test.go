package journal

import (
	"os"
)

// FailWrites makes the journal opened with o fail every write, the way a
// full or broken disk does. A read-only file, as elsewhere, cannot do it
// here: bbolt sets the file's size to its map size before mapping it, which
// needs write access. So bbolt gets a file opened for writing in append
// mode, on which os.File refuses WriteAt, bbolt's only way of writing. On
// Windows append mode keeps the right to set the size only with O_TRUNC,
// so the content is put back through another handle after opening.
func FailWrites(o *Options) {
	o.openFile = func(path string, flag int, mode os.FileMode) (*os.File, error) {
		if flag&os.O_RDWR == 0 {
			return os.OpenFile(path, flag, mode)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, flag|os.O_APPEND|os.O_TRUNC, mode)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, data, mode); err != nil {
			_ = f.Close()
			return nil, err
		}
		return f, nil
	}
}
