package digitalkeys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// apply carries out the decision about the main guest's key and returns
// the operation run, if any. The order makes a crash safe: the journal
// records the operation as pending before the encoder is called and the
// result after, so a restart finds an interrupted operation and never
// silently issues a second key.
func (dk *Pipeline) apply(ctx context.Context, p *plan, guest mews.Customer, log zerolog.Logger) *Outcome {
	r, act := p.r, p.dec.Action
	if act == None {
		log.Debug().Str(fieldState, string(r.State)).Str("reason", p.dec.Reason).Msg("digital key: nothing to do")
		if p.dec.Stale && !p.rec.RetryAt.IsZero() {
			// An old version says nothing about the newer one the retry
			// is for: look again later.
			dk.retryLater(r.ID, p.rec)
			return nil
		}
		next := p.rec
		next.State = p.dec.Next
		if !p.dec.Stale {
			// A fresh decision replaces the one a retry was for: its
			// retry would fetch the reservation again at once, for ever.
			// An owed write-back keeps its own schedule.
			next.RetryAt, next.Attempts = time.Time{}, 0
		}
		if !next.worthKeeping() && !p.rec.worthKeeping() {
			// Most reservations never need a key: no journal write for them.
			return nil
		}
		if err := dk.save(r.ID, &next); err != nil {
			log.Error().Err(err).Msg("recording the digital key state")
		}
		return nil
	}
	log = log.With().Str(fieldAction, string(act)).Logger()

	marked := p.rec
	marked.Pending, marked.Done, marked.Seen = act, p.dec.Next.Done, p.dec.Next.Seen
	marked.WakeAt, marked.RetryAt = time.Time{}, time.Time{}
	if err := dk.save(r.ID, &marked); err != nil {
		log.Error().Err(err).Msg("cannot journal the digital key operation; not calling the encoder")
		return nil
	}

	grant := p.dec.Next.Grant
	lock, bed := dk.place(grant.Room)
	newReq := dk.request(r, act, grant, lock, bed, guest, "")
	oldReq := dk.request(r, act, p.rec.Grant, p.rec.RoomName, p.rec.BedName, guest, "")
	if p.makesKey() {
		log.Debug().Str("guest", guest.LastName).Str("email", guest.Email).Str("phone", guest.Phone).Msg("digital key for")
		if unnamed(guest) {
			log.Warn().Msg("no guest with a name on the reservation; the key carries the reservation number as the name")
		}
	}
	res, out := dk.run(ctx, p, act, newReq, oldReq)
	if out.Err != nil {
		dk.failed(r.ID, p, act, out.Err, log)
		return &out
	}
	next := p.rec
	next.State, next.Number, next.RetryAt, next.Attempts = p.dec.Next, r.Number, time.Time{}, 0
	if act != Revoke {
		next.RoomName, next.BedName, next.Guest = lock, bed, p.mainGuest()
	}
	// The write-back owed is journalled with the result, so neither a
	// failure nor a crash loses it.
	dk.owe(&next.keySet, &next.Gone, act, p.rec.Grant, grant, keysAfter(act, p.rec.Keys, res), keyTag{bed: bed != ""})
	next.WriteBackAt, next.WriteBackAttempts = time.Time{}, 0
	if err := dk.save(r.ID, &next); err != nil {
		// The key exists but the journal cannot say so; the pending mark
		// left behind makes the next start check this reservation.
		log.Error().Err(err).Msg("cannot journal the digital key result")
		return &out
	}
	dk.logDone(log, out)
	return &out
}

// run calls the encoder for one operation and describes it.
func (dk *Pipeline) run(ctx context.Context, p *plan, act Action, newReq, oldReq keys.Request) (keys.Result, Outcome) {
	start := dk.now()
	res, err := dk.operate(ctx, act, newReq, oldReq)
	dk.observe(dk.now().Sub(start))
	out := Outcome{ReservationID: p.r.ID, ReservationNumber: p.r.Number, CompanionshipID: newReq.CompanionshipID,
		Action: act, Room: newReq.LockIDs[0], ValidFrom: newReq.ValidFrom, ValidUntil: newReq.ValidUntil,
		Keys: len(res.Keys), Err: err, Latency: start.Sub(p.seen)}
	if act == Revoke {
		out.Room, out.ValidFrom, out.ValidUntil = oldReq.LockIDs[0], oldReq.ValidFrom, oldReq.ValidUntil
	}
	return res, out
}

