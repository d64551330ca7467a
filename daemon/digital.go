package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/digitalkeys"
	"github.com/mews-keyd/mews-keyd/daemon/hints"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Digital keys: Reservation events feed a second pipeline that issues,
// changes and revokes keys as guests check in, move and leave. One goroutine
// (runDigital) owns it; the decisions are digitalkeys.Decide, this file
// fetches what they need, journals and calls the encoder.

const (
	fieldReservation = "reservation_id"
	fieldAction      = "action"

	// digitalPrefix keys one journal meta entry per reservation.
	digitalPrefix = "digital/"
	// digitalWatermarkKey holds the newest UpdatedUtc a catch-up has seen,
	// in Mews's clock. It must not start with digitalPrefix.
	digitalWatermarkKey = "digital-watermark"
	// firstCatchUp is how far back the very first catch-up looks.
	firstCatchUp = 24 * time.Hour
	// catchUpOverlap re-reads a little before the watermark: a reservation
	// saved just before it may become visible just after the query.
	catchUpOverlap = 5 * time.Minute
	// catchUpAhead stretches the window past our own clock, which may be
	// behind Mews's.
	catchUpAhead = time.Hour
	// maxUpdatedWindow stays under Mews's limit of three months for one
	// UpdatedUtc interval, whatever the months.
	maxUpdatedWindow = 89 * 24 * time.Hour
	// arrivalsBehind reaches back for Confirmed reservations whose
	// scheduled start has just passed: a guest late for check-in still
	// gets the key issued before arrival.
	arrivalsBehind = time.Hour
	// roomCacheLifetime bounds how stale a cached room may get when a
	// Resource event is missed.
	roomCacheLifetime = time.Hour
)

// DigitalOutcome describes one digital key operation.
type DigitalOutcome struct {
	ReservationID     string
	ReservationNumber string
	Action            digitalkeys.Action
	// Room is the room name the key opens (the old room for a revoke).
	Room       string
	ValidFrom  time.Time
	ValidUntil time.Time
	// Keys is how many keys the encoder returned.
	Keys int
	// Err is nil when the operation succeeded.
	Err error
	// Latency is from the event (or catch-up) that announced the change
	// to the encoder being called.
	Latency time.Duration
}

// digitalKeys is the pipeline's configuration and the loop's own state.
type digitalKeys struct {
	encoder   string
	enc       keys.Encoder
	timeout   time.Duration
	policy    digitalkeys.Policy
	writeBack bool
	log       zerolog.Logger

	hints     *hints.Set // reservation ids from events
	roomHints *hints.Set // resource ids from events: cached rooms to forget
	catchUp   chan struct{}

	// Touched only by runDigital.
	rooms map[string]mews.Resource
	wake  map[string]time.Time // reservation id -> when to fetch it again
	owed  map[string]time.Time // reservation id -> when to retry its write-back
	// fetchFailures counts failed fetches in a row, for their backoff.
	fetchFailures int
}

// digitalRecord is the journal entry of one reservation.
type digitalRecord struct {
	digitalkeys.State
	Number   string       `json:"number,omitempty"`
	RoomName string       `json:"room_name,omitempty"`
	Keys     []digitalKey `json:"keys,omitempty"`
	// RetryAt is set after a failure that certainly changed nothing;
	// Attempts counts such failures in a row, for their backoff. Both
	// belong to the failed decision: the next decision that needs no
	// operation, and every success, clears them.
	RetryAt  time.Time `json:"retry_at"`
	Attempts int       `json:"attempts,omitempty"`
	// Gone are keys Mews must stop showing; ValidityOwed says the tokens
	// of Keys still carry old dates. See digital_writeback.go.
	Gone              []digitalKey `json:"gone,omitempty"`
	ValidityOwed      bool         `json:"validity_owed,omitempty"`
	WriteBackAt       time.Time    `json:"write_back_at"`
	WriteBackAttempts int          `json:"write_back_attempts,omitempty"`
}

