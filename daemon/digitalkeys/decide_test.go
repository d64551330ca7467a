package digitalkeys

import (
	"fmt"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

var (
	now     = time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	checkIn = now.Add(-2 * time.Hour)
	start   = time.Date(2025, 6, 10, 14, 0, 0, 0, time.UTC)
	end     = time.Date(2025, 6, 13, 10, 0, 0, 0, time.UTC)
	v0      = now.Add(-time.Hour) // the version the previous state was recorded at
	v1      = now.Add(-time.Minute)
)

const (
	room1 = "room-101"
	room2 = "room-102"
)

// previous states a reservation can be found in.
var previous = map[string]State{
	"none":    {},
	"issued":  {Status: Issued, Grant: Grant{Room: room1, From: checkIn, Until: end}, Seen: v0, Done: map[Action]time.Time{Issue: v0}},
	"revoked": {Status: Revoked, Grant: Grant{Room: room1, From: checkIn, Until: end}, Seen: v0, Done: map[Action]time.Time{Issue: v0.Add(-time.Hour), Revoke: v0}},
}

func reservation(state mews.ReservationState, room string, until time.Time, version time.Time) *mews.Reservation {
	r := &mews.Reservation{ID: "r", Number: "1001", State: state, AssignedResourceID: room,
		ScheduledStartUtc: start, ScheduledEndUtc: until, UpdatedUtc: version}
	if state == mews.ReservationStarted || state == mews.ReservationProcessed {
		r.ActualStartUtc = &checkIn
	}
	return r
}

var allStates = []mews.ReservationState{
	mews.ReservationInquired, mews.ReservationConfirmed, mews.ReservationStarted, mews.ReservationProcessed,
	mews.ReservationCanceled, mews.ReservationOptional, mews.ReservationRequested,
}

// TestDecideTable covers every previous state × reservation state × room
// (same, none, changed) × departure (same, changed), at check-in policy.
func TestDecideTable(t *testing.T) {
	const (
		o = None
		I = Issue
		U = Update
		R = Revoke
	)
	// want[room][end]: room is same/none/changed, end is same/changed.
	type row struct {
		prev  string
		state mews.ReservationState
		want  [3][2]Action
	}
	holdAll := [3][2]Action{{o, o}, {o, o}, {o, o}}
	revokeAll := [3][2]Action{{R, R}, {R, R}, {R, R}}
	issueWithRoom := [3][2]Action{{I, I}, {o, o}, {I, I}}
	var rows []row
	for _, prev := range []string{"none", "issued", "revoked"} {
		for _, st := range allStates {
			r := row{prev: prev, state: st, want: holdAll}
			switch {
			case st == mews.ReservationStarted && prev == "issued":
				r.want = [3][2]Action{{o, U}, {o, o}, {U, U}}
			case st == mews.ReservationStarted:
				r.want = issueWithRoom
			case (st == mews.ReservationProcessed || st == mews.ReservationCanceled) && prev == "issued":
				r.want = revokeAll
			}
			rows = append(rows, r)
		}
	}
	rooms := [3]string{room1, "", room2}
	roomNames := [3]string{"same room", "no room", "room changed"}
	ends := [2]time.Time{end, end.Add(24 * time.Hour)}
	endNames := [2]string{"same end", "end changed"}
	policy := Policy{CanUpdate: true}
	for _, rw := range rows {
		for ri, room := range rooms {
			for ei, until := range ends {
				name := fmt.Sprintf("%s/%s/%s/%s", rw.prev, rw.state, roomNames[ri], endNames[ei])
				t.Run(name, func(t *testing.T) {
					prev := previous[rw.prev]
					r := reservation(rw.state, room, until, v1)
					d := Decide(prev, r, policy, now)
					if d.Action != rw.want[ri][ei] {
						t.Fatalf("action %q (%s), want %q", d.Action, d.Reason, rw.want[ri][ei])
					}
					checkNext(t, prev, r, d)
					// The same version again, as a repeated event would
					// bring it: nothing more to do.
					if again := Decide(d.Next, r, policy, now); again.Action != None {
						t.Errorf("repeated version: action %q (%s), want none", again.Action, again.Reason)
					}
				})
			}
		}
	}
}

// checkNext verifies the state a decision records.
func checkNext(t *testing.T, prev State, r *mews.Reservation, d Decision) {
	t.Helper()
	if !d.Next.Seen.Equal(r.UpdatedUtc) {
		t.Errorf("Next.Seen %v, want the reservation's version %v", d.Next.Seen, r.UpdatedUtc)
	}
	if d.Next.Pending != "" {
		t.Errorf("Next.Pending %q, want empty", d.Next.Pending)
	}
	switch d.Action {
	case None:
		if d.Next.Status != prev.Status || d.Next.Grant != prev.Grant {
			t.Errorf("no action but the key changed: %+v -> %+v", prev, d.Next)
		}
	case Issue, Update, Reissue:
		want := Grant{Room: r.AssignedResourceID, From: checkIn, Until: r.ScheduledEndUtc}
		if r.State == mews.ReservationConfirmed {
			want.From = now
		}
		if d.Next.Status != Issued || d.Next.Grant != want {
			t.Errorf("Next %+v, want issued %+v", d.Next, want)
		}
	case Revoke:
		if d.Next.Status != Revoked {
			t.Errorf("Next.Status %q after revoke", d.Next.Status)
		}
	}
	if d.Action != None && !d.Next.Done[d.Action].Equal(r.UpdatedUtc) {
		t.Errorf("Next.Done[%s] = %v, want %v", d.Action, d.Next.Done[d.Action], r.UpdatedUtc)
	}
}

func TestDecideCases(t *testing.T) {
	canUpdate := Policy{CanUpdate: true}
	early := Policy{CanUpdate: true, IssueBeforeArrival: 2 * time.Hour}
	issued := previous["issued"]
	for _, c := range []struct {
		name   string
		prev   State
		r      *mews.Reservation
		policy Policy
		now    time.Time
		want   Action
		check  func(t *testing.T, d Decision)
	}{
		{name: "validity starts now without an actual start", prev: State{},
			r: func() *mews.Reservation {
				r := reservation(mews.ReservationStarted, room1, end, v1)
				r.ActualStartUtc = nil
				return r
			}(),
			policy: canUpdate, now: now, want: Issue,
			check: func(t *testing.T, d Decision) {
				if !d.Next.Grant.From.Equal(now) || !d.Next.Grant.Until.Equal(end) {
					t.Errorf("grant %+v, want from now to the scheduled end", d.Next.Grant)
				}
			}},
		{name: "before arrival: too early waits for the window", prev: State{},
			r: reservation(mews.ReservationConfirmed, room1, end, v1), policy: early, now: start.Add(-3 * time.Hour), want: None,
			check: func(t *testing.T, d Decision) {
				if want := start.Add(-2 * time.Hour); !d.Next.WakeAt.Equal(want) {
					t.Errorf("WakeAt %v, want %v", d.Next.WakeAt, want)
				}
			}},
		{name: "before arrival: window open issues", prev: State{},
			r: reservation(mews.ReservationConfirmed, room1, end, v1), policy: early, now: start.Add(-2 * time.Hour), want: Issue},
		{name: "before arrival: woken with the same version issues", prev: State{Seen: v1, WakeAt: start.Add(-2 * time.Hour)},
			r: reservation(mews.ReservationConfirmed, room1, end, v1), policy: early, now: start.Add(-time.Hour), want: Issue,
			check: func(t *testing.T, d Decision) {
				if !d.Next.WakeAt.IsZero() {
					t.Errorf("WakeAt %v after issuing", d.Next.WakeAt)
				}
			}},
		{name: "before arrival: no room waits", prev: State{},
			r: reservation(mews.ReservationConfirmed, "", end, v1), policy: early, now: start, want: None},
		{name: "before arrival: check-in keeps the key", prev: State{Status: Issued, Grant: Grant{Room: room1, From: start.Add(-2 * time.Hour), Until: end}, Seen: v0},
			r: reservation(mews.ReservationStarted, room1, end, v1), policy: early, now: now, want: None},
		{name: "no updater: room move reissues", prev: issued,
			r: reservation(mews.ReservationStarted, room2, end, v1), policy: Policy{}, now: now, want: Reissue},
		{name: "no updater: extension reissues", prev: issued,
			r: reservation(mews.ReservationStarted, room1, end.Add(time.Hour), v1), policy: Policy{}, now: now, want: Reissue},
		{name: "older version is ignored", prev: State{Status: Revoked, Seen: v1, Done: map[Action]time.Time{Revoke: v1}},
			r: reservation(mews.ReservationStarted, room1, end, v0), policy: canUpdate, now: now, want: None,
			check: func(t *testing.T, d Decision) {
				if !d.Next.Seen.Equal(v1) || d.Next.Status != Revoked || !d.Stale {
					t.Errorf("Next %+v (stale %v), want the previous state untouched and a stale decision", d.Next, d.Stale)
				}
			}},
		{name: "same version never issues twice", prev: State{Status: Revoked, Seen: v1, Done: map[Action]time.Time{Issue: v1, Revoke: v1}},
			r: reservation(mews.ReservationStarted, room1, end, v1), policy: canUpdate, now: now, want: None},
		{name: "same version may revoke what it issued", prev: State{Status: Issued, Grant: Grant{Room: room1, From: checkIn, Until: end}, Seen: v1, Done: map[Action]time.Time{Issue: v1}},
			r: reservation(mews.ReservationProcessed, room1, end, v1), policy: canUpdate, now: now, want: Revoke},
		{name: "undo check-out issues again", prev: previous["revoked"],
			r: reservation(mews.ReservationStarted, room1, end, v1), policy: canUpdate, now: now, want: Issue},
		{name: "interrupted issue, still checked in: reissue", prev: State{Pending: Issue, Seen: v1, Done: map[Action]time.Time{Issue: v1}},
			r: reservation(mews.ReservationStarted, room1, end, v1), policy: canUpdate, now: now, want: Reissue},
		{name: "interrupted issue, checked out meanwhile: revoke", prev: State{Pending: Issue, Seen: v0, Done: map[Action]time.Time{Issue: v0}},
			r: reservation(mews.ReservationProcessed, room1, end, v1), policy: canUpdate, now: now, want: Revoke},
		{name: "interrupted issue, no longer checked in: remember the possible key", prev: State{Pending: Issue, Seen: v1, Done: map[Action]time.Time{Issue: v1}},
			r: reservation(mews.ReservationConfirmed, room1, end, v1), policy: canUpdate, now: now, want: None,
			check: func(t *testing.T, d Decision) {
				if d.Next.Status != Issued || !d.Next.Uncertain || d.Next.Pending != "" {
					t.Errorf("Next %+v, want an uncertain issued key", d.Next)
				}
			}},
		{name: "interrupted revoke: revoke again", prev: State{Status: Issued, Pending: Revoke, Seen: v1, Done: map[Action]time.Time{Revoke: v0}},
			r: reservation(mews.ReservationCanceled, room1, end, v1), policy: canUpdate, now: now, want: Revoke},
		{name: "interrupted reissue at this version is not retried", prev: State{Status: Issued, Pending: Reissue, Seen: v1, Done: map[Action]time.Time{Reissue: v1}},
			r: reservation(mews.ReservationStarted, room1, end, v1), policy: canUpdate, now: now, want: None},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.prev, c.r, c.policy, c.now)
			if d.Action != c.want {
				t.Fatalf("action %q (%s), want %q", d.Action, d.Reason, c.want)
			}
			if d.Reason == "" {
				t.Error("no reason given")
			}
			if d.Stale != (c.r.UpdatedUtc.Before(c.prev.Seen)) {
				t.Errorf("stale %v for version %v after %v", d.Stale, c.r.UpdatedUtc, c.prev.Seen)
			}
			if c.check != nil {
				c.check(t, d)
			}
		})
	}
}

