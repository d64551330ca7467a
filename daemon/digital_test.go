package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/digitalkeys"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// digitalEncoders is the encoder section of the digital key tests: the card
// station the base config needs and a simulated mobile key system.
const digitalEncoders = `
[[encoders]]
name = "desk-1"
driver = "sim"
delay = "1ms"

[[encoders]]
name = "mobile"
driver = "sim"
timeout = "5s"
delay = "1ms"
`

// digitalHarness runs a daemon with digital keys on and records what it
// does with them.
type digitalHarness struct {
	*harness
	changed chan struct{} // signalled on every outcome

	mu       sync.Mutex
	outcomes []daemon.DigitalOutcome
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// startDigital runs a daemon; digital is the [digital_keys] table's body
// (enabled and encoder are set already) and encoders the encoder section.
func startDigital(t *testing.T, srv *mewstest.Server, dir, digital, encoders string, opts ...func(*daemon.Deps)) *digitalHarness {
	t.Helper()
	if encoders == "" {
		encoders = digitalEncoders
	}
	extra := encoders + "\n[digital_keys]\nenabled = true\nencoder = \"mobile\"\n" + digital + "\n"
	return startDigitalText(t, srv, dir, configText(srv, dir, extra), opts...)
}

// startDigitalText is startDigital with the whole config text given.
func startDigitalText(t *testing.T, srv *mewstest.Server, dir, text string, opts ...func(*daemon.Deps)) *digitalHarness {
	t.Helper()
	dh := &digitalHarness{changed: make(chan struct{}, 1)}
	record := func(deps *daemon.Deps) {
		deps.ReportBackoff = 20 * time.Millisecond
		deps.OnDigitalKey = func(o daemon.DigitalOutcome) {
			dh.mu.Lock()
			dh.outcomes = append(dh.outcomes, o)
			dh.mu.Unlock()
			signal(dh.changed)
		}
	}
	dh.harness = launch(t, srv, dir, text, zerolog.DebugLevel, append([]func(*daemon.Deps){record}, opts...)...)
	// Both start-up catch-ups are over before a test counts requests.
	dh.waitFor("first catch-ups", func(s *mewstest.Server) bool {
		return s.Sockets() > 0 && s.RequestCount(mews.OpReservations) > 0 && s.RequestCount(mews.OpActiveCommands) > 0
	})
	dh.until("catch-up done", func() bool { return strings.Contains(dh.logs.String(), "digital key catch-up") })
	return dh
}

// until waits for cond, re-checking after every outcome or log line.
func (dh *digitalHarness) until(what string, cond func() bool) {
	dh.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-dh.changed:
		case <-dh.logs.Changed():
		case <-deadline.C:
			dh.t.Fatalf("waiting for %s\nlogs:\n%s", what, dh.logs.String())
		}
	}
}

// of returns the outcomes for a reservation.
func (dh *digitalHarness) of(reservation string) []daemon.DigitalOutcome {
	dh.mu.Lock()
	defer dh.mu.Unlock()
	var out []daemon.DigitalOutcome
	for _, o := range dh.outcomes {
		if o.ReservationID == reservation {
			out = append(out, o)
		}
	}
	return out
}

// waitAction waits for the n-th outcome of a reservation and checks it.
func (dh *digitalHarness) waitAction(reservation string, n int, want digitalkeys.Action) daemon.DigitalOutcome {
	dh.t.Helper()
	dh.until(fmt.Sprintf("digital key operation %d (%s) for %s", n, want, reservation), func() bool {
		return len(dh.of(reservation)) >= n
	})
	o := dh.of(reservation)[n-1]
	if o.Action != want || o.Err != nil {
		dh.t.Fatalf("operation %d for %s: %s (err %v), want %s", n, reservation, o.Action, o.Err, want)
	}
	return o
}

