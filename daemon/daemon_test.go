package daemon_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/daemontest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"

	_ "github.com/mews-keyd/mews-keyd/keys/exec"
	_ "github.com/mews-keyd/mews-keyd/keys/sim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait; it is a failure, not a pacing device.
const waitTimeout = 20 * time.Second

// encoders is the default encoder section: two simulated stations.
const encoders = `
[[encoders]]
name = "desk-1"
driver = "sim"
timeout = "5s"
delay = "20ms"

[[encoders]]
name = "desk-2"
driver = "sim"
timeout = "5s"
delay = "20ms"
`

// harness runs one daemon against one simulator.
type harness struct {
	t    *testing.T
	srv  *mewstest.Server
	dir  string
	logs *daemontest.Log
	d    *daemontest.Daemon

	mu       sync.Mutex
	outcomes []daemon.Outcome
	ended    []time.Time // when each outcome's encoder call returned
}

// simDesk is encoder desk-1 as a sim encoder with the settings given.
func simDesk(settings string) string {
	return "\n[[encoders]]\nname = \"desk-1\"\ndriver = \"sim\"\n" + settings
}

// configText is a test daemon's config: KeyCutter1 served by encoder
// desk-1; extra (encoders and other tables) goes before the key cutters.
func configText(srv *mewstest.Server, dir, extra string) string {
	return configWith(srv, dir, extra, fmt.Sprintf("device_id = %q\nencoder = \"desk-1\"\n", mewstest.KeyCutter1.ID))
}

// configWith is a test daemon's config with one [[key_cutters]] entry,
// cutter.
func configWith(srv *mewstest.Server, dir, extra, cutter string) string {
	return fmt.Sprintf(`
%smax_command_age = "30m"
reconcile_interval = "1h"

[daemon]
state_dir = %q

[log]
level = "debug"
%s
[[key_cutters]]
%s`, srv.MewsTOML(), dir, extra, cutter)
}

// start runs a daemon logging at debug level; extra is appended to the
// config (encoders included).
func start(t *testing.T, srv *mewstest.Server, dir, extra string) *harness {
	t.Helper()
	return startLogging(t, srv, dir, extra, zerolog.DebugLevel)
}

func startLogging(t *testing.T, srv *mewstest.Server, dir, extra string, level zerolog.Level) *harness {
	t.Helper()
	if extra == "" {
		extra = encoders
	}
	return launch(t, srv, dir, configText(srv, dir, extra), level)
}

// launch runs a daemon on config text, records every encoder outcome, and
// waits until it is connected; opts adjust its Deps.
func launch(t *testing.T, srv *mewstest.Server, dir, text string, level zerolog.Level, opts ...func(*daemon.Deps)) *harness {
	t.Helper()
	h := &harness{t: t, srv: srv, dir: dir, logs: daemontest.NewLog()}
	deps := daemon.Deps{
		Logger: zerolog.New(h.logs).Level(level), Version: "test", ReportBackoff: 50 * time.Millisecond,
		OnEncoded: func(o daemon.Outcome) {
			h.mu.Lock()
			h.outcomes = append(h.outcomes, o)
			h.ended = append(h.ended, time.Now())
			h.mu.Unlock()
		},
	}
	for _, o := range opts {
		o(&deps)
	}
	d, err := daemontest.Start(text, deps)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	t.Cleanup(h.stop)
	h.waitFor("daemon connected", func(s *mewstest.Server) bool { return s.Sockets() > 0 })
	return h
}

func (h *harness) stop() {
	h.t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- h.d.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(waitTimeout):
		h.t.Fatalf("daemon did not stop")
	}
}

func (h *harness) waitFor(what string, cond func(*mewstest.Server) bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.srv.Wait(ctx, cond); err != nil {
		h.t.Fatalf("waiting for %s: %v\nlogs:\n%s", what, err, h.logs.String())
	}
}

// waitLog waits until cond holds for the log so far, re-checking after
// every line: for what the daemon does without asking Mews anything.
func (h *harness) waitLog(what string, cond func(logs string) bool) {
	h.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for !cond(h.logs.String()) {
		select {
		case <-h.logs.Changed():
		case <-deadline.C:
			h.t.Fatalf("waiting for %s\nlogs:\n%s", what, h.logs.String())
		}
	}
}

func (h *harness) waitFinal(ids ...string) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%d commands final", len(ids)), func(s *mewstest.Server) bool {
		for _, id := range ids {
			if c, ok := s.Command(id); !ok || !c.State.Final() {
				return false
			}
		}
		return true
	})
}

// waitState waits until Mews shows command id in state; what names the
// moment for the failure message.
func (h *harness) waitState(what, id string, state mews.CommandState) {
	h.t.Helper()
	h.waitFor(what, func(s *mewstest.Server) bool {
		c, _ := s.Command(id)
		return c.State == state
	})
}

func (h *harness) encodedCount(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, o := range h.outcomes {
		if o.CommandID == id {
			n++
		}
	}
	return n
}

