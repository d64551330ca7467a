package daemon

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
)

// TestHealthyNeedsAJournalAndALiveIntake: the service watchdog stops
// pinging, so systemd restarts the daemon, when the intake has been stuck
// for intakeStall or the journal is gone.
func TestHealthyNeedsAJournalAndALiveIntake(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{journal: j}
	d.intakeBeat.Store(time.Now().UnixNano())
	if !d.Healthy() {
		t.Error("a daemon with a journal and a live intake is not healthy")
	}
	d.intakeBeat.Store(time.Now().Add(-intakeStall - time.Second).UnixNano())
	if d.Healthy() {
		t.Error("a stuck intake counts as healthy")
	}
	d.intakeBeat.Store(time.Now().UnixNano())
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if d.Healthy() {
		t.Error("a closed journal counts as healthy")
	}
}
