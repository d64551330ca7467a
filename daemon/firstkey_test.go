package daemon_test

import (
	"testing"

	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestFirstCardAfterRoomMove: the first card of a reservation replaces the
// room's cards (FIAS KT=N), later ones are duplicates (KT=D). After a room
// move the first card for the new room is new again, and so is one for a
// room the reservation comes back to: "first" is per reservation and room
// set.
func TestFirstCardAfterRoomMove(t *testing.T) {
	lock := listenFIAS(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), fiasEncoder(lock.Addr(), ""))
	res := mewstest.ReservationCheckedIn // in room 101
	cut := func(wantRoom, wantKT string) {
		t.Helper()
		id := h.cut(mewstest.KeyCutter1, res, 1)
		h.waitFinal(id)
		assertState(t, srv, id, mews.CommandProcessed, "")
		kr, _ := fiastest.Last(lock.Received(), "KR")
		if kr.Get("RN") != wantRoom || kr.Get("KT") != wantKT {
			t.Errorf("card for room %s: KT=%s, want room %s KT=%s (record %s)", kr.Get("RN"), kr.Get("KT"), wantRoom, wantKT, kr)
		}
	}
	moveTo := func(room string) {
		srv.UpdateReservation(res, func(r *mews.Reservation) { r.AssignedResourceID = mewstest.RoomID(room) })
	}
	cut("101", "N")
	cut("101", "D")
	moveTo("102")
	cut("102", "N")
	cut("102", "D")
	moveTo("101")
	cut("101", "N")
}