func (dk *Pipeline) logDone(log zerolog.Logger, out Outcome) {
	log.Info().Str("room", out.Room).Time("valid_until", out.ValidUntil).Int("keys", out.Keys).
		Int64(fieldLatencyMS, out.Latency.Milliseconds()).Msg("digital key " + doneVerb(out.Action))
}

// failed records a failed operation. A failure that certainly changed
// nothing is retried with backoff, and so is every failed revoke (revoking
// twice is harmless; a key that keeps working is not). Otherwise a key may
// exist that we do not know: the reservation is marked uncertain and its
// next change replaces the key, but nothing retries into a second key.
func (dk *Pipeline) failed(id string, p *plan, act Action, err error, log zerolog.Logger) {
	if act == Revoke || !keys.MaybeCut(err) {
		log.Warn().Err(err).Msg("digital key operation failed; will retry")
		dk.retryLater(id, p.rec)
		return
	}
	log.Error().Err(err).Msg("digital key operation failed and may have taken effect; the key is replaced at the reservation's next change")
	rec := p.rec
	rec.Status, rec.Uncertain, rec.Pending = Issued, true, ""
	rec.RetryAt, rec.Attempts = time.Time{}, 0 // a retry of an earlier failure would retry this one
	rec.Done, rec.Seen = p.dec.Next.Done, p.dec.Next.Seen
	rec.Grant = p.dec.Next.Grant
	rec.RoomName, rec.BedName = dk.place(rec.Grant.Room)
	if err := dk.save(id, &rec); err != nil {
		log.Error().Err(err).Msg("recording the failed digital key operation")
	}
}

// request builds the encoder's request for the key of the main guest
// (companionship "") or of a companion: g opens lock (a room's name in
// Mews; bed names the bed when the reservation has one).
func (dk *Pipeline) request(r *mews.Reservation, act Action, g Grant, lock, bed string, guest mews.Customer, companionship string) keys.Request {
	if lock == "" {
		lock = g.Room
	}
	holder := keys.Guest{FirstName: guest.FirstName, LastName: guest.LastName, Email: guest.Email, Phone: guest.Phone}
	if act != Revoke && unnamed(guest) {
		// A key never goes out without a name. (A revoke goes out with
		// the guest unknown: it was not fetched.)
		holder.LastName = r.Number
	}
	version := r.UpdatedUtc.UTC().Format(time.RFC3339Nano)
	req := keys.Request{
		IdempotencyKey:    fmt.Sprintf("%s/%s/%s", r.ID, act, version),
		Encoder:           dk.encoder,
		Kind:              keys.KindDigital,
		NewKey:            true,
		ReservationID:     r.ID,
		ReservationNumber: r.Number,
		Rooms:             []string{dk.lockRoom(lock)},
		LockIDs:           []string{lock},
		KeyCount:          1,
		ValidFrom:         g.From,
		ValidUntil:        g.Until,
		Guest:             holder,
		Bed:               bed,
	}
	if companionship != "" {
		req.IdempotencyKey = fmt.Sprintf("%s/%s/%s/%s", r.ID, companionship, act, version)
		req.Companion, req.CompanionshipID, req.MainReservationNumber = true, companionship, r.Number
	}
	return req
}

// operate calls the encoder. An encoder that turns out not to update in
// place gets a revoke and a new key instead.
func (dk *Pipeline) operate(ctx context.Context, act Action, newReq, oldReq keys.Request) (keys.Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dk.timeout)
	defer cancel()
	revoker := dk.enc.(keys.Revoker) // checked by openDigital
	switch act {
	case Issue:
		return dk.enc.Issue(ctx, newReq)
	case Revoke:
		return revoker.Revoke(ctx, oldReq)
	case Update:
		if u, ok := dk.enc.(keys.Updater); ok {
			res, err := u.Update(ctx, newReq)
			if !errors.Is(err, keys.ErrUnsupported) {
				return res, err
			}
		}
	}
	// Reissue, or an update the encoder cannot do.
	if _, err := revoker.Revoke(ctx, oldReq); err != nil {
		return keys.Result{}, fmt.Errorf("revoke the old key: %w", err)
	}
	return dk.enc.Issue(ctx, newReq)
}

func newKeys(ks []keys.Key) []storedKey {
	out := make([]storedKey, len(ks))
	for i, k := range ks {
		out[i] = storedKey{ID: k.ID, Type: k.Type, Value: k.Value}
	}
	return out
}

func doneVerb(act Action) string {
	switch act {
	case Issue:
		return "issued"
	case Update:
		return "updated"
	case Revoke:
		return "revoked"
	default:
		return "reissued"
	}
}
