package daemon_test

import (
	"runtime/debug"
	"testing"

	"github.com/mews-keyd/mews-keyd/daemon"
)

// TuneGC sets the service's collector unless the operator set GOGC or
// GOMEMLIMIT: their choice wins.
func TestTuneGCLeavesTheOperatorsChoice(t *testing.T) {
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })

	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	daemon.TuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, TuneGC set the percent to %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("with GOMEMLIMIT set, TuneGC set the limit to %d", got)
	}

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	daemon.TuneGC()
	if got := debug.SetGCPercent(100); got != 300 {
		t.Errorf("TuneGC set the percent to %d, want 300", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("TuneGC set the limit to %d, want 64 MiB", got)
	}
}
