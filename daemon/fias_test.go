package daemon_test

import (
	"testing"

	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestKeyCutThroughFIAS follows a Mews key cutter command through the
// daemon to the FIAS lock simulator and back: the KR carries the mapped
// room and the ASCII guest name, and the lock's answer ends in Mews.
func TestKeyCutThroughFIAS(t *testing.T) {
	lock := listenFIAS(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), fiasEncoder(lock.Addr(), `workstation = "7"
encoder_station = "3"
time_zone = "Europe/Prague"

[rooms]
"102" = "0102"
`))

	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 2)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandProcessed, "2 keys")

	kr, ok := fiastest.Last(lock.Received(), "KR")
	if !ok {
		t.Fatal("the lock system received no KR")
	}
	for field, want := range map[string]string{"RN": "0102", "KC": "3", "WS": "7", "K#": "2", "KT": "N", "GN": "Angstrom", "G#": "1002"} {
		if got := kr.Get(field); got != want {
			t.Errorf("KR %s = %q, want %q (record %s)", field, got, want, kr)
		}
	}

	// A second card for the same reservation is a duplicate (KT=D), and a
	// busy lock system's text reaches the receptionist.
	lock.SetMode(fiastest.ModeFail)
	lock.SetFailure("BY", "Encoder 3 busy")
	dup := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(dup)
	assertState(t, srv, dup, mews.CommandError, "Encoder 3 busy")
	last, _ := fiastest.Last(lock.Received(), "KR")
	if kt := last.Get("KT"); kt != "D" {
		t.Errorf("second card KT = %q, want D", kt)
	}
}
