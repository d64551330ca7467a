package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// startObserved is start with a channel that receives every encoder
// outcome, for tests that must know when the encoder ran.
func startObserved(t *testing.T, srv *mewstest.Server, dir string) (*harness, <-chan daemon.Outcome) {
	t.Helper()
	encoded := make(chan daemon.Outcome, 100)
	h := launch(t, srv, dir, configText(srv, dir, encoders), zerolog.DebugLevel, func(deps *daemon.Deps) {
		deps.ReportBackoff = 10 * time.Millisecond
		record := deps.OnEncoded
		deps.OnEncoded = func(o daemon.Outcome) {
			record(o)
			encoded <- o
		}
	})
	return h, encoded
}

func (h *harness) nextOutcome(encoded <-chan daemon.Outcome) daemon.Outcome {
	h.t.Helper()
	select {
	case o := <-encoded:
		return o
	case <-time.After(waitTimeout):
		h.t.Fatalf("the encoder was not called\nlogs:\n%s", h.logs)
		return daemon.Outcome{}
	}
}

// finalStates lists the final states a command went through in Mews.
func finalStates(srv *mewstest.Server, id string) []mews.CommandState {
	var out []mews.CommandState
	for _, st := range srv.StateHistory(id) {
		if st.Final() {
			out = append(out, st)
		}
	}
	return out
}

func TestMewsOutageDelaysReportsNotKeys(t *testing.T) {
	srv := mewstest.NewServer(mewstest.WithRateLimit(0, 0))
	// A cleanup, not a defer: cleanups run last in, first out, so the
	// daemon stops (and flushes its outbox) before the server goes.
	t.Cleanup(srv.Close)
	h, encoded := startObserved(t, srv, t.TempDir())
	// Far more failures than the outage will use: the test ends it.
	srv.FailNext(mews.OpUpdateCommand, 1000, http.StatusInternalServerError, "")

	var ids []string
	for i, r := range []string{mewstest.ReservationArriving, mewstest.ReservationCheckedIn, mewstest.ReservationLongStay, mewstest.ReservationArriving} {
		id := h.cut(mewstest.KeyCutter1, r, 1)
		ids = append(ids, id)
		o := h.nextOutcome(encoded)
		if o.CommandID != id || o.State != mews.CommandProcessed {
			t.Fatalf("outcome %+v, want %s Processed", o, id)
		}
		// The first key learns of the outage through its Processing
		// update; later ones must not wait for Mews at all.
		if i > 0 && o.Latency > time.Second {
			t.Errorf("key %d waited %s for its encoder during the outage", i+1, o.Latency)
		}
	}
	for _, id := range ids {
		if c, _ := srv.Command(id); c.State.Final() {
			t.Fatalf("command %s is %s while every update fails", id, c.State)
		}
	}

	endOutage(t, srv)
	h.waitFinal(ids...)
	for _, id := range ids {
		h.assertCutOnce(srv, id, "1 key")
		if f := finalStates(srv, id); len(f) != 1 {
			t.Errorf("command %s: final states %v, want one", id, f)
		}
	}
}

// endOutage uses up the failures FailNext queued by calling
// commands/update itself until Mews answers something else (a 400 for the
// unknown id).
func endOutage(t *testing.T, srv *mewstest.Server) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{
		"ClientToken": mewstest.ClientToken, "AccessToken": mewstest.AccessToken, "Client": "outage",
		"CommandId": "00000000-0000-4000-8000-000000000000", "State": string(mews.CommandProcessing),
	})
	for range 2000 {
		resp, err := http.Post(srv.URL()+"/api/connector/v1/"+mews.OpUpdateCommand, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			return
		}
	}
	t.Fatal("the outage does not end")
}

func TestRestartIgnoresEventsForFinishedCommands(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	h := start(t, srv, dir, "")
	old := []string{h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1), h.cut(mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 2)}
	h.waitFinal(old...)
	h.stop()

	srv.ResetRequests()
	h = start(t, srv, dir, "")
	h.waitFor("catch-up poll", func(s *mewstest.Server) bool { return s.RequestCount(mews.OpActiveCommands) > 0 })
	srv.ResetRequests()
	for _, id := range old {
		for _, st := range []mews.CommandState{mews.CommandPending, mews.CommandReceived, mews.CommandProcessing, mews.CommandProcessed} {
			srv.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: id, State: string(st)})
		}
	}
	// Events are handled in order: once this command is done, the replayed
	// ones have been looked at.
	fresh := h.cut(mewstest.KeyCutter1, mewstest.ReservationLongStay, 1)
	h.waitFinal(fresh)
	for _, id := range old {
		if n := h.encodedCount(id); n != 0 {
			t.Errorf("finished command %s encoded again after the restart", id)
		}
		if f := finalStates(srv, id); len(f) != 1 {
			t.Errorf("command %s: final states %v, want one", id, f)
		}
	}
	if n := srv.RequestCount(mews.OpCommandsByIDs); n != 1 {
		t.Errorf("%d getAllByIds requests, want 1 (the new command's): %v", n, srv.Requests())
	}
}