// nothingToDo counts the daemon's decisions that a reservation needs
// nothing.
func (dh *digitalHarness) nothingToDo(reservation string) int {
	count := 0
	for _, line := range strings.Split(dh.logs.String(), "\n") {
		if strings.Contains(line, "nothing to do") && strings.Contains(line, reservation) {
			count++
		}
	}
	return count
}

// waitNothingToDo waits until the daemon has decided n times in all that a
// reservation needs nothing.
func (dh *digitalHarness) waitNothingToDo(reservation string, n int) {
	dh.t.Helper()
	dh.until(fmt.Sprintf("%d no-op decisions for %s", n, reservation), func() bool { return dh.nothingToDo(reservation) >= n })
}

// replayChangesNothing pushes the reservation's check-in event once more, as
// a late or repeated event would arrive, and checks that the daemon looked
// at it and still has done exactly wantOps key operations.
func (dh *digitalHarness) replayChangesNothing(srv *mewstest.Server, reservation string, wantOps int) {
	dh.t.Helper()
	k := dh.nothingToDo(reservation)
	srv.PushEvents(mews.Event{Type: mews.EventReservation, ID: reservation, State: string(mews.ReservationStarted)})
	dh.waitNothingToDo(reservation, k+1)
	if n := len(dh.of(reservation)); n != wantOps {
		dh.t.Errorf("%d key operations after a replayed event, want %d", n, wantOps)
	}
}

func activeTokens(srv *mewstest.Server, reservation string) []mews.ResourceAccessToken {
	var out []mews.ResourceAccessToken
	for _, tok := range srv.AccessTokens() {
		if tok.ServiceOrderID == reservation && tok.IsActive {
			out = append(out, tok)
		}
	}
	return out
}

func checkIn(srv *mewstest.Server, id string) {
	srv.UpdateReservation(id, func(r *mews.Reservation) {
		now := time.Now().UTC().Truncate(time.Second)
		r.State, r.ActualStartUtc = mews.ReservationStarted, &now
	})
}

func setState(srv *mewstest.Server, id string, st mews.ReservationState) {
	srv.UpdateReservation(id, func(r *mews.Reservation) { r.State = st })
}

// tickingClock gives the simulator a clock that moves a second on demand:
// Mews versions reservations by UpdatedUtc, which the simulator keeps in
// whole seconds, and two changes in one second would look like one.
type tickingClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *tickingClock) tick() {
	c.mu.Lock()
	c.offset += time.Second
	c.mu.Unlock()
}