func TestDecideDoesNotAliasPrevious(t *testing.T) {
	prev := previous["issued"]
	before := fmt.Sprint(prev.Done)
	d := Decide(prev, reservation(mews.ReservationProcessed, room1, end, v1), Policy{}, now)
	if d.Action != Revoke {
		t.Fatalf("action %q", d.Action)
	}
	if after := fmt.Sprint(prev.Done); after != before {
		t.Errorf("previous Done changed from %s to %s", before, after)
	}
}

// TestDecideCompanion covers every recorded companion key × whether the
// companion should hold one × the main guest's grant, with and without an
// encoder that updates in place.
func TestDecideCompanion(t *testing.T) {
	grant := Grant{Room: room1, From: checkIn, Until: end}
	moved := Grant{Room: room2, From: checkIn, Until: end}
	extended := Grant{Room: room1, From: checkIn, Until: end.Add(24 * time.Hour)}
	held := &Companion{Grant: grant}
	for _, c := range []struct {
		name   string
		prev   *Companion
		want   bool
		grant  Grant
		update Action // with an updater; without one, Update is Reissue
	}{
		{"no key, wanted", nil, true, grant, Issue},
		{"no key, not wanted", nil, false, grant, None},
		{"key matches", held, true, grant, None},
		{"main guest moved", held, true, moved, Update},
		{"main guest extended", held, true, extended, Update},
		{"companion gone", held, false, grant, Revoke},
		{"companion gone after a move", held, false, moved, Revoke},
		{"interrupted issue, still wanted", &Companion{Grant: grant, Pending: Issue}, true, grant, Reissue},
		{"interrupted issue, gone meanwhile", &Companion{Grant: grant, Pending: Issue}, false, grant, Revoke},
		{"interrupted revoke, gone", &Companion{Grant: grant, Pending: Revoke}, false, grant, Revoke},
		{"uncertain key, wanted", &Companion{Grant: grant, Uncertain: true}, true, grant, Reissue},
		{"uncertain key, gone", &Companion{Grant: grant, Uncertain: true}, false, grant, Revoke},
	} {
		t.Run(c.name, func(t *testing.T) {
			act, why := DecideCompanion(c.prev, c.want, c.grant, Policy{CanUpdate: true})
			if act != c.update || why == "" {
				t.Errorf("with an updater: %q (%s), want %q", act, why, c.update)
			}
			wantWithout := c.update
			if wantWithout == Update {
				wantWithout = Reissue
			}
			if act, why := DecideCompanion(c.prev, c.want, c.grant, Policy{}); act != wantWithout {
				t.Errorf("without an updater: %q (%s), want %q", act, why, wantWithout)
			}
		})
	}
}

