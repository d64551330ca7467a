package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/digitalkeys"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/keys"
	_ "github.com/mews-keyd/mews-keyd/keys/httpenc" // the vendor's web service
	"github.com/mews-keyd/mews-keyd/keys/wire"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// vendor is a mobile-key vendor's web service, the other end of the http
// driver: it records every request and answers each issue or update with
// a new PIN.
type vendor struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []wire.Request
	// refuse, if set, says which requests to refuse (certainly without
	// making a key).
	refuse func(wire.Request) bool
}

func newVendor(t *testing.T) *vendor {
	t.Helper()
	v := &vendor{}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req wire.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v.mu.Lock()
		v.reqs = append(v.reqs, req)
		n := len(v.reqs)
		refused := v.refuse != nil && v.refuse(req)
		v.mu.Unlock()
		if refused {
			_ = json.NewEncoder(w).Encode(wire.Failure("the mobile key service is busy"))
			return
		}
		var res keys.Result
		if req.Operation != wire.Revoke {
			res.Keys = []keys.Key{{ID: fmt.Sprintf("vendor-%d", n), Type: keys.KeyPinCode, Value: fmt.Sprintf("%06d", n)}}
		}
		_ = json.NewEncoder(w).Encode(wire.Success(res))
	}))
	t.Cleanup(v.srv.Close)
	return v
}

// encoders is the encoder section with the vendor as the mobile key system.
func (v *vendor) encoders() string {
	return digitalEncoders[:strings.Index(digitalEncoders, "[[encoders]]\nname = \"mobile\"")] + fmt.Sprintf(`
[[encoders]]
name = "mobile"
driver = "http"
timeout = "5s"
url = %q
`, v.srv.URL)
}

// requests returns what the vendor was asked for a reservation.
func (v *vendor) requests(reservation string) []wire.Request {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []wire.Request
	for _, r := range v.reqs {
		if r.ReservationID == reservation {
			out = append(out, r)
		}
	}
	return out
}

// countRequests logs the API requests since the last reset and fails the
// test if there are more than want.
func countRequests(t *testing.T, srv *mewstest.Server, what string, want int) {
	t.Helper()
	var ops []string
	for _, r := range srv.Requests() {
		ops = append(ops, r.Op)
	}
	t.Logf("API requests for %s: %d %v", what, len(ops), ops)
	if len(ops) > want {
		t.Errorf("%d API requests for %s, want at most %d", len(ops), what, want)
	}
}

// companyReservation adds a Confirmed reservation owned by a company, for
// room, starting now.
func companyReservation(srv *mewstest.Server, id, number, room string) {
	now := time.Now().UTC().Truncate(time.Second)
	srv.AddReservation(mews.Reservation{ID: id, Number: number, State: mews.ReservationConfirmed,
		AccountID: "c0c0c0c0-0000-4000-8000-000000000001", AccountType: mews.AccountCompany,
		AssignedResourceID: room, ScheduledStartUtc: now, ScheduledEndUtc: now.Add(48 * time.Hour)})
}