func TestDigitalKeyLifecycle(t *testing.T) {
	clock := &tickingClock{}
	srv := mewstest.NewServer(mewstest.WithClock(clock.Now))
	defer srv.Close()
	h := startDigital(t, srv, t.TempDir(), "", "")
	res := mewstest.ReservationArriving
	before, _ := srv.Reservation(res)

	t.Run("check-in issues", func(t *testing.T) {
		srv.ResetRequests()
		checkIn(srv, res)
		o := h.waitAction(res, 1, digitalkeys.Issue)
		if o.Room != "102" || !o.ValidUntil.Equal(before.ScheduledEndUtc) || o.Keys != 1 {
			t.Errorf("issued %+v, want one key for room 102 until %v", o, before.ScheduledEndUtc)
		}
		toks := activeTokens(srv, res)
		if len(toks) != 1 || toks[0].ResourceID != mewstest.RoomID("102") || toks[0].Type != mews.AccessTokenPinCode ||
			!toks[0].ValidityEndUtc.Equal(before.ScheduledEndUtc) {
			t.Errorf("Mews records %+v, want one PIN code for room 102", toks)
		}
		// Reservation, room (not cached yet), guest, write-back.
		n := srv.RequestCount("")
		t.Logf("API requests for a check-in: %d (%v)", n, srv.Requests())
		if n > 4 {
			t.Errorf("%d API requests for a check-in, want at most 4", n)
		}
	})

	t.Run("room move updates", func(t *testing.T) {
		clock.tick()
		srv.UpdateReservation(res, func(r *mews.Reservation) { r.AssignedResourceID = mewstest.RoomID("105") })
		o := h.waitAction(res, 2, digitalkeys.Update)
		if o.Room != "105" {
			t.Errorf("updated key opens %q, want 105", o.Room)
		}
		toks := activeTokens(srv, res)
		if len(toks) != 1 || toks[0].ResourceID != mewstest.RoomID("105") {
			t.Errorf("Mews records %+v, want one key for room 105", toks)
		}
	})

	t.Run("extension updates validity", func(t *testing.T) {
		clock.tick()
		later := before.ScheduledEndUtc.Add(24 * time.Hour)
		srv.UpdateReservation(res, func(r *mews.Reservation) { r.ScheduledEndUtc = later })
		o := h.waitAction(res, 3, digitalkeys.Update)
		if !o.ValidUntil.Equal(later) || o.Room != "105" {
			t.Errorf("updated %+v, want room 105 until %v", o, later)
		}
		if toks := activeTokens(srv, res); len(toks) != 1 || !toks[0].ValidityEndUtc.Equal(later) {
			t.Errorf("Mews records %+v, want one key until %v", toks, later)
		}
	})

	t.Run("repeated and out-of-order events do nothing", func(t *testing.T) {
		srv.ResetRequests()
		old := before.ScheduledEndUtc
		for range 3 {
			n := h.nothingToDo(res)
			srv.PushEvents(mews.Event{Type: mews.EventReservation, ID: res, State: string(mews.ReservationConfirmed), EndUtc: &old})
			h.waitNothingToDo(res, n+1)
		}
		if n := len(h.of(res)); n != 3 {
			t.Errorf("%d operations after repeated events, want still 3", n)
		}
		if n := srv.RequestCount(""); n > 3 {
			t.Errorf("%d API requests for 3 repeated events, want at most 3: %v", n, srv.Requests())
		}
	})

	t.Run("check-out revokes", func(t *testing.T) {
		srv.ResetRequests()
		setState(srv, res, mews.ReservationProcessed)
		o := h.waitAction(res, 4, digitalkeys.Revoke)
		if o.Room != "105" {
			t.Errorf("revoked the key of room %q, want 105", o.Room)
		}
		if toks := activeTokens(srv, res); len(toks) != 0 {
			t.Errorf("Mews still records %+v after check-out", toks)
		}
		n := srv.RequestCount("")
		t.Logf("API requests for a check-out: %d (%v)", n, srv.Requests())
		if n > 2 {
			t.Errorf("%d API requests for a check-out, want at most 2", n)
		}
		// The check-in event arriving late changes nothing.
		h.replayChangesNothing(srv, res, 4)
	})
}

func TestDigitalKeyWaitsForRoom(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	h := startDigital(t, srv, t.TempDir(), "", "")
	res := mewstest.ReservationUnassigned
	k := h.nothingToDo(res)
	checkIn(srv, res)
	h.waitNothingToDo(res, k+1)
	if n := len(h.of(res)); n != 0 {
		t.Fatalf("%d operations for a reservation without a room", n)
	}
	srv.UpdateReservation(res, func(r *mews.Reservation) { r.AssignedResourceID = mewstest.RoomID("106") })
	if o := h.waitAction(res, 1, digitalkeys.Issue); o.Room != "106" {
		t.Errorf("issued for room %q, want 106", o.Room)
	}
}

func TestDigitalKeyBeforeArrivalAndCancellation(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	// The arriving fixture starts today at 14:00 UTC: two days ahead is
	// always inside the window.
	h := startDigital(t, srv, t.TempDir(), `issue_before_arrival = "48h"`, "")
	res := mewstest.ReservationArriving
	srv.UpdateReservation(res, func(*mews.Reservation) {})
	h.waitAction(res, 1, digitalkeys.Issue)
	setState(srv, res, mews.ReservationCanceled)
	h.waitAction(res, 2, digitalkeys.Revoke)
	if toks := activeTokens(srv, res); len(toks) != 0 {
		t.Errorf("Mews still records %+v after cancellation", toks)
	}
	if all := srv.AccessTokens(); len(all) != 1 {
		t.Errorf("%d tokens ever recorded, want 1", len(all))
	}
}