// digitalKey is a key as the encoder returned it, with the id of its record
// in Mews (resourceAccessTokens) once written back.
type digitalKey struct {
	ID    string       `json:"id,omitempty"`
	Type  keys.KeyType `json:"type"`
	Value string       `json:"value"`
	Token string       `json:"token,omitempty"`
	// Sent: an add of this key may have reached Mews, so look before
	// adding it again.
	Sent bool `json:"sent,omitempty"`
	// Room is the resource id it was recorded for, to recognise it.
	Room string `json:"room,omitempty"`
}

// worthKeeping: anything else says no more than a missing entry does.
func (r *digitalRecord) worthKeeping() bool {
	return r.Status != digitalkeys.NotIssued || r.Pending != "" || !r.WakeAt.IsZero() ||
		!r.RetryAt.IsZero() || len(r.Keys) > 0 || len(r.Gone) > 0 || r.ValidityOwed
}

// openDigital prepares the pipeline when [digital_keys] is enabled.
func (d *Daemon) openDigital() error {
	dc := d.cfg.DigitalKeys
	if !dc.Enabled {
		return nil
	}
	st := d.route.Load().station(dc.Encoder)
	if st == nil {
		return fmt.Errorf("digital_keys: no encoder named %q", dc.Encoder)
	}
	if _, ok := st.enc.(keys.Revoker); !ok {
		return fmt.Errorf("digital_keys: encoder %q cannot revoke keys, which check-out needs", dc.Encoder)
	}
	_, canUpdate := st.enc.(keys.Updater)
	d.dk = &digitalKeys{
		encoder:   dc.Encoder,
		enc:       st.enc,
		timeout:   st.timeout,
		policy:    digitalkeys.Policy{IssueBeforeArrival: dc.IssueBeforeArrival.D(), CanUpdate: canUpdate},
		writeBack: dc.WriteBack,
		log:       d.log.With().Str("pipeline", "digital").Str(fieldEncoder, dc.Encoder).Logger(),
		hints:     hints.New(),
		roomHints: hints.New(),
		catchUp:   make(chan struct{}, 1),
		rooms:     map[string]mews.Resource{},
		wake:      map[string]time.Time{},
		owed:      map[string]time.Time{},
	}
	return nil
}

// digitalEvent takes Reservation and Resource events from the WebSocket
// reader. Like command events they are hints: the reservation is fetched.
func (d *Daemon) digitalEvent(ev mews.Event, at time.Time) {
	switch {
	case d.dk == nil:
		d.log.Debug().Str("type", string(ev.Type)).Str("id", ev.ID).Msg("event ignored: digital keys are off")
	case ev.Type == mews.EventReservation:
		d.dk.hints.Add(ev.ID, at)
	case ev.Type == mews.EventResource:
		d.dk.roomHints.Add(ev.ID, at)
	}
}

// digitalConnected asks for a catch-up after every (re)connection.
func (d *Daemon) digitalConnected() {
	if d.dk == nil {
		return
	}
	select {
	case d.dk.catchUp <- struct{}{}:
	default:
	}
}

// runDigital is the pipeline's one goroutine. Encoder calls inside it are
// not cut short by ctx (their own timeout bounds them), so a shutdown never
// leaves a key half issued.
func (d *Daemon) runDigital(ctx context.Context) {
	// A guest uses a digital key later; a receptionist with a guest at the
	// desk is waiting for a key card now. When the request budget is
	// short, key commands go first.
	ctx = mews.WithLowPriority(ctx)
	dk := d.dk
	d.loadDigitalSchedule()
	reconcile := time.NewTicker(d.cfg.Mews.ReconcileInterval.D())
	defer reconcile.Stop()
	refresh := time.NewTicker(roomCacheLifetime)
	defer refresh.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.armDigitalTimer(timer)
		select {
		case <-ctx.Done():
			return
		case <-dk.hints.Ready():
			ids, seen := dk.hints.Take(maxBatch)
			d.digitalFetch(ctx, ids, seen)
		case <-dk.roomHints.Ready():
			ids, _ := dk.roomHints.Take(maxBatch)
			for _, id := range ids {
				delete(dk.rooms, id)
			}
		case <-dk.catchUp:
			d.digitalCatchUp(ctx)
		case <-reconcile.C:
			d.digitalCatchUp(ctx)
		case <-timer.C:
			d.digitalWake(ctx)
		case <-refresh.C:
			clear(dk.rooms)
			d.pruneDigital()
		}
	}
}

