package netcause

import (
	"errors"

	"golang.org/x/sys/windows"
)

// Winsock reports its own error numbers, which syscall.ECONNREFUSED and
// friends do not match.
func refused(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }

func unreachable(err error) bool {
	return errors.Is(err, windows.WSAEHOSTUNREACH) || errors.Is(err, windows.WSAENETUNREACH)
}