func TestDigitalKeyCheckOutDuringOutage(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	h := startDigital(t, srv, t.TempDir(), "", "")
	res := mewstest.ReservationArriving
	checkIn(srv, res)
	h.waitAction(res, 1, digitalkeys.Issue)

	srv.RefuseUpgrades(2, 503)
	srv.DropSockets()
	h.waitFor("socket dropped", func(s *mewstest.Server) bool { return s.Sockets() == 0 })
	setState(srv, res, mews.ReservationProcessed) // its event reaches nobody
	h.waitAction(res, 2, digitalkeys.Revoke)
	if toks := activeTokens(srv, res); len(toks) != 0 {
		t.Errorf("Mews still records %+v", toks)
	}
}

func TestDigitalKeyWithoutWriteBack(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	h := startDigital(t, srv, t.TempDir(), "write_back = false", "")
	res := mewstest.ReservationArriving
	checkIn(srv, res)
	h.waitAction(res, 1, digitalkeys.Issue)
	setState(srv, res, mews.ReservationProcessed)
	h.waitAction(res, 2, digitalkeys.Revoke)
	if n := len(srv.AccessTokens()); n != 0 {
		t.Errorf("%d keys recorded in Mews with write_back off", n)
	}
}

// TestDigitalKeyInterruptedIssue starts on a journal that says an issue was
// under way when the process died: the key may or may not exist, so the
// daemon revokes whatever there is and issues one key, never silently a
// second one beside the first.
func TestDigitalKeyInterruptedIssue(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	res := mewstest.ReservationCheckedIn
	r, _ := srv.Reservation(res)
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	version := r.UpdatedUtc.Format(time.RFC3339Nano)
	record := fmt.Sprintf(`{"status":"","pending":"issue","seen":%q,"done":{"issue":%q},"grant":{"room":%q}}`,
		version, version, mewstest.RoomID("101"))
	if err := j.PutDigitalRecord(res, []byte(record)); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	h := startDigital(t, srv, dir, "", "")
	o := h.waitAction(res, 1, digitalkeys.Reissue)
	if o.Room != "101" {
		t.Errorf("reissued for room %q, want 101", o.Room)
	}
	// Another look at the same version does nothing more.
	h.replayChangesNothing(srv, res, 1)
}

// TestDigitalKeyWriteBackRetried: Mews refuses the token twice with a
// server error and once as a bad request; the daemon keeps trying, looks
// before every new attempt, and Mews ends up with exactly one token.
func TestDigitalKeyWriteBackRetried(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	h := startDigital(t, srv, t.TempDir(), "", "")
	res := mewstest.ReservationArriving
	srv.FailNext(mews.OpAddAccessTokens, 2, 500, "")
	srv.FailNext(mews.OpAddAccessTokens, 1, 400, "")
	srv.ResetRequests()
	checkIn(srv, res)
	h.waitAction(res, 1, digitalkeys.Issue)
	// The simulator stores a token before it logs the request that added
	// it: wait for both.
	h.waitFor("the token in Mews", func(s *mewstest.Server) bool {
		return len(activeTokens(s, res)) == 1 && s.RequestCount(mews.OpAddAccessTokens) >= 4
	})
	if all := srv.AccessTokens(); len(all) != 1 {
		t.Errorf("%d tokens recorded, want 1: %+v", len(all), all)
	}
	adds, looks := srv.RequestCount(mews.OpAddAccessTokens), srv.RequestCount(mews.OpAccessTokens)
	t.Logf("API requests for a check-in with 3 failed write-backs: %d (%v)", srv.RequestCount(""), srv.Requests())
	if adds != 4 || looks != 3 {
		t.Errorf("%d adds and %d look-ups, want 4 and 3", adds, looks)
	}
}

