package daemon_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestKeyCutThroughSalto follows Mews key cutter commands through the
// daemon to the simulated Salto interface and back: the CN names the
// encoder by the key cutter's identifier and carries the mapped room, the
// ASCII guest name and the dates in the property's zone; the serials Salto
// returns end in the note; Salto's error codes reach the receptionist in
// words. It logs the latency from the command's creation to the message's
// arrival at Salto.
func TestKeyCutThroughSalto(t *testing.T) {
	sim := listenSalto(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), fmt.Sprintf(`
[[encoders]]
name = "desk-1"
driver = "salto"
timeout = "2s"
address = %q
time_zone = "Europe/Prague"

[rooms]
"102" = "0102"
`, sim.Addr()))

	created := time.Now()
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 2)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandProcessed, "2 keys for room 0102 (serials SN000001, SN000002)")

	cn, ok := saltotest.Last(sim.Received(), "CN")
	if !ok {
		t.Fatal("Salto received no CN")
	}
	c, _ := srv.Command(id)
	data, err := c.KeyCutter()
	if err != nil {
		t.Fatal(err)
	}
	prague, _ := time.LoadLocation("Europe/Prague")
	for i, want := range map[int]string{
		0: "CN2", 1: mewstest.KeyCutter1.Identifier, 2: "R", 3: "0102", 4: "",
		9: data.StartUtc.In(prague).Format("1504020106"), 10: data.EndUtc.In(prague).Format("1504020106"),
		11: "mews-keyd", 12: "Zoe Angstrom", 15: "2",
	} {
		if got := cn.Msg.Field(i); got != want {
			t.Errorf("CN field %d = %q, want %q (message %s)", i, got, want, cn.Msg)
		}
	}
	latencies := []time.Duration{cn.At.Sub(created)}

	// More cards for the reservation are copies (CC); their latency joins
	// the sample.
	for range 9 {
		created := time.Now()
		id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
		h.waitFinal(id)
		assertState(t, srv, id, mews.CommandProcessed, "1 key for room 0102 (serial SN")
		cc, ok := saltotest.Last(sim.Received(), "CC")
		if !ok {
			t.Fatal("Salto received no CC for a second card")
		}
		latencies = append(latencies, cc.At.Sub(created))
	}
	slices.Sort(latencies)
	t.Logf("command created → message at Salto, %d cuts: median %v, max %v", len(latencies), latencies[len(latencies)/2], latencies[len(latencies)-1])

	// Salto's refusal, in words; then no answer after ACK, which may have
	// made a card.
	sim.SetMode(saltotest.ModeError)
	sim.SetError("EP", "")
	refused := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(refused)
	assertState(t, srv, refused, mews.CommandError, "no card in the encoder, or it is inserted wrongly")

	sim.SetMode(saltotest.ModeNoAnswer)
	hung := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(hung)
	assertState(t, srv, hung, mews.CommandError, "no answer from Salto within 2s; a card may have been encoded")
}
