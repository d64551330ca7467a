package daemon_test

import (
	"fmt"
	"testing"

	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/keys/ptytest"
	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestKeyCutOverSerial follows a Mews key cutter command through the
// daemon to each lock simulator on a serial cable (a pseudo-terminal pair)
// and back.
func TestKeyCutOverSerial(t *testing.T) {
	t.Run("fias", func(t *testing.T) {
		cable := ptytest.New(t)
		lock := fiastest.Serve(cable.Plug(), fiastest.Options{})
		t.Cleanup(func() { lock.Close() })
		cutOverSerial(t, "fias", cable.Path)
		if kr, ok := fiastest.Last(lock.Received(), "KR"); !ok || kr.Get("RN") != "0102" {
			t.Fatalf("the lock system received %v, want a KR for room 0102", lock.Received())
		}
	})
	t.Run("salto", func(t *testing.T) {
		cable := ptytest.New(t)
		sim := saltotest.Serve(cable.Plug(), saltotest.Options{})
		t.Cleanup(func() { sim.Close() })
		cutOverSerial(t, "salto", cable.Path)
		if cn, ok := saltotest.Last(sim.Received(), "CN"); !ok || cn.Msg.Field(3) != "0102" {
			t.Fatalf("Salto received %+v, want a CN for room 0102", sim.Received())
		}
	})
}

// cutOverSerial cuts 2 keys through an encoder of driver on port, and
// checks that Mews learns of them.
func cutOverSerial(t *testing.T, driver, port string) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), fmt.Sprintf(`
[[encoders]]
name = "desk-1"
driver = %q
timeout = "5s"
serial = %q
baud = 19200

[rooms]
"102" = "0102"
`, driver, port))
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 2)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandProcessed, "2 keys")
}