// TestDigitalKeyWriteBackDeleteRetried: the token of a revoked key goes
// even when Mews refuses the first deletes.
func TestDigitalKeyWriteBackDeleteRetried(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	h := startDigital(t, srv, t.TempDir(), "", "")
	res := mewstest.ReservationArriving
	checkIn(srv, res)
	h.waitAction(res, 1, digitalkeys.Issue)
	h.waitFor("the token in Mews", func(s *mewstest.Server) bool { return len(activeTokens(s, res)) == 1 })
	srv.FailNext(mews.OpDeleteAccessTokens, 2, 403, "")
	srv.ResetRequests()
	setState(srv, res, mews.ReservationProcessed)
	h.waitAction(res, 2, digitalkeys.Revoke)
	h.waitFor("the token deleted", func(s *mewstest.Server) bool {
		return len(activeTokens(s, res)) == 0 && s.RequestCount(mews.OpDeleteAccessTokens) >= 3
	})
	if n := srv.RequestCount(mews.OpDeleteAccessTokens); n != 3 {
		t.Errorf("%d deletes, want 3", n)
	}
	if n := srv.RequestCount(mews.OpAccessTokens); n != 0 {
		t.Errorf("%d look-ups for a delete, want none", n)
	}
}

// TestDigitalKeyWriteBackAfterRestart: the first run's add fails and its
// retry is an hour away when the daemon stops; the journal says the token
// is owed, and the next run delivers it at once.
func TestDigitalKeyWriteBackAfterRestart(t *testing.T) {
	for _, landed := range []bool{false, true} {
		t.Run(fmt.Sprintf("first add landed=%v", landed), func(t *testing.T) {
			srv := mewstest.NewServer()
			defer srv.Close()
			dir := t.TempDir()
			res := mewstest.ReservationArriving
			h := startDigital(t, srv, dir, "", "", func(d *daemon.Deps) { d.ReportBackoff = time.Hour })
			srv.FailNext(mews.OpAddAccessTokens, 1, 500, "")
			checkIn(srv, res)
			h.waitAction(res, 1, digitalkeys.Issue)
			h.until("the failed write-back", func() bool {
				return strings.Contains(h.logs.String(), "recording the digital key in Mews failed; will retry")
			})
			h.stop()
			if n := len(srv.AccessTokens()); n != 0 {
				t.Fatalf("%d tokens after a failed add", n)
			}
			key := owedKey(t, dir, res)
			if landed {
				// As if the add had reached Mews and only its answer was
				// lost: the next run must find it, not add a second.
				c, err := mews.NewClient(mews.ClientConfig{APIURL: srv.URL(), ClientToken: mewstest.ClientToken,
					AccessToken: mewstest.AccessToken, Client: "test"})
				if err != nil {
					t.Fatal(err)
				}
				r, _ := srv.Reservation(res)
				if _, err := c.AddAccessTokens(context.Background(), []mews.ResourceAccessToken{{ServiceOrderID: res,
					ResourceID: mewstest.RoomID("102"), Type: mews.AccessTokenPinCode, Value: key.Value, SerialNumber: key.ID,
					ValidityStartUtc: *r.ActualStartUtc, ValidityEndUtc: r.ScheduledEndUtc}}); err != nil {
					t.Fatal(err)
				}
			}

			srv.ResetRequests()
			h2 := startDigital(t, srv, dir, "", "")
			h2.waitFor("the token in Mews", func(s *mewstest.Server) bool {
				return len(activeTokens(s, res)) == 1 && s.RequestCount(mews.OpAccessTokens) == 1
			})
			h2.until("the write-back settled", func() bool {
				return strings.Contains(h2.logs.String(), "digital key recorded in Mews")
			})
			if all := srv.AccessTokens(); len(all) != 1 || all[0].Value != key.Value {
				t.Errorf("Mews records %+v, want the one key %s", all, key.Value)
			}
			wantAdds := 1
			if landed {
				wantAdds = 0
			}
			if n := srv.RequestCount(mews.OpAddAccessTokens); n != wantAdds {
				t.Errorf("%d adds after the restart, want %d", n, wantAdds)
			}
			if n := len(h2.of(res)); n != 0 {
				t.Errorf("%d key operations after the restart, want none", n)
			}
		})
	}
}

