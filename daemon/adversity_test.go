package daemon_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// slowDesk is one station whose cards take long enough for a queue to
// build up behind the first.
var slowDesk = simDesk(`timeout = "10s"
delay = "400ms"
`)

// TestStopWithQueuedCardsCutsOnlyTheOneInFlight: a stop while cards wait
// finishes the card being encoded, starts no other, and leaves the queued
// commands accepted in the journal; the next start cuts them, except the
// one Mews cancelled meanwhile.
func TestStopWithQueuedCardsCutsOnlyTheOneInFlight(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	h := start(t, srv, dir, slowDesk)
	first := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitState("first card under way", first, mews.CommandProcessing)
	queued := []string{
		h.cut(mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 1),
		h.cut(mewstest.KeyCutter1, mewstest.ReservationLongStay, 1),
	}
	h.waitLog("queued commands accepted", func(logs string) bool {
		for _, id := range queued {
			if !logLine(logs, id, "key command queued") {
				return false
			}
		}
		return true
	})
	h.stop()
	if !logLine(h.logs.String(), `"queued":2`, "stopping with commands queued") {
		t.Errorf("the stop does not say what stays queued:\n%s", h.logs.String())
	}

	if n := h.encodedCount(first); n != 1 {
		t.Errorf("the card in flight was encoded %d times, want 1", n)
	}
	assertState(t, srv, first, mews.CommandProcessed, "")
	for _, id := range queued {
		if n := h.encodedCount(id); n != 0 {
			t.Errorf("queued command %s was cut during the stop", id)
		}
		if hist := srv.StateHistory(id); hist[len(hist)-1] != mews.CommandReceived {
			t.Errorf("queued command %s: Mews saw %v during the stop", id, hist)
		}
	}
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range queued {
		e, known, err := j.Get(id)
		if err != nil || !known || e.Step != journal.StepAccepted {
			t.Errorf("queued command %s in the journal: %v %v %v, want accepted", id, e.Step, known, err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// The front desk cancels one while the daemon is down.
	srv.SetCommandState(queued[0], mews.CommandCancelled)
	h2 := start(t, srv, dir, slowDesk)
	h2.waitFinal(queued[1])
	assertState(t, srv, queued[1], mews.CommandProcessed, "")
	if n := h2.encodedCount(queued[1]); n != 1 {
		t.Errorf("resumed command encoded %d times, want 1", n)
	}
	h2.stop()
	if n := h2.encodedCount(queued[0]); n != 0 {
		t.Errorf("the command cancelled while the daemon was down was cut")
	}
	if hist := srv.StateHistory(queued[0]); hist[len(hist)-1] != mews.CommandCancelled {
		t.Errorf("cancelled command: history %v", hist)
	}
}

// TestRefusedProcessingUpdateOfActiveCommandStillCuts: a 400 on the
// Processing update is not proof the command is closed. Read back, it is
// still active: the card is cut and reported.
func TestRefusedProcessingUpdateOfActiveCommandStillCuts(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	h.waitFor("catch-up poll", func(s *mewstest.Server) bool { return s.RequestCount(mews.OpActiveCommands) > 0 })
	srv.FailNext(mews.OpUpdateCommand, 1, 400, "")
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	h.assertCutOnce(srv, id, "1 key")
}

// TestRefusedFinalReportIsRetriedNotDropped: Mews refuses the final state
// of a command it still shows active. The report stays in the outbox, is
// shown in the health snapshot, logged as an error, and delivered once Mews
// takes it.
func TestRefusedFinalReportIsRetriedNotDropped(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	h.waitFor("catch-up poll", func(s *mewstest.Server) bool { return s.RequestCount(mews.OpActiveCommands) > 0 })
	// The Processing update and the first three final reports.
	srv.FailNext(mews.OpUpdateCommand, 4, 400, "")
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFor("the refused report shown in the health snapshot", func(*mewstest.Server) bool {
		return h.d.Health().OutboxRefused == 1
	})
	h.waitFinal(id)
	h.assertCutOnce(srv, id, "1 key")
	if !strings.Contains(h.logs.String(), `"level":"error"`) || !strings.Contains(h.logs.String(), "Mews refused the report") {
		t.Errorf("the refused report was not logged as an error:\n%s", h.logs.String())
	}
	h.stop()
	if n := h.d.Health().OutboxRefused; n != 0 {
		t.Errorf("health still shows %d refused reports after delivery", n)
	}
}

// TestHugeEncoderErrorIsCutForMews: a vendor's 1 MiB error text becomes a
// short note, and the report goes through.
func TestHugeEncoderErrorIsCutForMews(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), `
[[encoders]]
name = "desk-1"
driver = "sim"
delay = "1ms"
failure_rate = 1.0
fail_message = "card jammed `+strings.Repeat("very ", 200_000)+`badly"
`)
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandError, "card jammed very")
	if note := srv.CommandNotes(id); len([]rune(note)) > 250 || !strings.HasSuffix(note, "…") {
		t.Errorf("note of %d characters: %.80q…", len([]rune(note)), note)
	}
}

