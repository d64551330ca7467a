package journal_test

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// Re-executed as the other process of TestOtherProcess.
		helperProcess()
		return
	}
	goleak.VerifyTestMain(m)
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openJournal(t *testing.T, dir string, c *clock) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{Now: c.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func mustEntry(t *testing.T, j *journal.Journal, id string) journal.Entry {
	t.Helper()
	e, ok, err := j.Get(id)
	if err != nil || !ok {
		t.Fatalf("Get(%s) = %v, %v", id, ok, err)
	}
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func accept(t *testing.T, j *journal.Journal, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, isNew, err := j.Accept(id, "frontdesk", "dev-1"); err != nil || !isNew {
			t.Fatalf("Accept(%s) = new %v, %v", id, isNew, err)
		}
	}
}

func ids(entries []journal.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.CommandID
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHappyPath(t *testing.T) {
	c := newClock()
	j := openJournal(t, t.TempDir(), c)

	e, isNew, err := j.Accept("cmd-1", "frontdesk", "dev-1")
	if err != nil || !isNew {
		t.Fatalf("Accept = new %v, %v", isNew, err)
	}
	if e.Step != journal.StepAccepted || e.Seq == 0 || !e.AcceptedAt.Equal(c.Now()) || e.Encoder != "frontdesk" || e.Device != "dev-1" {
		t.Fatalf("accepted entry = %+v", e)
	}

	c.Advance(time.Second)
	must(t, j.StartEncode("cmd-1"))
	if e := mustEntry(t, j, "cmd-1"); e.Step != journal.StepEncodeStarted || !e.EncodeStartedAt.Equal(c.Now()) {
		t.Fatalf("after StartEncode: %+v", e)
	}

	c.Advance(time.Second)
	res := journal.Result{OK: true, Note: "2 keys for room 101", Keys: []journal.Key{{ID: "k1", Type: "RfidTag", Value: "A1"}}}
	must(t, j.FinishEncode("cmd-1", res, "Processed", res.Note))
	e = mustEntry(t, j, "cmd-1")
	if e.Step != journal.StepReportQueued || !e.EncodeFinishedAt.Equal(c.Now()) || !e.ReportQueuedAt.Equal(c.Now()) ||
		e.Result == nil || e.Result.Note != res.Note || len(e.Result.Keys) != 1 || e.Result.Keys[0] != res.Keys[0] ||
		e.Report == nil || *e.Report != (journal.Report{State: "Processed", Notes: res.Note}) || !e.NextAttempt.Equal(c.Now()) {
		t.Fatalf("after FinishEncode: %+v", e)
	}
	if o, _ := j.Outbox(); !equal(ids(o), []string{"cmd-1"}) {
		t.Errorf("Outbox = %v, want [cmd-1]", ids(o))
	}

	c.Advance(time.Second)
	must(t, j.MarkReported("cmd-1"))
	e = mustEntry(t, j, "cmd-1")
	if e.Step != journal.StepReported || !e.Final || !e.FinalAt.Equal(c.Now()) {
		t.Fatalf("after MarkReported: %+v", e)
	}
	if k := e.Result.Keys[0]; k.Value != "" || k.ID != "k1" {
		t.Errorf("reported entry keeps key %+v, want the value forgotten", k)
	}
	if u, _ := j.Unfinished(); len(u) != 0 {
		t.Errorf("Unfinished = %v, want none", ids(u))
	}
	if o, _ := j.Outbox(); len(o) != 0 {
		t.Errorf("Outbox = %v, want none", ids(o))
	}
}

func TestFailedEncode(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	accept(t, j, "cmd-1")
	must(t, j.StartEncode("cmd-1"))
	res := journal.Result{Error: "lock system offline", MaybeCut: true}
	must(t, j.FinishEncode("cmd-1", res, "Error", res.Error))
	e := mustEntry(t, j, "cmd-1")
	if e.Step != journal.StepReportQueued || e.Result == nil || e.Result.OK || !e.Result.MaybeCut ||
		e.Result.Error != res.Error || e.Report.State != "Error" {
		t.Fatalf("after a failed encode: %+v", e)
	}
}

func TestDeclinedAndAbandoned(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	accept(t, j, "too-old", "cancelled")
	must(t, j.QueueReport("too-old", "Cancelled", "command is too old"))
	e := mustEntry(t, j, "too-old")
	if e.Step != journal.StepReportQueued || e.Result != nil || e.Report.Notes != "command is too old" || !e.EncodeStartedAt.IsZero() {
		t.Fatalf("declined = %+v", e)
	}
	must(t, j.Abandon("cancelled", "cancelled in Mews while queued"))
	e = mustEntry(t, j, "cancelled")
	if e.Step != journal.StepIgnored || !e.Final || e.Reason != "cancelled in Mews while queued" || e.Report != nil {
		t.Fatalf("abandoned = %+v", e)
	}
	if o, _ := j.Outbox(); !equal(ids(o), []string{"too-old"}) {
		t.Errorf("Outbox = %v, want [too-old]", ids(o))
	}
}

func TestInvalidTransitions(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	// One command parked in each step.
	accept(t, j, "accepted", "started", "queued", "reported", "abandoned")
	for _, id := range []string{"started", "queued", "reported"} {
		must(t, j.StartEncode(id))
	}
	for _, id := range []string{"queued", "reported"} {
		must(t, j.FinishEncode(id, journal.Result{OK: true}, "Processed", ""))
	}
	must(t, j.MarkReported("reported"))
	must(t, j.Abandon("abandoned", "gone"))
	if _, _, err := j.Ignore("ignored", "dev-9", "not a key cutter of ours"); err != nil {
		t.Fatal(err)
	}

	ops := map[string]func(id string) error{
		"StartEncode":  j.StartEncode,
		"FinishEncode": func(id string) error { return j.FinishEncode(id, journal.Result{OK: true}, "Processed", "") },
		"QueueReport":  func(id string) error { return j.QueueReport(id, "Cancelled", "") },
		"ReportFailed": func(id string) error { return j.ReportFailed(id, errors.New("503"), time.Now()) },
		"MarkReported": j.MarkReported,
		"Abandon":      func(id string) error { return j.Abandon(id, "cancelled in Mews") },
	}
	// allowed[op] is the one step op may start from; every other is refused.
	allowed := map[string]string{
		"StartEncode":  "accepted",
		"FinishEncode": "started",
		"QueueReport":  "accepted",
		"ReportFailed": "queued",
		"MarkReported": "queued",
		"Abandon":      "accepted",
	}
	for name, op := range ops {
		for _, id := range []string{"accepted", "started", "queued", "reported", "abandoned", "ignored"} {
			if allowed[name] == id {
				continue
			}
			t.Run(name+"/"+id, func(t *testing.T) {
				before := mustEntry(t, j, id)
				err := op(id)
				if !errors.Is(err, journal.ErrInvalidTransition) {
					t.Fatalf("%s on %s: err = %v, want ErrInvalidTransition", name, id, err)
				}
				if after := mustEntry(t, j, id); after.Step != before.Step {
					t.Fatalf("refused %s still moved %s from %s to %s", name, id, before.Step, after.Step)
				}
			})
		}
		t.Run(name+"/unknown", func(t *testing.T) {
			if err := op("nope"); !errors.Is(err, journal.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestDedup(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	first, _, err := j.Accept("cmd-1", "frontdesk", "dev-1")
	must(t, err)
	must(t, j.StartEncode("cmd-1"))

	again, isNew, err := j.Accept("cmd-1", "other", "dev-2")
	if err != nil || isNew {
		t.Fatalf("second Accept = new %v, %v", isNew, err)
	}
	if again.Step != journal.StepEncodeStarted || again.Seq != first.Seq || again.Encoder != "frontdesk" {
		t.Fatalf("second Accept returned %+v, want the existing entry unchanged", again)
	}
	if _, isNew, _ := j.Ignore("cmd-1", "dev-1", "x"); isNew {
		t.Fatal("Ignore of an accepted command reported it as new")
	}

	ign, isNew, err := j.Ignore("foreign", "dev-9", "device is not a configured key cutter")
	if err != nil || !isNew || ign.Step != journal.StepIgnored || !ign.Final {
		t.Fatalf("Ignore = %+v, new %v, %v", ign, isNew, err)
	}
	if _, isNew, _ := j.Accept("foreign", "frontdesk", "dev-9"); isNew {
		t.Fatal("Accept of an ignored command reported it as new")
	}
	if e := mustEntry(t, j, "foreign"); e.Step != journal.StepIgnored {
		t.Fatalf("ignored command moved to %s", e.Step)
	}
	if _, _, err := j.Accept("", "frontdesk", "dev-1"); err == nil {
		t.Fatal("Accept with an empty id succeeded")
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	j, err := journal.Open(dir, journal.Options{Now: c.Now})
	must(t, err)
	accept(t, j, "a", "b", "c")
	must(t, j.StartEncode("b"))
	must(t, j.StartEncode("c"))
	must(t, j.FinishEncode("c", journal.Result{OK: true, Note: "1 key"}, "Processed", "1 key"))
	must(t, j.ReportFailed("c", errors.New("connection refused"), c.Now().Add(time.Minute)))
	mark := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	must(t, j.SetDigitalWatermark(mark))
	before := j.Stats()
	want := map[string]journal.Entry{}
	for _, id := range []string{"a", "b", "c"} {
		want[id] = mustEntry(t, j, id)
	}
	must(t, j.Close())
	if _, _, err := j.Get("a"); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := j.StartEncode("a"); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("StartEncode after Close: %v, want ErrClosed", err)
	}

	j = openJournal(t, dir, c)
	for id, w := range want {
		got := mustEntry(t, j, id)
		if got.Step != w.Step || got.Seq != w.Seq || !got.AcceptedAt.Equal(w.AcceptedAt) ||
			got.Attempts != w.Attempts || !got.NextAttempt.Equal(w.NextAttempt) || got.LastError != w.LastError {
			t.Errorf("%s after reopen = %+v, want %+v", id, got, w)
		}
	}
	if v, err := j.DigitalWatermark(); err != nil || !v.Equal(mark) {
		t.Errorf("watermark after reopen = %v, %v", v, err)
	}
	if after := j.Stats(); after.Open != before.Open || after.Steps[journal.StepReportQueued] != 1 || after.Steps[journal.StepAccepted] != 1 {
		t.Errorf("Stats after reopen = %+v, before %+v", after, before)
	}
	// Seq keeps counting after a restart, so FIFO order survives it.
	d, _, err := j.Accept("d", "frontdesk", "dev-1")
	must(t, err)
	if d.Seq <= want["c"].Seq {
		t.Errorf("Seq after reopen = %d, not after %d", d.Seq, want["c"].Seq)
	}
}

func TestUnfinished(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	accept(t, j, "q1", "started", "queued", "reported", "q2", "abandoned", "declined")
	must(t, j.StartEncode("started"))
	must(t, j.StartEncode("queued"))
	must(t, j.FinishEncode("queued", journal.Result{OK: true}, "Processed", ""))
	must(t, j.StartEncode("reported"))
	must(t, j.FinishEncode("reported", journal.Result{OK: true}, "Processed", ""))
	must(t, j.MarkReported("reported"))
	must(t, j.Abandon("abandoned", "cancelled in Mews while queued"))
	must(t, j.QueueReport("declined", "Cancelled", "too old"))
	_, _, err := j.Ignore("foreign", "dev-9", "not ours")
	must(t, err)

	u, err := j.Unfinished()
	must(t, err)
	if got, want := ids(u), []string{"q1", "started", "q2"}; !equal(got, want) {
		t.Fatalf("Unfinished = %v, want %v (accept order)", got, want)
	}
	steps := map[string]journal.Step{"q1": journal.StepAccepted, "started": journal.StepEncodeStarted, "q2": journal.StepAccepted}
	for _, e := range u {
		if e.Step != steps[e.CommandID] {
			t.Errorf("%s in step %s, want %s", e.CommandID, e.Step, steps[e.CommandID])
		}
	}

	// Recovery of an interrupted encode: report it, never encode again.
	must(t, j.FinishEncode("started", journal.Result{Error: "interrupted, please cut again", MaybeCut: true}, "Error", "interrupted, please cut again"))
	s := j.Stats()
	want := map[journal.Step]int{journal.StepAccepted: 2, journal.StepReportQueued: 3, journal.StepReported: 1, journal.StepIgnored: 2}
	for _, step := range journal.Steps() {
		if s.Steps[step] != want[step] {
			t.Errorf("Stats.Steps[%s] = %d, want %d", step, s.Steps[step], want[step])
		}
	}
	if s.Open != 5 || s.FileBytes == 0 {
		t.Errorf("Stats = %+v, want 5 open and a file size", s)
	}
}

func TestOutbox(t *testing.T) {
	c := newClock()
	j := openJournal(t, t.TempDir(), c)
	accept(t, j, "a", "b", "c", "not-queued")
	for _, id := range []string{"a", "b", "c"} {
		must(t, j.StartEncode(id))
		must(t, j.FinishEncode(id, journal.Result{OK: true}, "Processed", id))
	}
	o, err := j.Outbox()
	must(t, err)
	if got := ids(o); !equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Outbox = %v, want accept order for equal due times", got)
	}

	// a fails twice and is pushed back behind b and c.
	must(t, j.ReportFailed("a", errors.New("503 Service Unavailable"), c.Now().Add(2*time.Second)))
	must(t, j.ReportFailed("a", errors.New("timeout"), c.Now().Add(4*time.Second)))
	must(t, j.ReportFailed("b", errors.New("503 Service Unavailable"), c.Now().Add(time.Second)))
	o, err = j.Outbox()
	must(t, err)
	if got := ids(o); !equal(got, []string{"c", "b", "a"}) {
		t.Fatalf("Outbox = %v, want [c b a] by next attempt", got)
	}
	a := o[2]
	if a.Attempts != 2 || a.LastError != "timeout" || !a.NextAttempt.Equal(c.Now().Add(4*time.Second)) || a.Report.Notes != "a" {
		t.Fatalf("a after two failures = %+v", a)
	}

	must(t, j.MarkReported("c"))
	o, err = j.Outbox()
	must(t, err)
	if got := ids(o); !equal(got, []string{"b", "a"}) {
		t.Fatalf("Outbox after MarkReported(c) = %v", got)
	}
}

func TestCompact(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{Now: c.Now, History: 24 * time.Hour})
	must(t, err)
	defer func() { _ = j.Close() }()

	accept(t, j, "old-reported", "old-open", "old-queued")
	must(t, j.StartEncode("old-reported"))
	must(t, j.FinishEncode("old-reported", journal.Result{OK: true}, "Processed", ""))
	must(t, j.MarkReported("old-reported"))
	must(t, j.QueueReport("old-queued", "Cancelled", "too old"))
	_, _, err = j.Ignore("old-ignored", "dev-9", "not ours")
	must(t, err)
	must(t, j.PutDigitalRecord("res-1", []byte("x")))

	c.Advance(20 * time.Hour)
	accept(t, j, "recent")
	must(t, j.QueueReport("recent", "Cancelled", ""))
	must(t, j.MarkReported("recent"))

	c.Advance(5 * time.Hour) // old final entries are now 25h old, recent 5h.
	removed, err := j.Compact()
	must(t, err)
	if removed != 2 {
		t.Errorf("Compact removed %d, want 2", removed)
	}
	for id, kept := range map[string]bool{"old-reported": false, "old-ignored": false, "old-open": true, "old-queued": true, "recent": true} {
		if _, ok, err := j.Get(id); err != nil || ok != kept {
			t.Errorf("%s present = %v (%v), want %v", id, ok, err, kept)
		}
	}
	if v, _ := j.DigitalRecord("res-1"); v == nil {
		t.Error("Compact removed a digital key record")
	}
	s := j.Stats()
	if s.Steps[journal.StepReported] != 1 || s.Steps[journal.StepIgnored] != 0 || s.Open != 2 {
		t.Errorf("Stats after Compact = %+v", s)
	}
	if removed, err := j.Compact(); err != nil || removed != 0 {
		t.Errorf("second Compact = %d, %v; want 0", removed, err)
	}
	// A compacted command is unknown again: a late event would be new.
	if _, isNew, err := j.Accept("old-reported", "frontdesk", "dev-1"); err != nil || !isNew {
		t.Errorf("Accept after compaction = new %v, %v", isNew, err)
	}
}

func TestConcurrentUse(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := string(rune('a'+w)) + "-" + string(rune('a'+i))
				if _, _, err := j.Accept(id, "enc", "dev"); err != nil {
					errs <- err
					return
				}
				if err := j.StartEncode(id); err != nil {
					errs <- err
					return
				}
				_ = j.Stats()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := j.Stats(); s.Steps[journal.StepEncodeStarted] != 100 {
		t.Fatalf("EncodeStarted = %d, want 100", s.Steps[journal.StepEncodeStarted])
	}
}