func (h *harness) cut(device mews.Device, reservation string, keys int) string {
	h.t.Helper()
	id, err := h.srv.CreateKeyCutterCommand(device.ID, reservation, keys)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// assertCutOnce checks that command id ended Processed, its note holding
// noteContains, with exactly one card cut for it.
func (h *harness) assertCutOnce(srv *mewstest.Server, id, noteContains string) {
	h.t.Helper()
	assertState(h.t, srv, id, mews.CommandProcessed, noteContains)
	if n := h.encodedCount(id); n != 1 {
		h.t.Errorf("command %s encoded %d times, want 1", id, n)
	}
}

func assertState(t *testing.T, srv *mewstest.Server, id string, want mews.CommandState, noteContains string) {
	t.Helper()
	c, _ := srv.Command(id)
	if c.State != want {
		t.Errorf("command %s: state %s, want %s (note %q)", id, c.State, want, srv.CommandNotes(id))
	}
	if note := srv.CommandNotes(id); !strings.Contains(note, noteContains) {
		t.Errorf("command %s: note %q, want it to contain %q", id, note, noteContains)
	}
}

func TestKeyCutEndToEnd(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	// Count only what the command costs, not the start-up catch-up.
	h.waitFor("catch-up poll", func(s *mewstest.Server) bool { return s.RequestCount(mews.OpActiveCommands) > 0 })
	srv.ResetRequests()

	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 2)
	h.waitFinal(id)

	assertState(t, srv, id, mews.CommandProcessed, "2 keys")
	hist := srv.StateHistory(id)
	want := []mews.CommandState{mews.CommandPending, mews.CommandReceived, mews.CommandProcessing, mews.CommandProcessed}
	if fmt.Sprint(hist) != fmt.Sprint(want) {
		t.Errorf("state history %v, want %v", hist, want)
	}
	if n := srv.RequestCount(""); n > 3 {
		t.Errorf("%d API requests for one command, want at most 3: %v", n, srv.Requests())
	}
	if n := h.encodedCount(id); n != 1 {
		t.Errorf("encoded %d times", n)
	}
}

func TestCatchUpCommandsCreatedBeforeStart(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	a := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	b := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 1)
	h := start(t, srv, t.TempDir(), "")
	h.waitFinal(a, b)
	assertState(t, srv, a, mews.CommandProcessed, "1 key")
	assertState(t, srv, b, mews.CommandProcessed, "1 key")
}

func mustCut(t *testing.T, srv *mewstest.Server, device mews.Device, reservation string, keys int) string {
	t.Helper()
	id, err := srv.CreateKeyCutterCommand(device.ID, reservation, keys)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestReconnectCatchesUpCommandsCreatedDuringOutage(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	// Keep the daemon out for two handshakes so the commands are surely
	// created while it is disconnected: their events reach nobody.
	srv.RefuseUpgrades(2, 503)
	srv.DropSockets()
	h.waitFor("socket dropped", func(s *mewstest.Server) bool { return s.Sockets() == 0 })
	a := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	b := h.cut(mewstest.KeyCutter1, mewstest.ReservationLongStay, 1)
	h.waitFinal(a, b)
	assertState(t, srv, a, mews.CommandProcessed, "")
	assertState(t, srv, b, mews.CommandProcessed, "")
}

func TestDuplicateAndSelfCausedEventsEncodeOnce(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetDuplicateEvents(true)
	h := start(t, srv, t.TempDir(), "")
	var ids []string
	for _, r := range []string{mewstest.ReservationArriving, mewstest.ReservationCheckedIn, mewstest.ReservationLongStay} {
		ids = append(ids, h.cut(mewstest.KeyCutter1, r, 1))
	}
	h.waitFinal(ids...)
	// Replay every event once more, as a flaky Mews might.
	for _, id := range ids {
		srv.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: id, State: string(mews.CommandPending)})
	}
	later := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(later)
	for _, id := range append(ids, later) {
		h.assertCutOnce(srv, id, "")
	}
	// One getAllByIds per command at most: duplicates and our own
	// Received/Processing/Processed events cost nothing.
	if n := srv.RequestCount(mews.OpCommandsByIDs); n > len(ids)+1 {
		t.Errorf("%d getAllByIds requests for %d commands", n, len(ids)+1)
	}
}

func TestForeignDevicesLeftUntouched(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	printer := srv.CreateCommand(mews.Command{Device: mewstest.Printer1, Data: []byte(`{"CopyCount":1}`)})
	other := h.cut(mewstest.KeyCutter2, mewstest.ReservationArriving, 1) // not in [[key_cutters]]
	ours := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(ours)
	// The intake takes events in order: by the time ours is final, the two
	// earlier foreign commands have been looked at.
	if n := strings.Count(h.logs.String(), "left untouched"); n != 2 {
		t.Errorf("%d log lines about foreign commands, want one each", n)
	}
	for _, id := range []string{printer, other} {
		c, _ := srv.Command(id)
		if c.State != mews.CommandPending && c.State != mews.CommandReceived {
			t.Errorf("foreign command %s changed to %s", id, c.State)
		}
		if n := h.encodedCount(id); n != 0 {
			t.Errorf("foreign command %s encoded", id)
		}
	}
}

