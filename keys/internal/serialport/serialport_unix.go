//go:build unix

package serialport

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// deniedWords names the permission the service needs on Linux: the group
// that owns serial devices, and a unit that lets it see them.
const deniedWords = "permission denied: the service user needs the dialout group (the .deb adds mews-keyd to it) and, under systemd, PrivateDevices=no and DeviceAllow=<port> rw (see the README's serial section)"

// lockPort takes an exclusive advisory lock on the port, the convention
// serial programs such as picocom and a second mews-keyd honour; the
// library's TIOCEXCL keeps out the others, except root. The lock is held
// by the returned file.
func lockPort(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errBusy
		}
		return nil, err
	}
	return f, nil
}