func (d *Daemon) armDigitalTimer(timer *time.Timer) {
	var first time.Time
	for _, at := range d.dk.wake {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	for _, at := range d.dk.owed {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		timer.Stop()
		return
	}
	timer.Reset(max(0, first.Sub(d.now())))
}

// digitalWake retries the write-backs whose time has come, and fetches the
// reservations whose time has come: a retry, an issue_before_arrival window
// opening, an operation interrupted by a crash.
func (d *Daemon) digitalWake(ctx context.Context) {
	now := d.now()
	for id, at := range d.dk.owed {
		if at.After(now) || ctx.Err() != nil {
			continue
		}
		delete(d.dk.owed, id)
		rec, err := d.loadDigital(id)
		if err != nil {
			d.dk.log.Error().Err(err).Str(fieldReservation, id).Msg("reading the digital key record")
			continue
		}
		if d.owesWriteBack(&rec) {
			d.settleWriteBack(ctx, id, &rec, d.dk.log.With().Str(fieldReservation, id).Logger())
		}
	}
	var ids []string
	seen := map[string]time.Time{}
	for id, at := range d.dk.wake {
		if !at.After(now) {
			ids = append(ids, id)
			seen[id] = now
			delete(d.dk.wake, id)
		}
	}
	d.digitalFetch(ctx, ids, seen)
}

// loadDigitalSchedule finds, after a start, the reservations the journal
// says need another look.
func (d *Daemon) loadDigitalSchedule() {
	entries, err := d.journal.MetaWithPrefix(digitalPrefix)
	if err != nil {
		d.dk.log.Error().Err(err).Msg("reading digital key records; interrupted operations are found at the next change")
		return
	}
	now := d.now()
	for key, raw := range entries {
		var rec digitalRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			d.dk.log.Error().Err(err).Str("key", key).Msg("unreadable digital key record")
			continue
		}
		id := key[len(digitalPrefix):]
		switch {
		case rec.Pending != "":
			d.dk.log.Warn().Str(fieldReservation, id).Str(fieldAction, string(rec.Pending)).
				Msg("a digital key operation was interrupted by a restart; checking the reservation")
			d.scheduleDigital(id, &rec)
			d.dk.wake[id] = now
		default:
			d.scheduleDigital(id, &rec)
		}
		if d.owesWriteBack(&rec) {
			// A restart may follow a fix of what made Mews refuse: try at
			// once (the backoff resumes where it was if it did not). The
			// new time is journalled, so looking at the reservation again
			// before the retry does not push it back.
			rec.WriteBackAt = now
			if err := d.saveDigital(id, &rec); err != nil {
				d.dk.log.Error().Err(err).Str(fieldReservation, id).Msg("scheduling the owed write-back")
			}
		}
	}
}

func (d *Daemon) scheduleDigital(id string, rec *digitalRecord) {
	if d.owesWriteBack(rec) {
		d.dk.owed[id] = rec.WriteBackAt
	} else {
		delete(d.dk.owed, id)
	}
	at := rec.WakeAt
	if !rec.RetryAt.IsZero() && (at.IsZero() || rec.RetryAt.Before(at)) {
		at = rec.RetryAt
	}
	if at.IsZero() {
		delete(d.dk.wake, id)
		return
	}
	d.dk.wake[id] = at
}

// pruneDigital forgets reservations whose keys were revoked longer ago than
// the journal keeps command history: no late event can matter any more.
func (d *Daemon) pruneDigital() {
	entries, err := d.journal.MetaWithPrefix(digitalPrefix)
	if err != nil {
		d.dk.log.Warn().Err(err).Msg("pruning digital key records")
		return
	}
	cutoff := d.now().Add(-d.cfg.Daemon.History.D())
	for key, raw := range entries {
		var rec digitalRecord
		if json.Unmarshal(raw, &rec) != nil {
			continue
		}
		if rec.Status == digitalkeys.Revoked && len(rec.Keys) == 0 && len(rec.Gone) == 0 && rec.Seen.Before(cutoff) {
			if err := d.journal.DeleteMeta(key); err != nil {
				d.dk.log.Warn().Err(err).Msg("pruning digital key records")
				return
			}
		}
	}
}

