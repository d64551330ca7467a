//go:build !windows

package config

import "os"

// exposed reports whether a file holding a secret can be read by every
// local user. Group read is fine: the install advice (README, the Debian
// package) is group mews-keyd, mode 0640, so that the service user can read
// what root owns. A file that cannot be stat'ed is not reported: reading it
// fails with its own message.
func exposed(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o004 != 0
}
