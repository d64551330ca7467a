//go:build !windows

package config

import "os"

// exposed reports whether a file holding a secret can be read by users other
// than its owner. A file that cannot be stat'ed is not reported: reading it
// fails with its own message.
func exposed(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o044 != 0
}