func TestLostTrackOfProcessingCommand(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	// Commands a previous mews-keyd set Processing before its journal was
	// lost: one on our key cutter, one on a cutter another system serves.
	ours := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	theirs := mustCut(t, srv, mewstest.KeyCutter2, mewstest.ReservationCheckedIn, 1)
	srv.SetCommandState(ours, mews.CommandProcessing)
	srv.SetCommandState(theirs, mews.CommandProcessing)
	h := start(t, srv, t.TempDir(), "")
	for range 2 {
		srv.PushEvents(
			mews.Event{Type: mews.EventDeviceCommand, ID: ours, State: string(mews.CommandProcessing)},
			mews.Event{Type: mews.EventDeviceCommand, ID: theirs, State: string(mews.CommandProcessing)},
		)
	}
	h.waitFinal(ours)
	assertState(t, srv, ours, mews.CommandError, "lost track of this key")
	if n := h.encodedCount(ours); n != 0 {
		t.Errorf("a command of unknown progress was encoded")
	}
	// A barrier: a new command's fetch comes after the events above.
	fresh := h.cut(mewstest.KeyCutter1, mewstest.ReservationLongStay, 1)
	h.waitFinal(fresh)
	if c, _ := srv.Command(theirs); c.State != mews.CommandProcessing {
		t.Errorf("foreign command changed to %s", c.State)
	}
	// One fetch each, then they are in the journal: repeated events cost
	// nothing.
	for _, id := range []string{ours, theirs} {
		if n := fetches(srv, id); n != 1 {
			t.Errorf("command %s fetched %d times, want once", id, n)
		}
	}
}

// fetches counts the getAllByIds requests that asked for id.
func fetches(srv *mewstest.Server, id string) int {
	n := 0
	for _, r := range srv.Requests() {
		if ids, ok := r.Body["CommandIds"].([]any); ok && r.Op == mews.OpCommandsByIDs && slices.Contains(ids, any(id)) {
			n++
		}
	}
	return n
}

func TestCorruptJournalMovedAside(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	garbage := bytes.Repeat([]byte("not a journal "), 5000)
	if err := os.WriteFile(filepath.Join(dir, journal.FileName), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	h := start(t, srv, dir, "")
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandProcessed, "1 key")

	aside, _ := filepath.Glob(filepath.Join(dir, journal.FileName+".corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("moved-aside journals %v, want one", aside)
	}
	if kept, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(kept, garbage) {
		t.Errorf("the corrupt journal was not kept as it was (%v)", err)
	}
	// Decoded, because JSON escapes the backslashes of Windows paths.
	var loud bool
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var entry struct {
			Level   string `json:"level"`
			Message string `json:"message"`
			MovedTo string `json:"moved_to"`
		}
		loud = loud || json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "error" &&
			strings.Contains(entry.Message, "journal is corrupt") && entry.MovedTo == aside[0]
	}
	if !loud {
		t.Errorf("no error naming the moved-aside file in the logs:\n%s", h.logs)
	}
}

func TestSecondDaemonOnStateDirRefuses(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	start(t, srv, dir, "")

	cfg, _, err := config.Parse("test.toml", []byte(configText(srv, dir, encoders)), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, daemon.Deps{Logger: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err = d.Run(ctx)
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("second daemon: Run returned %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "in use by another mews-keyd") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not say which state dir is in use by what", err)
	}
}

// TestRecoveryOfAcceptedCommands starts a daemon on a journal that
// accepted commands and never started them, as after a crash between
// accepting and encoding.
func TestRecoveryOfAcceptedCommands(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	// Marked Processing before the crash: still never encoded, so cut.
	marked := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	srv.SetCommandState(marked, mews.CommandProcessing)
	// Waited through a long outage: too old to cut now.
	c, _ := srv.Command(mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 1))
	c.ID, c.CreatedUtc = "", time.Now().Add(-2*time.Hour)
	stale := srv.CreateCommand(c)
	// Cancelled at the desk meanwhile, and gone from Mews altogether.
	cancelled := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationLongStay, 1)
	srv.SetCommandState(cancelled, mews.CommandCancelled)
	gone := "6f1c2b4e-0000-4000-8000-00000000dead"

	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Accept order is resume order: by the time the last two are final,
	// the first two have been dealt with.
	for _, id := range []string{cancelled, gone, marked, stale} {
		if _, _, err := j.Accept(id, "desk-1", mewstest.KeyCutter1.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	h := start(t, srv, dir, "")
	h.waitFinal(marked, stale)
	assertState(t, srv, marked, mews.CommandProcessed, "1 key")
	assertState(t, srv, stale, mews.CommandCancelled, "old")
	h.stop()
	if n := h.encodedCount(marked); n != 1 {
		t.Errorf("resumed command encoded %d times, want 1", n)
	}
	for _, id := range []string{stale, cancelled, gone} {
		if n := h.encodedCount(id); n != 0 {
			t.Errorf("command %s encoded", id)
		}
	}
	if f := finalStates(srv, cancelled); len(f) != 1 {
		t.Errorf("cancelled command: final states %v, want only the cancel", f)
	}

	j, err = journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, id := range []string{marked, stale, cancelled, gone} {
		if e, _, err := j.Get(id); err != nil || !e.Step.Final() {
			t.Errorf("command %s left in step %s (%v): it would be fetched at every poll", id, e.Step, err)
		}
	}
}
