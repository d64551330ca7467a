package journal_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
)

// TestSalvageFromACorruptFile: with bbolt's meta pages destroyed, the
// entries themselves are still read back, each at its latest step.
func TestSalvageFromACorruptFile(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{Logger: zerolog.Nop()})
	must(t, err)
	for _, id := range []string{"accepted", "started", "queued", "reported", "ignored"} {
		if id == "ignored" {
			_, _, err = j.Ignore(id, "printer", "foreign")
		} else {
			_, _, err = j.Accept(id, "frontdesk", "dev-1")
		}
		must(t, err)
	}
	must(t, j.StartEncode("started"))
	must(t, j.StartEncode("queued"))
	must(t, j.FinishEncode("queued", journal.Result{OK: true, Note: "2 keys for room 101"}, "Processed", "2 keys for room 101"))
	must(t, j.StartEncode("reported"))
	must(t, j.FinishEncode("reported", journal.Result{OK: true}, "Processed", "done"))
	must(t, j.MarkReported("reported"))
	must(t, j.Close())

	path := filepath.Join(dir, journal.FileName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{0}, 8192), 0) // both meta pages
	must(t, err)
	must(t, f.Close())

	j, err = journal.Open(dir, journal.Options{Logger: zerolog.Nop()})
	must(t, err)
	defer j.Close()
	if j.MovedAside() == "" {
		t.Fatal("the damaged journal was not moved aside")
	}
	entries, err := journal.Salvage(j.MovedAside())
	must(t, err)
	got := map[string]journal.Entry{}
	for _, e := range entries {
		got[e.CommandID] = e
	}
	want := map[string]journal.Step{
		"accepted": journal.StepAccepted, "started": journal.StepEncodeStarted,
		"queued": journal.StepReportQueued, "reported": journal.StepReported, "ignored": journal.StepIgnored,
	}
	for id, step := range want {
		if got[id].Step != step {
			t.Errorf("%s salvaged at step %v, want %v", id, got[id].Step, step)
		}
	}
	if r := got["queued"].Report; r == nil || r.State != "Processed" || r.Notes != "2 keys for room 101" {
		t.Errorf("queued report salvaged as %+v", r)
	}
}

// FuzzSalvage: whatever a damaged file holds, Salvage returns without
// panicking and only entries with an id and a known step.
func FuzzSalvage(f *testing.F) {
	dir := f.TempDir()
	j, err := journal.Open(dir, journal.Options{Logger: zerolog.Nop(), UnsafeNoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, _, err := j.Accept(id, "frontdesk", "dev"); err != nil {
			f.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		f.Fatal(err)
	}
	real, err := os.ReadFile(filepath.Join(dir, journal.FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add([]byte(`{"command_id":"x","step":"encode_started"}{"command_id":"x","step":"accepted"}`))
	f.Add([]byte(`{"command_id":"y","step":"bogus"}{"command_id":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "damaged")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		entries, err := journal.Salvage(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.CommandID == "" || e.Step.String() == "" || e.Step == 0 {
				t.Errorf("salvaged an entry without id or step: %+v", e)
			}
		}
	})
}
