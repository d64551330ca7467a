package digitalkeys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// fetch fetches announced reservations in one request and decides
// about each. No ids is nothing to fetch (to Mews, no ids would be no
// filter: every reservation of the property).
func (dk *Pipeline) fetch(ctx context.Context, ids []string, seen map[string]time.Time) {
	if len(ids) == 0 {
		return
	}
	rs, err := dk.api.Reservations(ctx, mews.ReservationFilter{IDs: ids})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		dk.fetchFailures++
		retry := dk.now().Add(dk.retry.After(dk.fetchFailures))
		dk.log.Error().Err(err).Int("reservations", len(ids)).Time("retry_at", retry).Msg("fetching reservations failed; will retry")
		for _, id := range ids {
			dk.wake[id] = retry
		}
		return
	}
	dk.fetchFailures = 0
	dk.process(ctx, rs, seen)
}

// catchUp runs every reservation changed since the watermark through
// the decisions, so that a check-out during an outage still revokes.
func (dk *Pipeline) catchUp(ctx context.Context) {
	start := dk.now()
	mark, err := dk.store.DigitalWatermark()
	if err != nil {
		dk.log.Error().Err(err).Msg("reading the digital key watermark")
		return
	}
	from := start.Add(-firstCatchUp)
	if !mark.IsZero() {
		from = mark.Add(-catchUpOverlap)
	}
	to := start.Add(catchUpAhead)
	var all []mews.Reservation
	for ws := from; ws.Before(to); ws = ws.Add(maxUpdatedWindow) {
		we := minTime(ws.Add(maxUpdatedWindow), to)
		rs, err := dk.api.Reservations(ctx, mews.ReservationFilter{UpdatedFrom: ws, UpdatedTo: we})
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				dk.log.Error().Err(err).Msg("digital key catch-up failed; retrying at the next poll")
			}
			return
		}
		all = append(all, rs...)
	}
	dk.log.Debug().Int("reservations", len(all)).Time("since", from).Msg("digital key catch-up")
	dk.process(ctx, append(slices.Clone(all), dk.arrivals(ctx, start, all)...), nil)
	if ctx.Err() != nil {
		return
	}
	newest := mark
	if newest.IsZero() {
		newest = from
	}
	for i := range all {
		if all[i].UpdatedUtc.After(newest) {
			newest = all[i].UpdatedUtc
		}
	}
	if newest.Equal(mark) {
		return
	}
	if err := dk.store.SetDigitalWatermark(newest); err != nil {
		dk.log.Error().Err(err).Msg("recording the digital key watermark")
	}
}

// arrivals returns the Confirmed reservations whose
// issue_before_arrival window opens before the next poll, except those the
// catch-up already has: nothing about them may have changed for days, so no
// event or catch-up would bring them. Deciding about one not yet due
// records when its window opens, and the pipeline's timer wakes it then.
func (dk *Pipeline) arrivals(ctx context.Context, now time.Time, have []mews.Reservation) []mews.Reservation {
	ahead := dk.policy.IssueBeforeArrival
	if ahead <= 0 {
		return nil
	}
	to := minTime(now.Add(ahead+dk.reconcile), now.Add(maxUpdatedWindow))
	rs, err := dk.api.Reservations(ctx, mews.ReservationFilter{
		States:             []mews.ReservationState{mews.ReservationConfirmed},
		ScheduledStartFrom: now.Add(-arrivalsBehind), ScheduledStartTo: to,
	})
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			dk.log.Error().Err(err).Msg("fetching the arrivals for digital keys failed; retrying at the next poll")
		}
		return nil
	}
	seen := make(map[string]bool, len(have))
	for i := range have {
		seen[have[i].ID] = true
	}
	rs = slices.DeleteFunc(rs, func(r mews.Reservation) bool { return seen[r.ID] })
	dk.log.Debug().Int("reservations", len(rs)).Time("until", to).Msg("digital key arrivals")
	return rs
}

// plan is one reservation's decision with what carrying it out needs.
type plan struct {
	r    *mews.Reservation
	rec  record
	dec  Decision
	seen time.Time
	// who is on the reservation, when Mews was asked (needsPeople).
	who *people
	// guests are the customers the plan needs.
	guests []string
}

// makesKey: the operation hands a key to a guest, so the room and the guest
// must be known.
func (p *plan) makesKey() bool {
	switch p.dec.Action {
	case Issue, Update, Reissue:
		return true
	}
	return false
}