// TestDigitalKeyCompanyOwned: Mews has no guest behind a company account;
// the key goes to the reservation's main companion, and moves to the next
// when they leave the reservation. With nobody at all, the key carries
// the reservation number as the name.
func TestDigitalKeyCompanyOwned(t *testing.T) {
	clock := &tickingClock{}
	srv := mewstest.NewServer(mewstest.WithClock(clock.Now))
	defer srv.Close()
	const res, empty = "c0c0c0c0-0000-4000-8000-000000000002", "c0c0c0c0-0000-4000-8000-000000000003"
	companyReservation(srv, res, "2001", mewstest.RoomID("107"))
	companyReservation(srv, empty, "2002", mewstest.RoomID("108"))
	first := srv.AddCompanion(res, mewstest.CustomerOBrien.ID)
	srv.AddCompanion(res, mewstest.CustomerMuller.ID)
	v := newVendor(t)
	h := startDigital(t, srv, t.TempDir(), "", v.encoders())

	srv.ResetRequests()
	checkIn(srv, res)
	if o := h.waitAction(res, 1, digitalkeys.Issue); o.Room != "107" || o.CompanionshipID != "" {
		t.Errorf("issued %+v, want the reservation's key for room 107", o)
	}
	h.waitFor("the token in Mews", func(s *mewstest.Server) bool { return len(activeTokens(s, res)) == 1 })
	countRequests(t, srv, "a company-owned check-in", 5)
	if reqs := v.requests(res); len(reqs) != 1 || reqs[0].Guest.LastName != mewstest.CustomerOBrien.LastName ||
		reqs[0].Guest.Email != mewstest.CustomerOBrien.Email || reqs[0].Companion {
		t.Errorf("vendor asked %+v, want a key for the main companion, %s", reqs, mewstest.CustomerOBrien.LastName)
	}

	// The main companion leaves: their key goes, the next companion's comes.
	clock.tick()
	srv.RemoveCompanion(first)
	h.waitAction(res, 2, digitalkeys.Reissue)
	reqs := v.requests(res)
	if len(reqs) != 3 || reqs[1].Operation != wire.Revoke || reqs[2].Operation != wire.Issue ||
		reqs[2].Guest.LastName != mewstest.CustomerMuller.LastName {
		t.Errorf("vendor asked %+v, want the key revoked and issued to %s", reqs, mewstest.CustomerMuller.LastName)
	}
	if toks := activeTokens(srv, res); len(toks) != 1 || toks[0].Value != "000003" {
		t.Errorf("Mews records %+v, want only the new key", toks)
	}
	// Nothing changes while the new holder stays.
	h.replayChangesNothing(srv, res, 2)

	t.Run("nobody on the reservation", func(t *testing.T) {
		checkIn(srv, empty)
		h.waitAction(empty, 1, digitalkeys.Issue)
		if reqs := v.requests(empty); len(reqs) != 1 || reqs[0].Guest.LastName != "2002" || reqs[0].Guest.FirstName != "" {
			t.Errorf("vendor asked %+v, want the reservation number as the name", reqs)
		}
		if !strings.Contains(h.logs.String(), "the key carries the reservation number as the name") {
			t.Error("no warning about the key without a guest")
		}
	})
}

// bedRooms are a dorm with a bed, the bed's reservation, and the [rooms]
// entry of the dorm's lock.
const (
	dormID  = "d0d0d0d0-0000-4000-8000-000000000001"
	bedID   = "d0d0d0d0-0000-4000-8000-000000000002"
	bedRes  = "d0d0d0d0-0000-4000-8000-000000000003"
	dormMap = "\n[rooms]\n\"D1\" = \"0900\"\n"
)

