// Package testaddr gives tests loopback addresses.
package testaddr

import (
	"net"
	"testing"
)

// Free returns a loopback address nothing listens on: a port the system
// just gave out and took back, so that a connection to it is refused, and
// a listener may take it.
func Free(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
