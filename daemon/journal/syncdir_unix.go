//go:build unix

package journal

import (
	"os"
	"path/filepath"
)

// syncDir makes a file created in path's directory survive a power cut.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