func TestEncoderFailureReportsError(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), simDesk(`delay = "1ms"
failure_rate = 1.0
fail_message = "card jammed in the encoder"
`))
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandError, "card jammed in the encoder")
}

func TestEncoderTimeoutReportsError(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), simDesk(`timeout = "100ms"
delay = "1h"
`))
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandError, "timed out")
}

func TestTooOldCommandCancelled(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	id, err := srv.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationArriving, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Re-create it as an old command: same data, created two hours ago.
	c, _ := srv.Command(id)
	srv.SetCommandState(id, mews.CommandCancelled)
	c.ID, c.State, c.CreatedUtc = "", mews.CommandPending, time.Now().Add(-2*time.Hour)
	old := srv.CreateCommand(c)
	h := start(t, srv, t.TempDir(), "")
	h.waitFinal(old)
	assertState(t, srv, old, mews.CommandCancelled, "old")
	if n := h.encodedCount(old); n != 0 {
		t.Errorf("too-old command encoded")
	}
}

func TestRateLimitedUpdateStillReported(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	srv.FailNext(mews.OpUpdateCommand, 2, 429, "1")
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	h.assertCutOnce(srv, id, "")
}

func TestShutdownLetsInFlightEncodeFinish(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), simDesk(`timeout = "10s"
delay = "300ms"
`))
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitState("encode under way", id, mews.CommandProcessing)
	h.stop()
	assertState(t, srv, id, mews.CommandProcessed, "")
}

// TestNoGuestDataOrTokensAboveDebug runs cuts, a failure and a foreign
// command with the log at info level: no guest name, e-mail, phone or token
// may appear.
func TestNoGuestDataOrTokensAboveDebug(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := startLogging(t, srv, t.TempDir(), simDesk(`delay = "1ms"
failure_rate = 0.5
seed = 7
`), zerolog.InfoLevel)
	var ids []string
	for _, r := range []string{mewstest.ReservationArriving, mewstest.ReservationCheckedIn, mewstest.ReservationLongStay, mewstest.ReservationUnassigned} {
		ids = append(ids, h.cut(mewstest.KeyCutter1, r, 1))
	}
	h.cut(mewstest.KeyCutter2, mewstest.ReservationArriving, 1)
	h.waitFinal(ids...)
	h.stop()
	logs := h.logs.String()
	if !strings.Contains(logs, "key encoded") {
		t.Fatalf("the scenario logged nothing useful:\n%s", logs)
	}
	var secrets []string
	for _, c := range []mews.Customer{mewstest.CustomerAngstrom, mewstest.CustomerNovak, mewstest.CustomerGarcia, mewstest.CustomerMuller} {
		secrets = append(secrets, c.FirstName, c.LastName, c.Email, c.Phone)
	}
	secrets = append(secrets, "Angstrom", "Novak", mewstest.ClientToken, mewstest.AccessToken)
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("%q appears in the info-level log", s)
		}
	}
}

// TestRepeatedMewsErrorsAreNotLoggedForEveryEvent: while Mews refuses
// fetches, each event fails the same way; the log says so a few times a
// minute, not once per event.
func TestRepeatedMewsErrorsAreNotLoggedForEveryEvent(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	// Commands created after the start-up poll reach the daemon as events.
	h.waitFor("catch-up poll", func(s *mewstest.Server) bool { return s.RequestCount(mews.OpActiveCommands) > 0 })
	const failures = 8
	srv.FailNext(mews.OpCommandsByIDs, failures, 400, "")
	for i := range failures {
		h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
		h.waitFor("a fetch", func(s *mewstest.Server) bool { return s.RequestCount(mews.OpCommandsByIDs) > i })
	}
	if n := strings.Count(h.logs.String(), "fetching announced commands failed"); n < 1 || n > 3 {
		t.Errorf("%d log lines for %d identical failures, want 1 to 3", n, failures)
	}
}

// TestCommandCancelledWhileQueuedIsNotCut: the front desk cancels a command
// in Mews while it waits behind another card; it is never encoded and
// keeps the one final state Mews gave it.
func TestCommandCancelledWhileQueuedIsNotCut(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), simDesk(`delay = "500ms"
`))
	first := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitState("first card under way", first, mews.CommandProcessing)
	queued := h.cut(mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 1)
	h.waitState("second command fetched", queued, mews.CommandReceived)
	srv.SetCommandState(queued, mews.CommandCancelled)
	// The station is FIFO: once a later command is final, the cancelled
	// one has had its turn.
	later := h.cut(mewstest.KeyCutter1, mewstest.ReservationLongStay, 1)
	h.waitFinal(first, later)
	if n := h.encodedCount(queued); n != 0 {
		t.Errorf("cancelled command encoded %d times", n)
	}
	var finals []mews.CommandState
	for _, st := range srv.StateHistory(queued) {
		if st.Final() {
			finals = append(finals, st)
		}
	}
	if len(finals) != 1 || finals[0] != mews.CommandCancelled {
		t.Errorf("final states %v, want just Cancelled", finals)
	}
}
