// Package digitalkeys is the digital-key pipeline. Reservation events and
// catch-up polls come in; keys are issued at check-in, changed on a room
// move or a new departure, revoked at check-out, and recorded in Mews.
//
// Decide is its pure core: given what was recorded about a reservation, the
// reservation as Mews has it now, the policy and the time, it names the one
// operation to run and the state to record once it has succeeded. It does
// no I/O, so every case is a row in a table test. ForNewHolder amends a
// decision when the key's holder left the reservation, and DecideCompanion
// decides about the key of a companion of the main guest, which follows
// the main guest's. Pipeline does the rest: it fetches, journals (through
// its Store) and calls the encoder.
//
// Events repeat and arrive out of order, so a decision rests on the fetched
// reservation alone, and on its version (UpdatedUtc): a version older than
// one already decided on changes nothing, and a version never triggers the
// same operation twice, even across a restart.
package digitalkeys

import (
	"maps"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// Action is an operation on the lock system.
type Action string

// Actions. Reissue revokes whatever key exists and issues a new one: a room
// move on an encoder that cannot update, or the way out of an operation
// interrupted by a crash, whose outcome nobody knows.
const (
	None    Action = ""
	Issue   Action = "issue"
	Update  Action = "update"
	Revoke  Action = "revoke"
	Reissue Action = "reissue"
)

// Status says whether the reservation holds a key.
type Status string

// Statuses.
const (
	NotIssued Status = ""
	Issued    Status = "issued"
	Revoked   Status = "revoked"
)

// Grant is what a key opens and when.
type Grant struct {
	Room  string    `json:"room"` // Mews resource id
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
}

// State is what is recorded about one reservation's key.
type State struct {
	Status Status `json:"status,omitempty"`
	Grant  Grant  `json:"grant"`
	// Uncertain means an operation may have taken effect without our
	// knowing how: the lock system may hold a key Grant does not describe.
	Uncertain bool `json:"uncertain,omitempty"`
	// Pending is recorded before the encoder is called and cleared after;
	// found set, it means the call was interrupted.
	Pending Action `json:"pending,omitempty"`
	// Seen is the newest reservation version decided on.
	Seen time.Time `json:"seen"`
	// Done holds, per operation, the version that last triggered it.
	Done map[Action]time.Time `json:"done,omitempty"`
	// WakeAt is when the reservation must be looked at again although
	// nothing changes in Mews: the start of an issue_before_arrival window.
	WakeAt time.Time `json:"wake_at"`
}

// Policy is how keys are handed out.
type Policy struct {
	// IssueBeforeArrival issues keys to Confirmed reservations with a room
	// that long before their scheduled start; zero issues at check-in.
	IssueBeforeArrival time.Duration
	// CanUpdate is whether the encoder changes keys in place; without it a
	// room move or new validity is a Reissue.
	CanUpdate bool
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Next is the state to record once Action has succeeded (at once for
	// None).
	Next State
	// Reason says why, for the debug log.
	Reason string
	// Stale: the reservation is older than a version already decided on,
	// so it says nothing about the present (None, and Next is prev).
	Stale bool
}

// want is what the reservation calls for, independent of the past.
type want int

const (
	hold    want = iota // no opinion: leave any key as it is
	wantKey             // a key for Grant
	noKey               // no key at all
)

// Decide returns what to do about r. now matters for validity starts and the
// issue_before_arrival window.
func Decide(prev State, r *mews.Reservation, p Policy, now time.Time) Decision {
	if prev.Pending != "" {
		// An interrupted call may have issued, changed or failed to revoke
		// a key: from here on, assume a key of unknown shape exists.
		prev.Status, prev.Uncertain, prev.Pending = Issued, true, ""
	}
	if r.UpdatedUtc.Before(prev.Seen) {
		return Decision{Next: prev, Reason: "an older version than one already handled", Stale: true}
	}
	next := prev
	next.Seen = r.UpdatedUtc
	next.WakeAt = time.Time{}

	w, grant, wake, why := wanted(r, p, now)
	var act Action
	switch w {
	case wantKey:
		act, why = keyAction(prev, grant, p)
		if act != None {
			next.Status, next.Grant, next.Uncertain = Issued, grant, false
		}
	case noKey:
		if prev.Status == Issued {
			act = Revoke
			next.Status, next.Uncertain = Revoked, false
		} else {
			why += "; no key to revoke"
		}
	case hold:
		next.WakeAt = wake
	}
	if act == None {
		// Only bookkeeping moves; the key stays as it was.
		prev.Seen, prev.WakeAt = next.Seen, next.WakeAt
		return Decision{Next: prev, Reason: why}
	}
	if done, ok := prev.Done[act]; ok && !r.UpdatedUtc.After(done) {
		prev.Seen = next.Seen
		return Decision{Next: prev, Reason: "this version already triggered " + string(act)}
	}
	next.Done = maps.Clone(prev.Done)
	if next.Done == nil {
		next.Done = map[Action]time.Time{}
	}
	next.Done[act] = r.UpdatedUtc
	return Decision{Action: act, Next: next, Reason: why}
}

// wanted reads the reservation alone: does it call for a key, for none, or
// for nothing in particular?
func wanted(r *mews.Reservation, p Policy, now time.Time) (w want, g Grant, wake time.Time, why string) {
	room := r.AssignedResourceID
	switch r.State {
	case mews.ReservationStarted:
		if room == "" {
			return hold, g, wake, "checked in without a room"
		}
		from := now
		if r.ActualStartUtc != nil {
			from = *r.ActualStartUtc
		}
		return wantKey, Grant{Room: room, From: from, Until: r.ScheduledEndUtc}, wake, "checked in"
	case mews.ReservationConfirmed:
		if p.IssueBeforeArrival <= 0 {
			return hold, g, wake, "confirmed; keys are issued at check-in"
		}
		if room == "" {
			return hold, g, wake, "confirmed without a room"
		}
		due := r.ScheduledStartUtc.Add(-p.IssueBeforeArrival)
		if now.Before(due) {
			return hold, g, due, "confirmed; too early for a key"
		}
		return wantKey, Grant{Room: room, From: now, Until: r.ScheduledEndUtc}, wake, "arriving soon"
	case mews.ReservationProcessed:
		return noKey, g, wake, "checked out"
	case mews.ReservationCanceled:
		return noKey, g, wake, "canceled"
	default:
		return hold, g, wake, "state " + string(r.State) + " needs no key"
	}
}

// keyAction compares the key the reservation should have with the one it has.
func keyAction(prev State, g Grant, p Policy) (Action, string) {
	change := Update
	if !p.CanUpdate {
		change = Reissue
	}
	switch {
	case prev.Status != Issued:
		return Issue, "needs a key"
	case prev.Uncertain:
		return Reissue, "an earlier operation may have left an unknown key"
	case g.Room != prev.Grant.Room:
		return change, "moved to another room"
	case !g.Until.Equal(prev.Grant.Until):
		return change, "departure changed"
	default:
		return None, "key already matches"
	}
}

// ForNewHolder turns d into the decision for a key whose holder is no
// longer the reservation's main guest (they left a company-owned
// reservation, or it changed hands): a key that stays, or would be
// updated, is replaced instead, so that the person who left loses it.
// Other decisions stand.
func ForNewHolder(d Decision, r *mews.Reservation) Decision {
	if d.Stale || d.Next.Status != Issued || (d.Action != None && d.Action != Update) {
		return d
	}
	next := d.Next
	next.Uncertain = false
	next.Done = maps.Clone(next.Done)
	if next.Done == nil {
		next.Done = map[Action]time.Time{}
	}
	if d.Action == Update {
		// The replacement is what this version triggers; an older
		// version's update can never come back (it would be stale).
		delete(next.Done, Update)
	}
	next.Done[Reissue] = r.UpdatedUtc
	return Decision{Action: Reissue, Next: next, Reason: "the key's holder is no longer the reservation's main guest"}
}

// Companion is what is recorded about the key of a guest travelling with
// the main guest. It follows the main guest's key (same room, same
// validity) for as long as the companion is on the reservation.
type Companion struct {
	Grant     Grant `json:"grant"`
	Uncertain bool  `json:"uncertain,omitempty"`
	// Pending is recorded before the encoder is called and cleared after.
	Pending Action `json:"pending,omitempty"`
}

// DecideCompanion returns the operation that brings a companion's key in
// line: prev is their key (nil: they hold none), want whether they should
// hold one, g the main guest's grant. Unlike Decide it compares states,
// not versions (a companion has none of their own): whatever the events, a
// key is issued only where none is recorded.
func DecideCompanion(prev *Companion, want bool, g Grant, p Policy) (Action, string) {
	switch {
	case prev == nil && want:
		return Issue, "a companion needs a key"
	case prev == nil:
		return None, "no key for this companion"
	case !want:
		return Revoke, "the companion left, or the main guest holds no key"
	case prev.Pending != "" || prev.Uncertain:
		return Reissue, "an earlier operation may have left an unknown key"
	case prev.Grant.Room != g.Room || !prev.Grant.Until.Equal(g.Until):
		if p.CanUpdate {
			return Update, "the main guest's key changed"
		}
		return Reissue, "the main guest's key changed"
	default:
		return None, "the companion's key matches"
	}
}