// owedKey reads the journal of a stopped daemon: the reservation's one key
// must be owed to Mews, its add possibly sent.
func owedKey(t *testing.T, dir, res string) struct{ ID, Value string } {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	raw, err := j.DigitalRecord(res)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Keys []struct {
			ID, Value, Token string
			Sent             bool
		}
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("record %s: %v", raw, err)
	}
	if len(rec.Keys) != 1 || rec.Keys[0].Token != "" || !rec.Keys[0].Sent {
		t.Fatalf("record %s, want one key whose add was sent and not confirmed", raw)
	}
	return struct{ ID, Value string }{rec.Keys[0].ID, rec.Keys[0].Value}
}

// TestDigitalKeyArrivalWithoutEvent: a reservation untouched for days gets
// its key before arrival although no event or catch-up brings it; one
// arriving a little later gets it when its window opens.
func TestDigitalKeyArrivalWithoutEvent(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	now := time.Now().UTC().Truncate(time.Second)
	const soon, later = "arrives-in-1h", "window-opens-in-2s"
	for id, start := range map[string]time.Time{soon: now.Add(time.Hour), later: now.Add(2*time.Hour + 2*time.Second)} {
		srv.AddReservation(mews.Reservation{ID: id, Number: id, State: mews.ReservationConfirmed,
			AccountID: mewstest.CustomerAngstrom.ID, AssignedResourceID: mewstest.RoomID("103"),
			ScheduledStartUtc: start, ScheduledEndUtc: start.Add(48 * time.Hour),
			CreatedUtc: now.Add(-10 * 24 * time.Hour), UpdatedUtc: now.Add(-10 * 24 * time.Hour)})
	}
	h := startDigital(t, srv, t.TempDir(), `issue_before_arrival = "2h"`, "")
	if o := h.waitAction(soon, 1, digitalkeys.Issue); o.Room != "103" {
		t.Errorf("issued for room %q, want 103", o.Room)
	}
	h.waitAction(later, 1, digitalkeys.Issue)
	// The catch-up, the arrivals, and the later one fetched when its
	// window opens.
	if n := srv.RequestCount(mews.OpReservations); n != 3 {
		t.Errorf("%d reservation requests, want 3: %v", n, srv.Requests())
	}
	t.Logf("API requests from start-up to both keys recorded: %d (%v)", srv.RequestCount(""), srv.Requests())
}

// failingMobile is an encoder section whose mobile key system refuses
// every operation, certainly without making a key.
const failingMobile = digitalEncoders + "failure_rate = 1.0\n"

// fetchedByID counts the reservation fetches that asked for id by its id.
func fetchedByID(srv *mewstest.Server, id string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Op != mews.OpReservations {
			continue
		}
		ids, _ := r.Body["ReservationIds"].([]any)
		for _, v := range ids {
			if v == id {
				n++
			}
		}
	}
	return n
}

