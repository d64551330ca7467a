package journal_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
)

// The encoder may be called once AcceptStarted returns; journal.db takes
// the start with the command's next step.
func TestAcceptStartedThenFinish(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	j := openJournal(t, dir, c)
	isNew, err := j.AcceptStarted("c1", "desk-1", "Front desk")
	if err != nil || !isNew {
		t.Fatalf("AcceptStarted = %v, %v", isNew, err)
	}
	// Until its next step, the command is known as started all the same.
	if e := mustEntry(t, j, "c1"); e.Step != journal.StepEncodeStarted || e.Encoder != "desk-1" {
		t.Errorf("entry after AcceptStarted = %+v", e)
	}
	if _, isNew, err := j.Accept("c1", "desk-1", "Front desk"); err != nil || isNew {
		t.Errorf("Accept of a started command = %v, %v; want known", isNew, err)
	}
	if s := j.Stats(); s.Steps[journal.StepEncodeStarted] != 1 || s.Open != 1 {
		t.Errorf("Stats after AcceptStarted = %+v", s)
	}
	must(t, j.FinishEncode("c1", journal.Result{OK: true}, "Processed", "1 key"))
	if e := mustEntry(t, j, "c1"); e.Step != journal.StepReportQueued || e.Encoder != "desk-1" || e.Device != "Front desk" || !e.EncodeStartedAt.Equal(c.Now()) {
		t.Errorf("entry after finish = %+v", e)
	}
	if isNew, err := j.AcceptStarted("c1", "desk-1", "Front desk"); err != nil || isNew {
		t.Errorf("second AcceptStarted = %v, %v; want known", isNew, err)
	}
	if s := j.Stats(); s.Steps[journal.StepReportQueued] != 1 || s.Open != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

// Close commits a start only the start log has, and the next Open finds
// the start log empty: nothing is replayed twice.
func TestAcceptStartedSurvivesClose(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	must(t, err)
	if _, err := j.AcceptStarted("c1", "desk-1", "dev"); err != nil {
		t.Fatal(err)
	}
	must(t, j.Close())
	if n := startRecords(t, dir); n != 0 {
		t.Errorf("%d records left in the start log after a clean close", n)
	}
	j = openJournal(t, dir, newClock())
	if e := mustEntry(t, j, "c1"); e.Step != journal.StepEncodeStarted {
		t.Errorf("after reopen: %s, want %s", e.Step, journal.StepEncodeStarted)
	}
}

// A crash after the start log's flush and before journal.db's commit: the
// next Open has the encode as started, dated by the record, so it is
// reported interrupted like any other.
func TestStartLogReplayedAtOpen(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	must(t, err)
	accept(t, j, "known")
	must(t, j.StartEncode("known"))
	must(t, j.FinishEncode("known", journal.Result{OK: true}, "Processed", ""))
	must(t, j.Close())

	at := time.Date(2025, 3, 1, 11, 59, 0, 0, time.UTC)
	must(t, journal.WriteStartRecord(dir, "crashed", "desk-1", "Front desk", at))
	// A record journal.db has already (its clearing never reached the
	// disk) changes nothing.
	must(t, journal.WriteStartRecord(dir, "known", "desk-1", "Front desk", at))

	j = openJournal(t, dir, newClock())
	e := mustEntry(t, j, "crashed")
	if e.Step != journal.StepEncodeStarted || e.Encoder != "desk-1" || e.Device != "Front desk" || !e.EncodeStartedAt.Equal(at) || !e.AcceptedAt.Equal(at) {
		t.Errorf("replayed entry = %+v", e)
	}
	if e := mustEntry(t, j, "known"); e.Step != journal.StepReportQueued {
		t.Errorf("known command moved to %s by a stale record", e.Step)
	}
	unfinished, err := j.Unfinished()
	must(t, err)
	if got := ids(unfinished); !equal(got, []string{"crashed"}) {
		t.Errorf("Unfinished = %v, want [crashed]", got)
	}
	if n := startRecords(t, dir); n != 0 {
		t.Errorf("%d records left in the start log after the replay", n)
	}
}

// A torn or foreign slot reads as empty: its write never returned, so its
// encoder was never called.
func TestStartLogIgnoresDamage(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	must(t, err)
	must(t, j.Close())
	must(t, journal.WriteStartRecord(dir, "whole", "desk-1", "dev", time.Now()))
	f, err := os.OpenFile(filepath.Join(dir, journal.StartLogName), os.O_RDWR, 0)
	must(t, err)
	torn := append([]byte("mks1\x00\x00\x00\x01"), strings.Repeat("x", 100)...)
	if _, err := f.WriteAt(torn, 256); err != nil {
		t.Fatal(err)
	}
	must(t, f.Close())

	j = openJournal(t, dir, newClock())
	if _, ok, _ := j.Get("whole"); !ok {
		t.Error("the whole record was not replayed")
	}
	if s := j.Stats(); s.Open != 1 {
		t.Errorf("%d open entries, want the whole record's alone", s.Open)
	}
}

// A device name too long for a slot takes the slow way, all in journal.db.
func TestAcceptStartedLongRecord(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	device := strings.Repeat("d", 300)
	if isNew, err := j.AcceptStarted("c1", "desk-1", device); err != nil || !isNew {
		t.Fatalf("AcceptStarted = %v, %v", isNew, err)
	}
	if e := mustEntry(t, j, "c1"); e.Device != device || e.Step != journal.StepEncodeStarted {
		t.Errorf("entry = %+v", e)
	}
}

// A full disk: the preallocated start log still takes the first start, so
// that card may be cut; journal.db refuses it, the command's next step
// says so, and no further card starts until journal.db takes writes
// again. The next start replays the record.
func TestAcceptStartedWhenJournalDBFails(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	must(t, err)
	must(t, j.Close())

	opts := journal.Options{}
	journal.FailJournalDBWrites(&opts)
	j, err = journal.Open(dir, opts)
	must(t, err)
	if isNew, err := j.AcceptStarted("first", "desk-1", "dev"); err != nil || !isNew {
		t.Fatalf("first AcceptStarted = %v, %v; the start log has room", isNew, err)
	}
	if err := j.FinishEncode("first", journal.Result{OK: true}, "Processed", ""); !errors.Is(err, journal.ErrWriteFailed) {
		t.Errorf("FinishEncode after a failed commit: %v, want ErrWriteFailed", err)
	}
	if _, err := j.AcceptStarted("second", "desk-1", "dev"); !errors.Is(err, journal.ErrWriteFailed) {
		t.Errorf("second AcceptStarted: %v, want ErrWriteFailed", err)
	}
	must(t, j.Close())

	j = openJournal(t, dir, newClock())
	if e := mustEntry(t, j, "first"); e.Step != journal.StepEncodeStarted {
		t.Errorf("first after the disk healed: %s, want %s", e.Step, journal.StepEncodeStarted)
	}
	if _, ok, _ := j.Get("second"); ok {
		t.Error("the refused start is in the journal")
	}
}

// startRecords counts the records in dir's start log.
func startRecords(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, journal.StartLogName))
	must(t, err)
	return strings.Count(string(data), "mks1")
}