// logLine reports whether one line of logs contains all of parts.
func logLine(logs string, parts ...string) bool {
	for line := range strings.Lines(logs) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestCommandAgeUsesMewsClock: the age limit is measured by Mews's clock
// (the Date of the answer that delivered the command), so a PC clock far
// off neither cancels a fresh key nor lets a stale one through, and the
// skew is logged as a warning.
func TestCommandAgeUsesMewsClock(t *testing.T) {
	for _, tc := range []struct {
		name string
		// mewsOffset is Mews's clock minus this PC's.
		mewsOffset time.Duration
		created    time.Duration // before Mews's now
		want       mews.CommandState
		skew       string
	}{
		{"PC clock 45 minutes fast, fresh command", -45 * time.Minute, 0, mews.CommandProcessed, "45m0s ahead of Mews"},
		{"PC clock 2 hours slow, stale command", 2 * time.Hour, 2 * time.Hour, mews.CommandCancelled, "2h0m0s behind Mews"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mewsNow := func() time.Time { return time.Now().Add(tc.mewsOffset) }
			srv := mewstest.NewServer(mewstest.WithClock(mewsNow))
			t.Cleanup(srv.Close)
			id, err := srv.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationArriving, 1)
			if err != nil {
				t.Fatal(err)
			}
			if tc.created > 0 {
				c, _ := srv.Command(id)
				srv.SetCommandState(id, mews.CommandCancelled)
				c.ID, c.State, c.CreatedUtc = "", mews.CommandPending, mewsNow().Add(-tc.created)
				id = srv.CreateCommand(c)
			}
			h := start(t, srv, t.TempDir(), "")
			h.waitFinal(id)
			assertState(t, srv, id, tc.want, "")
			h.waitLog("the clock warning", func(logs string) bool {
				return logLine(logs, `"level":"warn"`, "clock is off Mews", tc.skew)
			})
		})
	}
}

// TestKeyCommandsGoFirstWhenTheBudgetIsShort: digital keys for a dozen
// check-ins want more requests than the budget holds; they leave the last
// fifth of it to key commands, so a card is still cut at once. (Without
// the priority the key command usually still wins this race, being faster
// than a digital key's round; the limiter's own tests pin the rule down.)
func TestKeyCommandsGoFirstWhenTheBudgetIsShort(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 12 {
		srv.AddReservation(mews.Reservation{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Number: fmt.Sprint(5000 + i),
			State: mews.ReservationStarted, AccountID: mewstest.CustomerNovak.ID, AssignedResourceID: mewstest.RoomID(fmt.Sprint(101 + i)),
			ScheduledStartUtc: now.Add(-time.Hour), ActualStartUtc: &now, ScheduledEndUtc: now.Add(48 * time.Hour)})
	}
	dir := t.TempDir()
	// One window for the whole test: a slot once used never comes back.
	text := strings.Replace(configText(srv, dir, digitalEncoders+"\n[digital_keys]\nenabled = true\nencoder = \"mobile\"\n"),
		"max_command_age", "request_limit = 10\nrequest_window = \"1h\"\nmax_command_age", 1)
	dh := startDigitalText(t, srv, dir, text)
	// Four keys written back (with the start-up polls, 8 requests), the
	// fifth issued: its write-back is next at the limiter's door.
	dh.until("the fifth digital key issued", func() bool {
		return strings.Count(dh.logs.String(), `"op":"issue"`) >= 5 && srv.RequestCount("") >= 8
	})

	id := dh.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	dh.until("the card cut", func() bool { return logLine(dh.logs.String(), id, "key encoded") })
	// Both of the command's requests went through, the fetch and the
	// Processing update: digital keys left it the reserve.
	if hist := srv.StateHistory(id); !slices.Contains(hist, mews.CommandProcessing) {
		t.Errorf("the key command's Processing update did not get through: %v", hist)
	}
	if n := srv.RequestCount(mews.OpAddAccessTokens); n > 4 {
		t.Errorf("digital keys made %d write-backs, taking the key commands' reserve", n)
	}
}

// TestCancelledWhileQueuedDuringAnOutageIsNotCut: while Mews fails every
// update, the Processing update that would say "cancelled" is skipped; the
// Cancelled event still takes the command out of its queue.
func TestCancelledWhileQueuedDuringAnOutageIsNotCut(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), slowDesk)
	h.waitFor("catch-up poll", func(s *mewstest.Server) bool { return s.RequestCount(mews.OpActiveCommands) > 0 })
	srv.FailNext(mews.OpUpdateCommand, 1000, 503, "")
	first := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	queued := h.cut(mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 1)
	h.waitLog("both commands queued", func(logs string) bool {
		return logLine(logs, first, "key command queued") && logLine(logs, queued, "key command queued")
	})
	srv.SetCommandState(queued, mews.CommandCancelled)
	h.waitLog("the first card cut", func(logs string) bool { return logLine(logs, first, "key encoded") })
	later := h.cut(mewstest.KeyCutter1, mewstest.ReservationLongStay, 1)
	// FIFO: once a later card is cut, the cancelled one has had its turn.
	h.waitLog("a later card cut", func(logs string) bool { return logLine(logs, later, "key encoded") })
	if n := h.encodedCount(queued); n != 0 {
		t.Errorf("the command cancelled while queued was cut %d times", n)
	}
}
