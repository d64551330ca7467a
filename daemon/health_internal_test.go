package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
)

// TestHealthyNeedsAJournalAndALiveIntake: the service watchdog stops
// pinging, so systemd restarts the daemon, when the intake has been stuck
// for intakeStall or the journal is gone.
func TestHealthyNeedsAJournalAndALiveIntake(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	api, err := mews.NewClient(mews.ClientConfig{APIURL: "http://127.0.0.1:1", ClientToken: "c", AccessToken: "a"})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{journal: j, api: api, intake: &intake{}}
	d.intake.beat.Store(time.Now().UnixNano())
	if !d.Healthy() {
		t.Error("a daemon with a journal and a live intake is not healthy")
	}
	d.intake.beat.Store(time.Now().Add(-intakeStall - time.Second).UnixNano())
	if d.Healthy() {
		t.Error("a stuck intake counts as healthy")
	}
	if stuck := d.Stuck(); !strings.Contains(stuck, "intake") {
		t.Errorf("Stuck() = %q, want it to name the intake", stuck)
	}
	// Mews asked for a pause, still running: the intake is waiting, not
	// stuck.
	api.Limiter().Pause(mews.MaxPause)
	if !d.Healthy() {
		t.Error("an intake waiting out a pause Mews asked for counts as stuck")
	}
	d.intake.beat.Store(time.Now().UnixNano())
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if d.Healthy() {
		t.Error("a closed journal counts as healthy")
	}
	if stuck := d.Stuck(); !strings.Contains(stuck, "journal") {
		t.Errorf("Stuck() = %q, want it to name the journal", stuck)
	}
}
