package daemon

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/keys"
)

// TestFirstKeyRecordsOutliveTheStayOnly: the record that makes later cards
// duplicates (KT=D) is kept while the stay lasts and forgotten once it
// ended longer ago than the journal history.
func TestFirstKeyRecordsOutliveTheStayOnly(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	j, err := journal.Open(t.TempDir(), journal.Options{History: time.Hour, Now: func() time.Time { return now }, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	d := &Daemon{journal: j, now: func() time.Time { return now }, log: zerolog.Nop(),
		cfg: &config.Config{Daemon: config.Daemon{History: keys.Duration(7 * 24 * time.Hour)}}}

	if !d.isFirstKey("staying") {
		t.Fatal("a reservation without cards is not first")
	}
	d.rememberFirstKey("staying", now.Add(48*time.Hour))
	d.rememberFirstKey("left-yesterday", now.Add(-24*time.Hour))
	d.rememberFirstKey("left-long-ago", now.Add(-30*24*time.Hour))
	if d.isFirstKey("staying") || d.isFirstKey("left-yesterday") {
		t.Fatal("a reservation with a card is still first")
	}
	n, err := d.forgetFinishedStays()
	if err != nil || n != 1 {
		t.Fatalf("forgot %d (%v), want only the stay that ended 30 days ago", n, err)
	}
	if !d.isFirstKey("left-long-ago") || d.isFirstKey("staying") || d.isFirstKey("left-yesterday") {
		t.Error("wrong records forgotten")
	}
}
