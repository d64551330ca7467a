//go:build !windows

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// watchdogSignals delivers SIGABRT, which systemd sends when the service
// watchdog fires (WatchdogSignal=). Caught, it no longer makes Go print
// every goroutine's stack at priority 6 and exit 2: see watchdogFired.
func watchdogSignals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGABRT)
	return ch, func() { signal.Stop(ch) }
}
