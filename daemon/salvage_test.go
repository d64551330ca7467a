package daemon_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestCorruptJournalUnfinishedCommandsSalvaged: the journal's B+tree is
// destroyed while three commands are unfinished. What survives in the file
// is restored, so none is cut again: an interrupted encode is reported
// Error, a result that was waiting for Mews is delivered as it was — even
// for a command Mews still shows Pending because its Processing update was
// skipped during an outage.
func TestCorruptJournalUnfinishedCommandsSalvaged(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	interrupted := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	waiting := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 1)
	neverMarked := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationLongStay, 1)
	srv.SetCommandState(interrupted, mews.CommandProcessing)
	srv.SetCommandState(waiting, mews.CommandProcessing)

	j, err := journal.Open(dir, journal.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{interrupted, waiting, neverMarked} {
		if _, _, err := j.Accept(id, "desk-1", mewstest.KeyCutter1.Name); err != nil {
			t.Fatal(err)
		}
		if err := j.StartEncode(id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{waiting, neverMarked} {
		if err := j.FinishEncode(id, journal.Result{OK: true}, "Processed", "1 key for room 101"); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, journal.FileName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0}, 8192), 0); err != nil { // bbolt's meta pages
		t.Fatal(err)
	}
	f.Close()

	h := start(t, srv, dir, "")
	h.waitFinal(interrupted, waiting, neverMarked)
	assertState(t, srv, interrupted, mews.CommandError, "interrupted by a restart")
	assertState(t, srv, waiting, mews.CommandProcessed, "1 key for room 101")
	assertState(t, srv, neverMarked, mews.CommandProcessed, "1 key for room 101")
	for _, id := range []string{interrupted, waiting, neverMarked} {
		if n := h.encodedCount(id); n != 0 {
			t.Errorf("command %s encoded again after the journal was lost", id)
		}
	}
}
