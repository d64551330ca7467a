package digitalkeys

import (
	"context"
	"slices"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

const fieldCompanionship = "companionship_id"

// companions brings the companions' keys in line with the main guest's,
// after the main guest's operation: with companions on, each companion who
// can receive a key holds one for the main guest's room and dates, and
// nobody else does. It returns the operations run.
func (dk *Pipeline) companions(ctx context.Context, p *plan, guests map[string]mews.Customer, log zerolog.Logger) []Outcome {
	rec, err := dk.load(p.r.ID)
	if err != nil {
		log.Error().Err(err).Msg("reading the digital key record for the companions' keys")
		return nil
	}
	want, known := dk.wantedCompanions(p, &rec, guests)
	if !known {
		return nil
	}
	// The companions in Mews's order, then those who left.
	var order, left []string
	if p.who != nil {
		for _, c := range p.who.companions {
			order = append(order, c.ID)
		}
	}
	for id := range rec.Companions {
		if !slices.Contains(order, id) {
			left = append(left, id)
		}
	}
	slices.Sort(left)
	order = append(order, left...)
	var outs []Outcome
	failed := false
	for _, id := range order {
		if ctx.Err() != nil {
			return outs // shutting down: the next start looks again
		}
		var prev *Companion
		if c := rec.Companions[id]; c != nil {
			prev = &c.Companion
		}
		customer, wanted := want[id]
		act, why := DecideCompanion(prev, wanted, rec.Grant, dk.policy)
		if act == None {
			continue
		}
		clog := log.With().Str(fieldCompanionship, id).Str(fieldAction, string(act)).Logger()
		clog.Debug().Str("reason", why).Msg("companion's digital key")
		out, ok := dk.operateCompanion(ctx, p, &rec, id, customer, act, guests[customer], clog)
		if out != nil {
			outs = append(outs, *out)
		}
		failed = failed || !ok
	}
	dk.scheduleCompanions(p.r.ID, &rec, failed, log)
	return outs
}

// wantedCompanions returns, by companionship id, the companions who should
// hold a key (their customer ids), and false when that is not known
// because nobody asked Mews: their keys then stay as they are.
func (dk *Pipeline) wantedCompanions(p *plan, rec *record, guests map[string]mews.Customer) (map[string]string, bool) {
	if rec.Pending != "" {
		return nil, false // the main guest's operation did not finish
	}
	if rec.Status != Issued || !dk.withCompanions {
		return nil, true
	}
	if p.who == nil {
		return nil, false
	}
	want := map[string]string{}
	for _, c := range p.who.companions {
		if _, holds := rec.Companions[c.ID]; holds || reachable(guests[c.CustomerID]) {
			want[c.ID] = c.CustomerID
		}
	}
	return want, true
}

// operateCompanion runs one operation on a companion's key, journalled
// like the main guest's: pending before the encoder is called, the result
// after. ok is false after a failure that will be retried.
func (dk *Pipeline) operateCompanion(ctx context.Context, p *plan, rec *record, id, customer string, act Action,
	guest mews.Customer, log zerolog.Logger) (out *Outcome, ok bool) {
	prev := rec.Companions[id]
	var old companionRecord
	if prev != nil {
		old = *prev
	}
	c := old
	c.Pending = act
	if prev == nil {
		c.Customer = customer
	}
	if rec.Companions == nil {
		rec.Companions = map[string]*companionRecord{}
	}
	rec.Companions[id] = &c
	restore := func() {
		if prev == nil {
			delete(rec.Companions, id)
		} else {
			rec.Companions[id] = prev
		}
	}
	if err := dk.save(p.r.ID, rec); err != nil {
		log.Error().Err(err).Msg("cannot journal the companion's digital key operation; not calling the encoder")
		restore()
		return nil, false
	}

	grant := rec.Grant
	newReq := dk.request(p.r, act, grant, rec.RoomName, rec.BedName, guest, id)
	oldReq := dk.request(p.r, act, old.Grant, old.RoomName, old.BedName, guest, id)
	if act != Revoke && unnamed(guest) {
		log.Warn().Msg("the companion's customer record has no name; the key carries the reservation number")
	}
	res, o := dk.run(ctx, p, act, newReq, oldReq)
	switch {
	case o.Err != nil && (act == Revoke || !keys.MaybeCut(o.Err)):
		log.Warn().Err(o.Err).Msg("companion's digital key operation failed; will retry")
		restore()
		ok = false
	case o.Err != nil:
		log.Error().Err(o.Err).Msg("companion's digital key operation failed and may have taken effect; the key is replaced at the next look")
		c.Pending, c.Uncertain, c.Grant = "", true, grant
		c.RoomName, c.BedName = rec.RoomName, rec.BedName
		ok = true // nothing retries into a second key
	case act == Revoke:
		dk.owe(&c.keySet, &rec.Gone, act, old.Grant, grant, nil, keyTag{companionship: id})
		delete(rec.Companions, id)
		ok = true
	default:
		c.Companion = Companion{Grant: grant}
		c.RoomName, c.BedName = rec.RoomName, rec.BedName
		dk.owe(&c.keySet, &rec.Gone, act, old.Grant, grant, keysAfter(act, old.Keys, res), keyTag{companionship: id, bed: rec.BedName != ""})
		ok = true
	}
	if err := dk.save(p.r.ID, rec); err != nil {
		log.Error().Err(err).Msg("cannot journal the companion's digital key result")
	}
	if o.Err == nil {
		dk.logDone(log, o)
	}
	return &o, ok
}

// scheduleCompanions backs off after failed companion operations (the
// reservation is looked at again later) and forgets the backoff once
// they all succeed.
func (dk *Pipeline) scheduleCompanions(id string, rec *record, failed bool, log zerolog.Logger) {
	switch {
	case failed:
		rec.CompanionAttempts++
		at := dk.now().Add(dk.retry.After(rec.CompanionAttempts))
		if rec.RetryAt.IsZero() || at.Before(rec.RetryAt) {
			rec.RetryAt = at
		}
	case rec.CompanionAttempts > 0:
		rec.CompanionAttempts = 0
	default:
		return
	}
	if err := dk.save(id, rec); err != nil {
		log.Error().Err(err).Msg("recording the companions' digital key retry")
	}
}