// TestForNewHolder: a key whose holder left the reservation is replaced,
// never updated in place; other decisions stand.
func TestForNewHolder(t *testing.T) {
	issued := previous["issued"]
	keep := reservation(mews.ReservationStarted, room1, end, v1)
	move := reservation(mews.ReservationStarted, room2, end, v1)
	out := reservation(mews.ReservationProcessed, room1, end, v1)
	for _, c := range []struct {
		name string
		d    Decision
		r    *mews.Reservation
		want Action
	}{
		{"key matches: replaced", Decide(issued, keep, Policy{CanUpdate: true}, now), keep, Reissue},
		{"room move: replaced, not updated", Decide(issued, move, Policy{CanUpdate: true}, now), move, Reissue},
		{"check-out: revoked", Decide(issued, out, Policy{CanUpdate: true}, now), out, Revoke},
		{"first key: issued", Decide(State{}, keep, Policy{CanUpdate: true}, now), keep, Issue},
		{"no key: nothing", Decide(previous["revoked"], reservation(mews.ReservationConfirmed, room1, end, v1), Policy{}, now),
			reservation(mews.ReservationConfirmed, room1, end, v1), None},
		{"older version: nothing", Decide(State{Status: Issued, Grant: issued.Grant, Seen: v1}, reservation(mews.ReservationStarted, room1, end, v0), Policy{}, now),
			reservation(mews.ReservationStarted, room1, end, v0), None},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := ForNewHolder(c.d, c.r)
			if d.Action != c.want {
				t.Fatalf("action %q (%s), want %q", d.Action, d.Reason, c.want)
			}
			if d.Action == Reissue {
				if d.Next.Status != Issued || d.Next.Grant.Room != c.r.AssignedResourceID || !d.Next.Done[Reissue].Equal(c.r.UpdatedUtc) {
					t.Errorf("Next %+v", d.Next)
				}
				if _, ok := d.Next.Done[Update]; ok {
					t.Errorf("Next.Done %v records an update that never ran", d.Next.Done)
				}
			}
		})
	}
}
