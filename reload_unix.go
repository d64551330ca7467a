//go:build !windows

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// reloadSignals delivers SIGHUP, the Unix way to ask a daemon to re-read its
// configuration (systemctl reload, kill -HUP).
func reloadSignals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}