// TestDigitalKeyFailedIssueThenCheckOutSettles: an issue fails (and is
// retried) until the guest checks out. The check-out needs nothing, and
// that decision ends the retries: the journal keeps no retry for the
// reservation, and a restart does not fetch it again and again.
func TestDigitalKeyFailedIssueThenCheckOutSettles(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	dir := t.TempDir()
	res := mewstest.ReservationArriving
	h := startDigital(t, srv, dir, "", failingMobile)
	checkIn(srv, res)
	h.until("a failed issue", func() bool { return len(h.of(res)) > 0 })
	if o := h.of(res)[0]; o.Action != digitalkeys.Issue || o.Err == nil {
		t.Fatalf("first operation %s (err %v), want a failed issue", o.Action, o.Err)
	}
	k := h.nothingToDo(res)
	setState(srv, res, mews.ReservationProcessed)
	h.waitNothingToDo(res, k+1)
	h.stop()

	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := j.DigitalRecord(res)
	if cerr := j.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	if raw != nil {
		var rec struct {
			RetryAt  time.Time `json:"retry_at"`
			Attempts int       `json:"attempts"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("record %s: %v", raw, err)
		}
		if !rec.RetryAt.IsZero() || rec.Attempts != 0 {
			t.Errorf("record %s after the check-out, want no retry", raw)
		}
	}

	srv.ResetRequests()
	h2 := startDigital(t, srv, dir, "", failingMobile)
	letItRun(h2, srv)
	if n := fetchedByID(srv, res); n != 0 {
		t.Errorf("the checked-out reservation was fetched %d times after the restart, want never", n)
	}
	if n := len(h2.of(res)); n != 0 {
		t.Errorf("%d key operations for the checked-out reservation after the restart", n)
	}
}

// TestDigitalKeyKeptRetryHealsAfterUpgrade starts on a journal written
// before the fix: a checked-out reservation kept the retry of a failed
// issue. One look at it settles it instead of a fetch loop.
func TestDigitalKeyKeptRetryHealsAfterUpgrade(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	res := mewstest.ReservationArriving
	setState(srv, res, mews.ReservationProcessed)
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	retry := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	if err := j.PutDigitalRecord(res, []byte(fmt.Sprintf(`{"retry_at":%q,"attempts":3}`, retry))); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	h := startDigital(t, srv, dir, "", "")
	letItRun(h, srv)
	// The start-up catch-up or the due retry settles it, whichever comes
	// first; nothing looks at it again.
	if n := fetchedByID(srv, res); n > 1 {
		t.Errorf("the checked-out reservation was fetched %d times, want at most once", n)
	}
	if n := len(h.of(res)); n != 0 {
		t.Errorf("%d key operations for a checked-out reservation without a key", n)
	}
}

// afterStartUp returns once the daemon has fetched, one after the other,
// a few reservations announced by events pushed after its start: whatever
// the start scheduled had its chances to run.
func letItRun(h *digitalHarness, srv *mewstest.Server) {
	h.t.Helper()
	other := mewstest.ReservationUnassigned
	for i := 1; i <= 5; i++ {
		srv.PushEvents(mews.Event{Type: mews.EventReservation, ID: other})
		h.waitFor("the fetch of an announced reservation", func(s *mewstest.Server) bool { return fetchedByID(s, other) >= i })
	}
}

// TestDigitalKeyRepeatedEventsNeverFetchAll: bursts of events for one
// reservation, reaching an idle pipeline, never become a
// reservations/getAll without ids (every reservation of the property, and
// keys decided for guests no event named). Whether a burst meets the
// pipeline between its wake-up and its take is up to the scheduler: the
// bursts are many.
func TestDigitalKeyRepeatedEventsNeverFetchAll(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	h := startDigital(t, srv, t.TempDir(), "", "")
	letItRun(h, srv) // the start-up catch-up is over: the pipeline waits
	res, other := mewstest.ReservationDeparted, mewstest.ReservationCanceled
	srv.ResetRequests()
	ev := mews.Event{Type: mews.EventReservation, ID: res, State: string(mews.ReservationProcessed)}
	for i := 1; i <= 20; i++ {
		k := h.nothingToDo(res)
		srv.PushEvents(slices.Repeat([]mews.Event{ev}, 20)...)
		h.waitNothingToDo(res, k+1)
		// Once another reservation is fetched, the pipeline has done what
		// the burst left it and waits again.
		srv.PushEvents(mews.Event{Type: mews.EventReservation, ID: other})
		h.waitFor("the next reservation fetched", func(s *mewstest.Server) bool { return fetchedByID(s, other) >= i })
	}
	for _, r := range srv.Requests() {
		if r.Op == mews.OpReservations && r.Body["ReservationIds"] == nil {
			t.Fatalf("reservations fetched without ids: %v", r.Body)
		}
	}
}