// digitalFetch fetches announced reservations in one request and decides
// about each. No ids is nothing to fetch (to Mews, no ids would be no
// filter: every reservation of the property).
func (d *Daemon) digitalFetch(ctx context.Context, ids []string, seen map[string]time.Time) {
	if len(ids) == 0 {
		return
	}
	rs, err := d.api.Reservations(ctx, mews.ReservationFilter{IDs: ids})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		d.dk.fetchFailures++
		retry := d.now().Add(d.retry.After(d.dk.fetchFailures))
		d.dk.log.Error().Err(err).Int("reservations", len(ids)).Time("retry_at", retry).Msg("fetching reservations failed; will retry")
		for _, id := range ids {
			d.dk.wake[id] = retry
		}
		return
	}
	d.dk.fetchFailures = 0
	d.digitalProcess(ctx, rs, seen)
}

// digitalCatchUp runs every reservation changed since the watermark through
// the decisions, so that a check-out during an outage still revokes.
func (d *Daemon) digitalCatchUp(ctx context.Context) {
	start := d.now()
	mark, err := d.digitalWatermark()
	if err != nil {
		d.dk.log.Error().Err(err).Msg("reading the digital key watermark")
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
		rs, err := d.api.Reservations(ctx, mews.ReservationFilter{UpdatedFrom: ws, UpdatedTo: we})
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				d.dk.log.Error().Err(err).Msg("digital key catch-up failed; retrying at the next poll")
			}
			return
		}
		all = append(all, rs...)
	}
	d.dk.log.Debug().Int("reservations", len(all)).Time("since", from).Msg("digital key catch-up")
	d.digitalProcess(ctx, append(slices.Clone(all), d.digitalArrivals(ctx, start, all)...), nil)
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
	if err := d.journal.SetMeta(digitalWatermarkKey, []byte(newest.UTC().Format(time.RFC3339Nano))); err != nil {
		d.dk.log.Error().Err(err).Msg("recording the digital key watermark")
	}
}

// digitalArrivals returns the Confirmed reservations whose
// issue_before_arrival window opens before the next poll, except those the
// catch-up already has: nothing about them may have changed for days, so no
// event or catch-up would bring them. Deciding about one not yet due
// records when its window opens, and the pipeline's timer wakes it then.
func (d *Daemon) digitalArrivals(ctx context.Context, now time.Time, have []mews.Reservation) []mews.Reservation {
	ahead := d.dk.policy.IssueBeforeArrival
	if ahead <= 0 {
		return nil
	}
	to := minTime(now.Add(ahead+d.cfg.Mews.ReconcileInterval.D()), now.Add(maxUpdatedWindow))
	rs, err := d.api.Reservations(ctx, mews.ReservationFilter{
		States:             []mews.ReservationState{mews.ReservationConfirmed},
		ScheduledStartFrom: now.Add(-arrivalsBehind), ScheduledStartTo: to,
	})
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			d.dk.log.Error().Err(err).Msg("fetching the arrivals for digital keys failed; retrying at the next poll")
		}
		return nil
	}
	seen := make(map[string]bool, len(have))
	for i := range have {
		seen[have[i].ID] = true
	}
	rs = slices.DeleteFunc(rs, func(r mews.Reservation) bool { return seen[r.ID] })
	d.dk.log.Debug().Int("reservations", len(rs)).Time("until", to).Msg("digital key arrivals")
	return rs
}

func (d *Daemon) digitalWatermark() (time.Time, error) {
	raw, err := d.journal.GetMeta(digitalWatermarkKey)
	if err != nil || raw == nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, string(raw))
	if err != nil {
		return time.Time{}, fmt.Errorf("digital key watermark %q: %w", raw, err)
	}
	return t, nil
}