// TestDigitalKeyForABed: a reservation assigned a bed gets a key for the
// bed's room, recorded in Mews for the bed with Bed and Room permissions;
// a room taken out of service is still known.
func TestDigitalKeyForABed(t *testing.T) {
	clock := &tickingClock{}
	srv := mewstest.NewServer(mewstest.WithClock(clock.Now))
	defer srv.Close()
	srv.AddResource(mews.Resource{ID: dormID, Name: "D1", IsActive: true})
	srv.AddResource(mews.Resource{ID: bedID, Name: "D1-A", IsActive: true, ParentResourceID: dormID})
	now := time.Now().UTC().Truncate(time.Second)
	srv.AddReservation(mews.Reservation{ID: bedRes, Number: "3001", State: mews.ReservationConfirmed,
		AccountID: mewstest.CustomerNovak.ID, AssignedResourceID: bedID, ScheduledStartUtc: now, ScheduledEndUtc: now.Add(48 * time.Hour)})
	v := newVendor(t)
	h := startDigital(t, srv, t.TempDir(), dormMap, v.encoders())

	srv.ResetRequests()
	checkIn(srv, bedRes)
	if o := h.waitAction(bedRes, 1, digitalkeys.Issue); o.Room != "D1" {
		t.Errorf("issued for %q, want the bed's room D1", o.Room)
	}
	h.waitFor("the token in Mews", func(s *mewstest.Server) bool { return len(activeTokens(s, bedRes)) == 1 })
	countRequests(t, srv, "a check-in to a bed", 5)
	if reqs := v.requests(bedRes); len(reqs) != 1 || !slices.Equal(reqs[0].LockIDs, []string{"D1"}) ||
		!slices.Equal(reqs[0].Rooms, []string{"0900"}) || reqs[0].Bed != "D1-A" {
		t.Errorf("vendor asked %+v, want the lock of D1 (0900) for bed D1-A", reqs)
	}
	toks := activeTokens(srv, bedRes)
	if len(toks) != 1 || toks[0].ResourceID != bedID || toks[0].Permissions == nil || !toks[0].Permissions.Bed || !toks[0].Permissions.Room {
		t.Errorf("Mews records %+v, want the bed's key with Bed and Room permissions", toks)
	}

	// The dorm is taken out of service; its name is still what opens it.
	srv.AddResource(mews.Resource{ID: dormID, Name: "D1", IsActive: false})
	srv.PushEvents(mews.Event{Type: mews.EventResource, ID: dormID})
	clock.tick()
	later := now.Add(72 * time.Hour)
	srv.UpdateReservation(bedRes, func(r *mews.Reservation) { r.ScheduledEndUtc = later })
	if o := h.waitAction(bedRes, 2, digitalkeys.Update); o.Room != "D1" || !o.ValidUntil.Equal(later) {
		t.Errorf("updated %+v, want D1 until %v", o, later)
	}
	if reqs := v.requests(bedRes); len(reqs) != 2 || !slices.Equal(reqs[1].LockIDs, []string{"D1"}) || reqs[1].Bed != "D1-A" {
		t.Errorf("vendor asked %+v, want D1 again", reqs)
	}
}

// withCompanions puts three companions on the arriving fixture (owned by
// Ångström, room 102): Novák (e-mail and phone) and Dvořáková (phone) can
// receive a key, García (neither) cannot.
func withCompanions(srv *mewstest.Server) (novak, dvorakova, garcia string) {
	res := mewstest.ReservationArriving
	return srv.AddCompanion(res, mewstest.CustomerNovak.ID), srv.AddCompanion(res, mewstest.CustomerDvorakova.ID),
		srv.AddCompanion(res, mewstest.CustomerGarcia.ID)
}

// byCompanion counts the operations of the reservation's outcomes by
// companionship ("" for the main guest).
func byCompanion(outs []daemon.DigitalOutcome) map[string][]digitalkeys.Action {
	got := map[string][]digitalkeys.Action{}
	for _, o := range outs {
		got[o.CompanionshipID] = append(got[o.CompanionshipID], o.Action)
	}
	return got
}