// A start withdrawn before the encoder was called is final, from the
// start log straight to journal.db.
func TestAcceptStartedThenWithdraw(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	must(t, err)
	if _, err := j.AcceptStarted("c1", "desk-1", "dev"); err != nil {
		t.Fatal(err)
	}
	must(t, j.Withdraw("c1", "cancelled in Mews"))
	if e := mustEntry(t, j, "c1"); e.Step != journal.StepIgnored || !e.Final {
		t.Errorf("after Withdraw: %+v", e)
	}
	if n := startRecords(t, dir); n != 0 {
		t.Errorf("%d records left in the start log after the withdrawal", n)
	}
	must(t, j.Close())
}

// A queued card's start goes through the start log too: one flush, and
// journal.db takes it with the result.
func TestStartEncodeThroughStartLog(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	j, err := journal.Open(dir, journal.Options{Now: c.Now})
	must(t, err)
	accept(t, j, "queued", "waiting")
	c.Advance(time.Second)
	must(t, j.StartEncode("queued"))
	if n := startRecords(t, dir); n != 1 {
		t.Errorf("%d records in the start log, want 1", n)
	}
	e := mustEntry(t, j, "queued")
	if e.Step != journal.StepEncodeStarted || !e.EncodeStartedAt.Equal(c.Now()) || e.Seq == 0 || e.Encoder != "frontdesk" {
		t.Errorf("started queued entry = %+v", e)
	}
	if err := j.StartEncode("queued"); !errors.Is(err, journal.ErrInvalidTransition) {
		t.Errorf("second StartEncode: %v, want ErrInvalidTransition", err)
	}
	if err := j.Abandon("queued", "cancelled"); !errors.Is(err, journal.ErrInvalidTransition) {
		t.Errorf("Abandon of a started command: %v, want ErrInvalidTransition", err)
	}
	if isNew, err := j.AcceptStarted("fresh", "desk-2", "dev"); err != nil || !isNew {
		t.Fatalf("AcceptStarted = %v, %v", isNew, err)
	}
	u, err := j.Unfinished()
	must(t, err)
	if got, want := ids(u), []string{"queued", "waiting", "fresh"}; !equal(got, want) {
		t.Errorf("Unfinished = %v, want %v", got, want)
	}
	if s := j.Stats(); s.Steps[journal.StepAccepted] != 1 || s.Steps[journal.StepEncodeStarted] != 2 {
		t.Errorf("Stats = %+v", s)
	}
	must(t, j.FinishEncode("queued", journal.Result{OK: true}, "Processed", ""))
	if e := mustEntry(t, j, "queued"); e.Step != journal.StepReportQueued || !e.EncodeStartedAt.Equal(c.Now()) {
		t.Errorf("finished queued entry = %+v", e)
	}
	must(t, j.Close())

	// A crash between a queued card's start and its result.
	must(t, journal.WriteStartRecord(dir, "waiting", "frontdesk", "dev-1", c.Now()))
	j = openJournal(t, dir, c)
	if e := mustEntry(t, j, "waiting"); e.Step != journal.StepEncodeStarted || !e.EncodeStartedAt.Equal(c.Now()) {
		t.Errorf("replayed queued entry = %+v", e)
	}
	if e := mustEntry(t, j, "fresh"); e.Step != journal.StepEncodeStarted {
		t.Errorf("fresh start committed at Close: %+v", e)
	}
	if s := j.Stats(); s.Steps[journal.StepAccepted] != 0 || s.Steps[journal.StepEncodeStarted] != 2 || s.Steps[journal.StepReportQueued] != 1 {
		t.Errorf("Stats after the replay = %+v", s)
	}
}