// plan is one reservation's decision with what carrying it out needs.
type plan struct {
	r    *mews.Reservation
	rec  digitalRecord
	dec  digitalkeys.Decision
	seen time.Time
}

// makesKey: the operation hands a key to a guest, so the room and the guest
// must be known.
func (p *plan) makesKey() bool {
	switch p.dec.Action {
	case digitalkeys.Issue, digitalkeys.Update, digitalkeys.Reissue:
		return true
	}
	return false
}

// digitalProcess decides about fetched reservations and carries the
// decisions out. Rooms and guests are fetched only for the keys being
// issued or changed, each in one request for the whole batch.
func (d *Daemon) digitalProcess(ctx context.Context, rs []mews.Reservation, seen map[string]time.Time) {
	now := d.now()
	plans := make([]plan, 0, len(rs))
	var roomIDs, guestIDs []string
	for i := range rs {
		r := &rs[i]
		rec, err := d.loadDigital(r.ID)
		if err != nil {
			d.dk.log.Error().Err(err).Str(fieldReservation, r.ID).Msg("reading the digital key record; skipped")
			continue
		}
		p := plan{r: r, rec: rec, dec: digitalkeys.Decide(rec.State, r, d.dk.policy, now), seen: now}
		if at, ok := seen[r.ID]; ok {
			p.seen = at
		}
		if p.makesKey() {
			if _, ok := d.dk.rooms[p.dec.Next.Grant.Room]; !ok {
				roomIDs = append(roomIDs, p.dec.Next.Grant.Room)
			}
			if r.AccountID != "" {
				guestIDs = append(guestIDs, r.AccountID)
			}
		}
		plans = append(plans, p)
	}
	roomErr := d.cacheRooms(ctx, roomIDs)
	guests, guestErr := d.fetchGuests(ctx, guestIDs)
	for i := range plans {
		if ctx.Err() != nil {
			// Shutting down: start nothing new. The next start's catch-up
			// finds these again.
			return
		}
		p := &plans[i]
		if p.makesKey() && (roomErr != nil || guestErr != nil) {
			d.dk.log.Error().Err(errors.Join(roomErr, guestErr)).Str(fieldReservation, p.r.ID).
				Msg("fetching the room or guest for a digital key failed; will retry")
			d.retryDigital(p.r.ID, p.rec)
			continue
		}
		d.applyDigital(ctx, p, guests[p.r.AccountID])
	}
}

func (d *Daemon) cacheRooms(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rooms, err := d.api.Resources(ctx, ids)
	if err != nil {
		return fmt.Errorf("fetch rooms: %w", err)
	}
	for _, r := range rooms {
		d.dk.rooms[r.ID] = r
	}
	return nil
}

func (d *Daemon) fetchGuests(ctx context.Context, ids []string) (map[string]mews.Customer, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cs, err := d.api.Customers(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("fetch guests: %w", err)
	}
	out := make(map[string]mews.Customer, len(cs))
	for _, c := range cs {
		out[c.ID] = c
	}
	return out, nil
}

// roomName is the room's name in Mews (what [rooms] maps), or its id when
// Mews did not return it (deleted or inactive).
func (d *Daemon) roomName(id string) string {
	if r, ok := d.dk.rooms[id]; ok && r.Name != "" {
		return r.Name
	}
	return id
}

func (d *Daemon) loadDigital(id string) (digitalRecord, error) {
	var rec digitalRecord
	raw, err := d.journal.GetMeta(digitalPrefix + id)
	if err != nil || raw == nil {
		return rec, err
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, fmt.Errorf("digital key record of %s: %w", id, err)
	}
	return rec, nil
}

// saveDigital writes the record (or removes it when it says nothing) and
// schedules its next look. It is on disk when it returns nil.
func (d *Daemon) saveDigital(id string, rec *digitalRecord) error {
	d.scheduleDigital(id, rec)
	if !rec.worthKeeping() {
		return d.journal.DeleteMeta(digitalPrefix + id)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("digital key record of %s: %w", id, err)
	}
	return d.journal.SetMeta(digitalPrefix+id, raw)
}