// TestDigitalKeyCompanions: with companions = true a check-in with two
// companions who can receive a key issues three keys, each recorded in
// Mews; a room move moves all three, and the check-out revokes all three.
func TestDigitalKeyCompanions(t *testing.T) {
	clock := &tickingClock{}
	srv := mewstest.NewServer(mewstest.WithClock(clock.Now))
	defer srv.Close()
	novak, dvorakova, garcia := withCompanions(srv)
	v := newVendor(t)
	h := startDigital(t, srv, t.TempDir(), "companions = true", v.encoders())
	res := mewstest.ReservationArriving

	srv.ResetRequests()
	checkIn(srv, res)
	h.until("three keys", func() bool { return len(h.of(res)) >= 3 })
	h.waitFor("three tokens in Mews", func(s *mewstest.Server) bool { return len(activeTokens(s, res)) == 3 })
	countRequests(t, srv, "a check-in with two companions", 5)
	issued := byCompanion(h.of(res))
	want := map[string][]digitalkeys.Action{"": {digitalkeys.Issue}, novak: {digitalkeys.Issue}, dvorakova: {digitalkeys.Issue}}
	if fmt.Sprint(issued) != fmt.Sprint(want) {
		t.Errorf("operations %v, want an issue for the main guest, Novák and Dvořáková, nothing for García (%s)", issued, garcia)
	}
	for _, r := range v.requests(res) {
		switch r.CompanionshipID {
		case "":
			if r.Companion || r.Guest.LastName != mewstest.CustomerAngstrom.LastName {
				t.Errorf("main guest's request %+v", r)
			}
		case novak, dvorakova:
			if !r.Companion || r.MainReservationNumber != "1002" || r.ReservationNumber != "1002" ||
				!slices.Equal(r.LockIDs, []string{"102"}) || r.Guest.LastName == mewstest.CustomerAngstrom.LastName {
				t.Errorf("companion's request %+v", r)
			}
		default:
			t.Errorf("request for %q: %+v", r.CompanionshipID, r)
		}
	}
	companionships := map[string]int{}
	for _, tok := range activeTokens(srv, res) {
		companionships[tok.CompanionshipID]++
	}
	if companionships[""] != 1 || companionships[novak] != 1 || companionships[dvorakova] != 1 {
		t.Errorf("Mews records tokens for %v, want one each for the main guest, Novák and Dvořáková", companionships)
	}

	// A room move moves the companions' keys with the main guest's.
	clock.tick()
	srv.UpdateReservation(res, func(r *mews.Reservation) { r.AssignedResourceID = mewstest.RoomID("109") })
	h.until("three updates", func() bool { return len(h.of(res)) >= 6 })
	want = map[string][]digitalkeys.Action{"": {digitalkeys.Update}, novak: {digitalkeys.Update}, dvorakova: {digitalkeys.Update}}
	if moved := byCompanion(h.of(res)[3:]); fmt.Sprint(moved) != fmt.Sprint(want) {
		t.Errorf("operations %v, want three updates", moved)
	}
	for _, o := range h.of(res)[3:] {
		if o.Room != "109" {
			t.Errorf("updated %+v, want room 109", o)
		}
	}
	h.waitFor("three tokens for room 109", func(s *mewstest.Server) bool {
		toks := activeTokens(s, res)
		return len(toks) == 3 && !slices.ContainsFunc(toks, func(tok mews.ResourceAccessToken) bool { return tok.ResourceID != mewstest.RoomID("109") })
	})

	srv.ResetRequests()
	setState(srv, res, mews.ReservationProcessed)
	h.until("three revokes", func() bool { return len(h.of(res)) >= 9 })
	h.waitFor("no token left", func(s *mewstest.Server) bool { return len(activeTokens(s, res)) == 0 })
	countRequests(t, srv, "a check-out with two companions", 2)
	revoked := byCompanion(h.of(res)[6:])
	want = map[string][]digitalkeys.Action{"": {digitalkeys.Revoke}, novak: {digitalkeys.Revoke}, dvorakova: {digitalkeys.Revoke}}
	if fmt.Sprint(revoked) != fmt.Sprint(want) {
		t.Errorf("operations %v, want three revokes", revoked)
	}
	h.replayChangesNothing(srv, res, 9)
}

