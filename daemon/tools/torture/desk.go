package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// The front desk: what the plan has staff do in Mews.

// reservations with a room, for the exec encoder's commands.
var roomed = []string{mewstest.ReservationArriving, mewstest.ReservationCheckedIn, mewstest.ReservationLongStay}

var guests = []mews.Customer{mewstest.CustomerNovak, mewstest.CustomerAngstrom, mewstest.CustomerMuller,
	mewstest.CustomerDvorakova, mewstest.CustomerOBrien, mewstest.CustomerGarcia}

// create makes a planned command in Mews, as the front desk would.
func (r *run) create(spec commandSpec) {
	var id string
	var err error
	switch spec.kind {
	case kindExec:
		id, err = r.srv.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, roomed[spec.n%len(roomed)], spec.keys)
	case kindFias:
		r.addStay(spec.reservation, cmdNumber(spec.n), guests[spec.n%len(guests)].ID, spec.n)
		id, err = r.srv.CreateKeyCutterCommand(mewstest.KeyCutter2.ID, spec.reservation, spec.keys)
	case kindSalto:
		id, err = r.createSalto(spec)
	case kindNoRoom:
		id, err = r.srv.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationUnassigned, 1)
	case kindTooOld:
		g := guests[spec.n%len(guests)]
		data, _ := json.Marshal(mews.KeyCutterData{KeyCount: 1, LockIDs: []string{"101"}, FirstName: g.FirstName,
			LastName: g.LastName, Email: g.Email, Telephone: g.Phone, ReservationNumber: "1001",
			StartUtc: time.Now().Add(-time.Hour).UTC(), EndUtc: time.Now().Add(24 * time.Hour).UTC()})
		id = r.srv.CreateCommand(mews.Command{Device: mewstest.KeyCutter1, CreatedUtc: time.Now().Add(-2 * time.Hour), Data: data})
	case kindPrinter:
		id = r.srv.CreateCommand(mews.Command{Device: mewstest.Printer1, Data: []byte(`{"CopyCount":1}`)})
	case kindStranger:
		id, err = r.srv.CreateKeyCutterCommand(stranger.ID, roomed[spec.n%len(roomed)], 1)
	}
	if err != nil {
		r.problem("creating command %d: %v", spec.n, err)
		return
	}
	r.mu.Lock()
	r.created[spec.n] = &created{spec: spec, id: id}
	r.mu.Unlock()
}

// cmdNumber is command n's number in the run: the reservation number of
// its stay, where it has one of its own.
func cmdNumber(n int) string { return fmt.Sprintf("T%05d", n) }

// addStay adds a started reservation in one of the twelve rooms: the stay
// of a fias or salto command, told apart by the lock system.
func (r *run) addStay(id, number, account string, n int) {
	now := time.Now().UTC().Truncate(time.Second)
	r.srv.AddReservation(mews.Reservation{ID: id, Number: number, State: mews.ReservationStarted,
		AccountID: account, AssignedResourceID: mewstest.RoomID(fmt.Sprint(101 + n%12)),
		ScheduledStartUtc: now.Add(-24 * time.Hour), ScheduledEndUtc: now.Add(48 * time.Hour)})
}

// deskCancel cancels a command through the API, as staff would: Mews
// refuses it once the command is final, so it can never add a second
// final state.
func (r *run) deskCancel(n int) {
	r.mu.Lock()
	c := r.created[n]
	r.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.desk.UpdateCommand(ctx, mews.CommandUpdate{ID: c.id, State: mews.CommandCancelled, Notes: deskNote}) // refused when final: fine
}