// process decides about fetched reservations and carries the decisions
// out. Who is on the reservations, rooms and guests are fetched only where
// keys are issued or changed (or companions follow them), each in one
// request for the whole batch.
func (dk *Pipeline) process(ctx context.Context, rs []mews.Reservation, seen map[string]time.Time) {
	now := dk.now()
	plans := make([]plan, 0, len(rs))
	for i := range rs {
		r := &rs[i]
		rec, err := dk.load(r.ID)
		if err != nil {
			dk.log.Error().Err(err).Str(fieldReservation, r.ID).Msg("reading the digital key record; skipped")
			continue
		}
		p := plan{r: r, rec: rec, dec: Decide(rec.State, r, dk.policy, now), seen: now}
		if at, ok := seen[r.ID]; ok {
			p.seen = at
		}
		plans = append(plans, p)
	}
	whoErr := dk.findPeople(ctx, plans)
	var roomIDs, guestIDs []string
	for i := range plans {
		p := &plans[i]
		if p.makesKey() {
			roomIDs = append(roomIDs, p.dec.Next.Grant.Room)
		}
		p.guests = dk.guestsToFetch(p)
		guestIDs = append(guestIDs, p.guests...)
	}
	roomErr := dk.cacheRooms(ctx, roomIDs)
	guests, guestErr := dk.fetchGuests(ctx, guestIDs)
	for i := range plans {
		if ctx.Err() != nil {
			// Shutting down: start nothing new. The next start's catch-up
			// finds these again.
			return
		}
		p := &plans[i]
		if err := dk.missing(p, whoErr, roomErr, guestErr); err != nil {
			dk.log.Error().Err(err).Str(fieldReservation, p.r.ID).
				Msg("fetching the room or the guests for a digital key failed; will retry")
			dk.retryLater(p.r.ID, p.rec)
			continue
		}
		dk.carryOut(ctx, p, guests)
	}
}

// missing returns the errors of the fetches the plan needed.
func (dk *Pipeline) missing(p *plan, whoErr, roomErr, guestErr error) error {
	var errs []error
	if p.needsPeople(dk.withCompanions) && whoErr != nil {
		errs = append(errs, whoErr)
	}
	if p.makesKey() && roomErr != nil {
		errs = append(errs, roomErr)
	}
	if len(p.guests) > 0 && guestErr != nil {
		errs = append(errs, guestErr)
	}
	return errors.Join(errs...)
}

// carryOut runs the main guest's operation and then the companions',
// records in Mews what they made, and reports them.
func (dk *Pipeline) carryOut(ctx context.Context, p *plan, guests map[string]mews.Customer) {
	log := dk.log.With().Str(fieldReservation, p.r.ID).Str("number", p.r.Number).Logger()
	var outs []Outcome
	if out := dk.apply(ctx, p, guests[p.mainGuest()], log); out != nil {
		outs = append(outs, *out)
	}
	if !p.dec.Stale {
		outs = append(outs, dk.companions(ctx, p, guests, log)...)
	}
	if slices.ContainsFunc(outs, func(o Outcome) bool { return o.Err == nil }) {
		dk.settleOwed(ctx, p.r.ID, log)
	}
	if dk.onOutcome != nil {
		for _, o := range outs {
			dk.onOutcome(o)
		}
	}
}

// cacheRooms fetches the rooms and beds not cached yet, then the rooms of
// the beds among them (a bed's key opens its room's lock): at most two
// requests.
func (dk *Pipeline) cacheRooms(ctx context.Context, ids []string) error {
	for range 2 {
		var missing, parents []string
		for _, id := range ids {
			r, ok := dk.rooms[id]
			switch {
			case !ok && id != "" && !slices.Contains(missing, id):
				missing = append(missing, id)
			case r.ParentResourceID != "":
				parents = append(parents, r.ParentResourceID)
			}
		}
		if len(missing) > 0 {
			rooms, err := dk.api.Resources(ctx, missing)
			if err != nil {
				return fmt.Errorf("fetch rooms: %w", err)
			}
			for _, r := range rooms {
				dk.rooms[r.ID] = r
				if r.ParentResourceID != "" {
					parents = append(parents, r.ParentResourceID)
				}
			}
		}
		ids = parents
	}
	return nil
}

func (dk *Pipeline) fetchGuests(ctx context.Context, ids []string) (map[string]mews.Customer, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cs, err := dk.api.Customers(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("fetch guests: %w", err)
	}
	out := make(map[string]mews.Customer, len(cs))
	for _, c := range cs {
		out[c.ID] = c
	}
	return out, nil
}

// place is where a key for resource id lets its holder in: the lock, a
// room's name in Mews (what [rooms] maps), and the bed's name when the
// resource is a bed (it has a parent: its room). A resource Mews did not
// return (deleted) is named by its id.
func (dk *Pipeline) place(id string) (lock, bed string) {
	r, ok := dk.rooms[id]
	if !ok || r.Name == "" {
		return id, ""
	}
	if r.ParentResourceID == "" {
		return r.Name, ""
	}
	if room, ok := dk.rooms[r.ParentResourceID]; ok && room.Name != "" {
		return room.Name, r.Name
	}
	return r.ParentResourceID, r.Name
}
