package main

import "os"

// reloadSignals: Windows has no SIGHUP; a service restart applies a new
// configuration there.
func reloadSignals() (<-chan os.Signal, func()) {
	return nil, func() {}
}