// retryDigital schedules another look after a failure that changed nothing.
func (d *Daemon) retryDigital(id string, rec digitalRecord) {
	rec.Attempts++
	rec.RetryAt = d.now().Add(d.retry.After(rec.Attempts))
	if err := d.saveDigital(id, &rec); err != nil {
		d.dk.log.Error().Err(err).Str(fieldReservation, id).Msg("recording the digital key retry")
	}
}

// applyDigital carries out one decision. The order makes a crash safe: the
// journal records the operation as pending before the encoder is called and
// the result after, so a restart finds an interrupted operation and never
// silently issues a second key.
func (d *Daemon) applyDigital(ctx context.Context, p *plan, guest mews.Customer) {
	r, act := p.r, p.dec.Action
	log := d.dk.log.With().Str(fieldReservation, r.ID).Str("number", r.Number).Logger()
	if act == digitalkeys.None {
		log.Debug().Str(fieldState, string(r.State)).Str("reason", p.dec.Reason).Msg("digital key: nothing to do")
		if p.dec.Stale && !p.rec.RetryAt.IsZero() {
			// An old version says nothing about the newer one the retry
			// is for: look again later.
			d.retryDigital(r.ID, p.rec)
			return
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
			return
		}
		if err := d.saveDigital(r.ID, &next); err != nil {
			log.Error().Err(err).Msg("recording the digital key state")
		}
		return
	}
	log = log.With().Str(fieldAction, string(act)).Logger()

	marked := p.rec
	marked.Pending, marked.Done, marked.Seen = act, p.dec.Next.Done, p.dec.Next.Seen
	marked.WakeAt, marked.RetryAt = time.Time{}, time.Time{}
	if err := d.saveDigital(r.ID, &marked); err != nil {
		log.Error().Err(err).Msg("cannot journal the digital key operation; not calling the encoder")
		return
	}

	grant := p.dec.Next.Grant
	newReq := d.digitalRequest(r, act, grant, d.roomName(grant.Room), guest)
	oldReq := d.digitalRequest(r, act, p.rec.Grant, p.rec.RoomName, guest)
	if p.makesKey() {
		log.Debug().Str("guest", guest.LastName).Str("email", guest.Email).Str("phone", guest.Phone).Msg("digital key for")
	}
	start := d.now()
	res, err := d.digitalOp(ctx, act, newReq, oldReq)
	took := d.now().Sub(start)
	d.metrics.ObserveEncode(d.dk.encoder, took)

	out := DigitalOutcome{ReservationID: r.ID, ReservationNumber: r.Number, Action: act,
		Room: newReq.LockIDs[0], ValidFrom: grant.From, ValidUntil: grant.Until,
		Keys: len(res.Keys), Err: err, Latency: start.Sub(p.seen)}
	if act == digitalkeys.Revoke {
		out.Room, out.ValidFrom, out.ValidUntil = oldReq.LockIDs[0], p.rec.Grant.From, p.rec.Grant.Until
	}
	defer func() {
		if d.deps.OnDigitalKey != nil {
			d.deps.OnDigitalKey(out)
		}
	}()

	if err != nil {
		d.digitalFailed(r.ID, p, act, err, log)
		return
	}
	next := p.rec
	next.State, next.Number, next.RetryAt, next.Attempts = p.dec.Next, r.Number, time.Time{}, 0
	cur := p.rec.Keys
	switch act {
	case digitalkeys.Revoke:
		cur = nil
	default:
		next.RoomName = newReq.LockIDs[0]
		if len(res.Keys) > 0 || act != digitalkeys.Update {
			cur = newKeys(res.Keys)
		}
	}
	// The write-back owed is journalled with the result, so neither a
	// failure nor a crash loses it.
	d.owe(&next, act, p.rec.Grant, grant, p.rec.Keys, cur)
	next.WriteBackAt, next.WriteBackAttempts = time.Time{}, 0
	if err := d.saveDigital(r.ID, &next); err != nil {
		// The key exists but the journal cannot say so; the pending mark
		// left behind makes the next start check this reservation.
		log.Error().Err(err).Msg("cannot journal the digital key result")
		return
	}
	log.Info().Str("room", out.Room).Time("valid_until", out.ValidUntil).Int("keys", len(res.Keys)).
		Int64(fieldLatencyMS, out.Latency.Milliseconds()).Msg("digital key " + doneVerb(act))
	if d.owesWriteBack(&next) {
		d.settleWriteBack(ctx, r.ID, &next, log)
	}
}

