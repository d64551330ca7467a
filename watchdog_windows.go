package main

import "os"

// watchdogSignals: the Windows service manager has no watchdog.
func watchdogSignals() (<-chan os.Signal, func()) {
	return nil, func() {}
}