// TestDigitalKeyCompanionLeaves: a companion taken off the reservation
// mid-stay loses their key, and only theirs, also in Mews, whose answers
// come in the reverse of the order asked.
func TestDigitalKeyCompanionLeaves(t *testing.T) {
	clock := &tickingClock{}
	srv := mewstest.NewServer(mewstest.WithClock(clock.Now))
	defer srv.Close()
	srv.ReverseAddedTokens(true)
	novak, dvorakova, _ := withCompanions(srv)
	h := startDigital(t, srv, t.TempDir(), "companions = true", "")
	res := mewstest.ReservationArriving
	checkIn(srv, res)
	h.until("three keys", func() bool { return len(h.of(res)) >= 3 })
	h.waitFor("three tokens in Mews", func(s *mewstest.Server) bool { return len(activeTokens(s, res)) == 3 })
	before := activeTokens(srv, res)

	clock.tick()
	srv.ResetRequests()
	srv.RemoveCompanion(novak)
	o := h.waitAction(res, 4, digitalkeys.Revoke)
	if o.CompanionshipID != novak || o.Room != "102" {
		t.Errorf("revoked %+v, want Novák's key for room 102", o)
	}
	h.waitFor("Novák's token deleted", func(s *mewstest.Server) bool { return len(activeTokens(s, res)) == 2 })
	// The reservation, who is on it, García (who may have given an
	// e-mail meanwhile), the delete.
	countRequests(t, srv, "a companion leaving", 4)
	left := map[string]bool{}
	for _, tok := range activeTokens(srv, res) {
		left[tok.CompanionshipID] = true
	}
	if !left[""] || !left[dvorakova] || left[novak] {
		t.Errorf("Mews records tokens for %v after Novák left, want the main guest's and Dvořáková's (before: %+v)", left, before)
	}
	// A companion joining gets a key; the others keep theirs.
	clock.tick()
	joined := srv.AddCompanion(res, mewstest.CustomerOBrien.ID)
	if o := h.waitAction(res, 5, digitalkeys.Issue); o.CompanionshipID != joined {
		t.Errorf("issued %+v, want O'Brien's key", o)
	}
	h.replayChangesNothing(srv, res, 5)
}

// TestDigitalKeyCompanionRefused: the vendor refuses a companion's key
// twice; it is retried until issued, and the main guest's key is not
// touched meanwhile.
func TestDigitalKeyCompanionRefused(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	res := mewstest.ReservationArriving
	novak := srv.AddCompanion(res, mewstest.CustomerNovak.ID)
	v := newVendor(t)
	refusals := 0
	v.refuse = func(r wire.Request) bool {
		if r.Companion && refusals < 2 {
			refusals++
			return true
		}
		return false
	}
	h := startDigital(t, srv, t.TempDir(), "companions = true", v.encoders())
	checkIn(srv, res)
	h.until("Novák's key issued", func() bool {
		ops := byCompanion(h.of(res))[novak]
		return len(ops) == 3
	})
	var failures int
	for _, o := range h.of(res) {
		if o.CompanionshipID == novak && o.Err != nil {
			failures++
		}
	}
	if main := byCompanion(h.of(res))[""]; failures != 2 || len(main) != 1 {
		t.Errorf("%d failed companion operations and %v for the main guest, want 2 and one issue", failures, main)
	}
	h.waitFor("two tokens in Mews", func(s *mewstest.Server) bool { return len(activeTokens(s, res)) == 2 })
}

// TestDigitalKeyCompanionInterrupted starts on a journal that says a
// companion's key was being issued when the process died: at once, with
// no event, the daemon revokes whatever there may be and issues one key.
func TestDigitalKeyCompanionInterrupted(t *testing.T) {
	srv := mewstest.NewServer()
	defer srv.Close()
	res := mewstest.ReservationCheckedIn // Novák's
	r, _ := srv.Reservation(res)
	companion := srv.AddCompanion(res, mewstest.CustomerAngstrom.ID)
	srv.AddReservation(r) // unchanged for days: no catch-up brings it
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	version := r.UpdatedUtc.Format(time.RFC3339Nano)
	grant := fmt.Sprintf(`{"room":%q,"from":%q,"until":%q}`, mewstest.RoomID("101"),
		r.ActualStartUtc.Format(time.RFC3339), r.ScheduledEndUtc.Format(time.RFC3339))
	record := fmt.Sprintf(`{"status":"issued","seen":%q,"done":{"issue":%q},"grant":%s,"room_name":"101","guest":%q,`+
		`"companions":{%q:{"customer":%q,"grant":%s,"pending":"issue"}}}`,
		version, version, grant, r.AccountID, companion, mewstest.CustomerAngstrom.ID, grant)
	if err := j.PutDigitalRecord(res, []byte(record)); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	h := startDigital(t, srv, dir, "companions = true", "")
	o := h.waitAction(res, 1, digitalkeys.Reissue)
	if o.CompanionshipID != companion || o.Room != "101" {
		t.Errorf("reissued %+v, want the companion's key for room 101", o)
	}
	h.replayChangesNothing(srv, res, 1)
}