// digitalFailed records a failed operation. A failure that certainly changed
// nothing is retried with backoff, and so is every failed revoke (revoking
// twice is harmless; a key that keeps working is not). Otherwise a key may
// exist that we do not know: the reservation is marked uncertain and its
// next change replaces the key, but nothing retries into a second key.
func (d *Daemon) digitalFailed(id string, p *plan, act digitalkeys.Action, err error, log zerolog.Logger) {
	if act == digitalkeys.Revoke || !keys.MaybeCut(err) {
		log.Warn().Err(err).Msg("digital key operation failed; will retry")
		d.retryDigital(id, p.rec)
		return
	}
	log.Error().Err(err).Msg("digital key operation failed and may have taken effect; the key is replaced at the reservation's next change")
	rec := p.rec
	rec.Status, rec.Uncertain, rec.Pending = digitalkeys.Issued, true, ""
	rec.RetryAt, rec.Attempts = time.Time{}, 0 // a retry of an earlier failure would retry this one
	rec.Done, rec.Seen = p.dec.Next.Done, p.dec.Next.Seen
	rec.Grant = p.dec.Next.Grant
	rec.RoomName = d.roomName(rec.Grant.Room)
	if err := d.saveDigital(id, &rec); err != nil {
		log.Error().Err(err).Msg("recording the failed digital key operation")
	}
}

func (d *Daemon) digitalRequest(r *mews.Reservation, act digitalkeys.Action, g digitalkeys.Grant, roomName string, guest mews.Customer) keys.Request {
	if roomName == "" {
		roomName = g.Room
	}
	return keys.Request{
		IdempotencyKey:    fmt.Sprintf("%s/%s/%s", r.ID, act, r.UpdatedUtc.UTC().Format(time.RFC3339Nano)),
		Encoder:           d.dk.encoder,
		Kind:              keys.KindDigital,
		NewKey:            true,
		ReservationID:     r.ID,
		ReservationNumber: r.Number,
		Rooms:             []string{mapRoom(d.route.Load().rooms, roomName)},
		LockIDs:           []string{roomName},
		KeyCount:          1,
		ValidFrom:         g.From,
		ValidUntil:        g.Until,
		Guest: keys.Guest{
			FirstName: guest.FirstName,
			LastName:  guest.LastName,
			Email:     guest.Email,
			Phone:     guest.Phone,
		},
	}
}

// digitalOp calls the encoder. An encoder that turns out not to update in
// place gets a revoke and a new key instead.
func (d *Daemon) digitalOp(ctx context.Context, act digitalkeys.Action, newReq, oldReq keys.Request) (keys.Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.dk.timeout)
	defer cancel()
	revoker := d.dk.enc.(keys.Revoker) // checked by openDigital
	switch act {
	case digitalkeys.Issue:
		return d.dk.enc.Issue(ctx, newReq)
	case digitalkeys.Revoke:
		return revoker.Revoke(ctx, oldReq)
	case digitalkeys.Update:
		if u, ok := d.dk.enc.(keys.Updater); ok {
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
	return d.dk.enc.Issue(ctx, newReq)
}

func newKeys(ks []keys.Key) []digitalKey {
	out := make([]digitalKey, len(ks))
	for i, k := range ks {
		out[i] = digitalKey{ID: k.ID, Type: k.Type, Value: k.Value}
	}
	return out
}

func doneVerb(act digitalkeys.Action) string {
	switch act {
	case digitalkeys.Issue:
		return "issued"
	case digitalkeys.Update:
		return "updated"
	case digitalkeys.Revoke:
		return "revoked"
	default:
		return "reissued"
	}
}
