package main

import (
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Salto in the run: a third desk whose encoder belongs to a Salto lock
// system, reached by the salto driver through a simulated Salto PC
// interface in this process, which records every message it gets.

// saltoDesk is the key cutter the salto encoder serves; its identifier is
// the encoder's name in Salto (the config names none).
var saltoDesk = mews.Device{ID: "7a3c9e15-2d4b-4f68-8e0a-c1b2d3e4f5a6", Type: mews.DeviceKeyCutter,
	Name: "Salto encoder", Identifier: "Salto encoder 1"}

const (
	// saltoTimeout is the salto encoder's timeout: a card slower than it is
	// an answer that never came (a card may have been made).
	saltoTimeout = 2 * time.Second
	// saltoConnect is its connect_timeout, how long Salto has to ACK.
	saltoConnect = 500 * time.Millisecond
	// saltoCopies is the share, in percent, of Salto commands that are
	// further cards for an earlier Salto stay: copies (CC) once the stay's
	// first card was made.
	saltoCopies = 30
)

// saltoCodes are the error codes Salto answers with.
var saltoCodes = []string{"ES", "NC", "NF", "OV", "EP", "EF", "TD", "ED", "EA", "OS", "EO", "EV", "EG"}

// saltoFaults plans what goes wrong at the Salto interface.
func (pl *planner) saltoFaults(end float64) {
	for range pl.times(2, 5) {
		// One or two NAKs: ENQ, and the message again. Three: "not ready".
		n := 1 + pl.rng.IntN(4)
		pl.add(pl.within(0, end), faultSaltoNAK, func(r *run) { r.salto.SetNAK(n) })
	}
	for range pl.times(1, 3) {
		at, lasts := pl.within(0, end), pl.between(500*time.Millisecond, 3*time.Second)
		pl.add(at, faultSaltoBusy, func(r *run) { r.salto.SetBusy(true) })
		pl.add(at+lasts, "", func(r *run) { r.salto.SetBusy(false) })
	}
	for range pl.times(1, 3) {
		// Up to beyond the encoder's timeout: the card comes too late.
		at, lasts, delay := pl.within(0, end), pl.between(time.Second, 4*time.Second), pl.between(200*time.Millisecond, saltoTimeout+500*time.Millisecond)
		pl.add(at, faultSaltoSlow, func(r *run) { r.salto.SetDelay(delay) })
		pl.add(at+lasts, "", func(r *run) { r.salto.SetDelay(0) })
	}
	for range pl.times(1, 2) {
		at, lasts := pl.within(0, end), pl.between(time.Second, 4*time.Second)
		pl.add(at, faultSaltoSplit, func(r *run) { r.salto.SetWrites(saltotest.WritesSplit) })
		pl.add(at+lasts, "", func(r *run) { r.salto.SetWrites(saltotest.WritesNormal) })
	}
	for _, f := range []struct {
		name  string
		modes []saltotest.Mode
	}{
		{faultSaltoError, []saltotest.Mode{saltotest.ModeError}},
		{faultSaltoNoAck, []saltotest.Mode{saltotest.ModeNoAck}},
		{faultSaltoMute, []saltotest.Mode{saltotest.ModeNoAnswer}},
		{faultSaltoDrop, []saltotest.Mode{saltotest.ModeClose, saltotest.ModeAckClose}},
		{faultSaltoDamage, []saltotest.Mode{saltotest.ModeBadLRC, saltotest.ModeGarbage}},
	} {
		for range pl.times(1, 3) {
			at, lasts := pl.within(0, end), pl.between(300*time.Millisecond, 2*time.Second)
			mode, code := pick(pl.rng, f.modes...), pick(pl.rng, saltoCodes...)
			pl.add(at, f.name, func(r *run) {
				r.salto.SetError(code, "torture")
				r.salto.SetMode(mode)
			})
			pl.add(at+lasts, "", func(r *run) { r.salto.SetMode(saltotest.ModeOK) })
		}
	}
}

// saltoSpec draws a Salto command's guest and stay: a new stay (its first
// card is CN), or with saltoCopies percent one opened before at (CC once
// that stay has its first card).
func (pl *planner) saltoSpec(at time.Duration, spec *commandSpec) {
	spec.keys = 1 + pl.rng.IntN(2)
	spec.guest = pl.uuid()
	var open []string
	for _, s := range pl.saltoStays {
		if s.at < at {
			open = append(open, s.id)
		}
	}
	if len(open) > 0 && pl.rng.IntN(100) < saltoCopies {
		spec.reservation, spec.copy = pick(pl.rng, open...), true
		return
	}
	spec.reservation = pl.uuid()
	pl.saltoStays = append(pl.saltoStays, stay{id: spec.reservation, at: at})
}

// stay is a reservation the plan opened for Salto commands.
type stay struct {
	id string
	at time.Duration
}

// saltoPrint is what Salto prints on command n's card: its guest's name,
// unique to the command, which ties a message to its command.
func saltoPrint(n int) string { return "Salto " + cmdNumber(n) }

// createSalto makes a Salto command's guest, and its stay or the stay's
// new owner (without an event, as AddReservation does), then the command.
func (r *run) createSalto(spec commandSpec) (string, error) {
	guest := mews.Customer{ID: spec.guest, FirstName: "Salto", LastName: cmdNumber(spec.n)}
	r.srv.AddCustomer(guest)
	if !spec.copy {
		r.addStay(spec.reservation, cmdNumber(spec.n), guest.ID, spec.n)
	} else if res, ok := r.srv.Reservation(spec.reservation); ok {
		res.AccountID = guest.ID
		r.srv.AddReservation(res)
	} else {
		return "", fmt.Errorf("copy for stay %s, which is not in Mews", spec.reservation)
	}
	return r.srv.CreateKeyCutterCommand(saltoDesk.ID, spec.reservation, spec.keys)
}

// calmSalto ends every Salto fault.
func (r *run) calmSalto() {
	r.salto.SetMode(saltotest.ModeOK)
	r.salto.SetBusy(false)
	r.salto.SetNAK(0)
	r.salto.SetDelay(0)
	r.salto.SetWrites(saltotest.WritesNormal)
}

// saltoTally is what the Salto interface was asked to make.
type saltoTally struct {
	cards        map[string]int // taken CN/CC by print line: one per command at most
	cn, cc, naks int
}

// saltoCards counts the card requests (CN, CC) the interface took, by the
// command their print line names. One it refused with NAK made nothing:
// the driver sends it again.
func saltoCards(recs []saltotest.Record) saltoTally {
	t := saltoTally{cards: map[string]int{}}
	for _, rec := range recs {
		cmd := rec.Command()
		if cmd != "CN" && cmd != "CC" {
			continue
		}
		if rec.Refused {
			t.naks++
			continue
		}
		t.cards[rec.Msg.Field(12)]++
		if cmd == "CN" {
			t.cn++
		} else {
			t.cc++
		}
	}
	return t
}
