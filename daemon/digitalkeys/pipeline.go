package digitalkeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/hints"
	"github.com/mews-keyd/mews-keyd/daemon/retry"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Log field names.
const (
	fieldReservation = "reservation_id"
	fieldAction      = "action"
	fieldEncoder     = "encoder"
	fieldState       = "state"
	fieldLatencyMS   = "latency_ms"
)

const (
	// maxBatch is the most ids one Connector API request takes.
	maxBatch = 1000
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

// API is what the pipeline asks of Mews (a *mews.Client).
type API interface {
	Reservations(ctx context.Context, f mews.ReservationFilter) ([]mews.Reservation, error)
	Resources(ctx context.Context, ids []string) ([]mews.Resource, error)
	Customers(ctx context.Context, ids []string) ([]mews.Customer, error)
	AccessTokens(ctx context.Context, reservationIDs []string) ([]mews.ResourceAccessToken, error)
	AddAccessTokens(ctx context.Context, tokens []mews.ResourceAccessToken) ([]mews.ResourceAccessToken, error)
	UpdateAccessTokens(ctx context.Context, updates []mews.AccessTokenUpdate) ([]mews.ResourceAccessToken, error)
	DeleteAccessTokens(ctx context.Context, ids []string) error
}

// Store keeps the pipeline's records across restarts (the daemon's
// journal): one per reservation, encoded here, and the catch-up watermark.
type Store interface {
	DigitalRecord(reservationID string) ([]byte, error)
	PutDigitalRecord(reservationID string, raw []byte) error
	DeleteDigitalRecord(reservationID string) error
	DigitalRecords() (map[string][]byte, error)
	DigitalWatermark() (time.Time, error)
	SetDigitalWatermark(time.Time) error
}

// Config is what the pipeline needs besides Mews and its store.
type Config struct {
	// Encoder names the encoder in logs and requests; Enc is it, and must
	// be able to revoke (check-out needs it).
	Encoder string
	Enc     keys.Encoder
	Timeout time.Duration // one key operation
	// IssueBeforeArrival > 0 issues keys for Confirmed reservations that
	// long before their scheduled start.
	IssueBeforeArrival time.Duration
	// WriteBack records the keys in Mews as resource access tokens.
	WriteBack bool
	// ReconcileInterval is how often the catch-up runs even while
	// connected; History how long a revoked key's record is kept.
	ReconcileInterval time.Duration
	History           time.Duration
	Retry             retry.Schedule
	// LockRoom names a Mews room as the lock system knows it, through the
	// [rooms] mapping in force (a reload may change it); nil keeps names.
	LockRoom func(name string) string
	// Now replaces the clock in tests; nil means time.Now.
	Now    func() time.Time
	Logger zerolog.Logger
	// OnOutcome, if set, is called after every operation and its
	// write-back; ObserveEncode, if set, with every encoder call's time.
	OnOutcome     func(Outcome)
	ObserveEncode func(time.Duration)
}

// Outcome describes one digital key operation.
type Outcome struct {
	ReservationID     string
	ReservationNumber string
	Action            Action
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

// Pipeline is the digital-key pipeline: Reservation events and catch-up
// polls in, keys issued, changed and revoked through the encoder, and
// recorded in Mews. Its one goroutine (Run) owns its state; events reach
// it through hint sets that never block the WebSocket reader.
type Pipeline struct {
	api     API
	store   Store
	encoder string
	enc     keys.Encoder
	timeout time.Duration
	policy  Policy
	// writeBack records keys in Mews as resource access tokens.
	writeBack bool
	reconcile time.Duration
	history   time.Duration
	retry     retry.Schedule
	lockRoom  func(string) string
	now       func() time.Time
	log       zerolog.Logger
	onOutcome func(Outcome)
	observe   func(time.Duration)

	hints      *hints.Set // reservation ids from events
	roomHints  *hints.Set // resource ids from events: cached rooms to forget
	catchUpNow chan struct{}

	// Touched only by Run.
	rooms map[string]mews.Resource
	wake  map[string]time.Time // reservation id -> when to fetch it again
	owed  map[string]time.Time // reservation id -> when to retry its write-back
	// fetchFailures counts failed fetches in a row, for their backoff.
	fetchFailures int
}

// New checks cfg and returns a pipeline; Run starts it on its store.
func New(api API, cfg Config) (*Pipeline, error) {
	if _, ok := cfg.Enc.(keys.Revoker); !ok {
		return nil, fmt.Errorf("digital_keys: encoder %q cannot revoke keys, which check-out needs", cfg.Encoder)
	}
	_, canUpdate := cfg.Enc.(keys.Updater)
	dk := &Pipeline{
		api:     api,
		encoder: cfg.Encoder, enc: cfg.Enc, timeout: cfg.Timeout,
		policy:    Policy{IssueBeforeArrival: cfg.IssueBeforeArrival, CanUpdate: canUpdate},
		writeBack: cfg.WriteBack, reconcile: cfg.ReconcileInterval, history: cfg.History, retry: cfg.Retry,
		lockRoom: cfg.LockRoom, now: cfg.Now, onOutcome: cfg.OnOutcome, observe: cfg.ObserveEncode,
		log:        cfg.Logger.With().Str("pipeline", "digital").Str(fieldEncoder, cfg.Encoder).Logger(),
		hints:      hints.New(),
		roomHints:  hints.New(),
		catchUpNow: make(chan struct{}, 1),
		rooms:      map[string]mews.Resource{},
		wake:       map[string]time.Time{},
		owed:       map[string]time.Time{},
	}
	if dk.now == nil {
		dk.now = time.Now
	}
	if dk.lockRoom == nil {
		dk.lockRoom = func(name string) string { return name }
	}
	if dk.observe == nil {
		dk.observe = func(time.Duration) {}
	}
	if dk.reconcile <= 0 {
		dk.reconcile = 5 * time.Minute
	}
	return dk, nil
}

// Encoder names the encoder the pipeline uses.
func (dk *Pipeline) Encoder() string { return dk.encoder }

// Reservation announces a changed reservation (a Reservation event): it is
// fetched and decided about. Safe to call from any goroutine.
func (dk *Pipeline) Reservation(id string, at time.Time) { dk.hints.Add(id, at) }

// Resource announces a changed room: its cached copy is dropped.
func (dk *Pipeline) Resource(id string, at time.Time) { dk.roomHints.Add(id, at) }

// Connected asks for a catch-up, after every (re)connection.
func (dk *Pipeline) Connected() {
	select {
	case dk.catchUpNow <- struct{}{}:
	default:
	}
}

// record is the journal entry of one reservation.
type record struct {
	State
	Number   string      `json:"number,omitempty"`
	RoomName string      `json:"room_name,omitempty"`
	Keys     []storedKey `json:"keys,omitempty"`
	// RetryAt is set after a failure that certainly changed nothing;
	// Attempts counts such failures in a row, for their backoff. Both
	// belong to the failed decision: the next decision that needs no
	// operation, and every success, clears them.
	RetryAt  time.Time `json:"retry_at"`
	Attempts int       `json:"attempts,omitempty"`
	// Gone are keys Mews must stop showing; ValidityOwed says the tokens
	// of Keys still carry old dates. See digital_writeback.go.
	Gone              []storedKey `json:"gone,omitempty"`
	ValidityOwed      bool        `json:"validity_owed,omitempty"`
	WriteBackAt       time.Time   `json:"write_back_at"`
	WriteBackAttempts int         `json:"write_back_attempts,omitempty"`
}

// storedKey is a key as the encoder returned it, with the id of its record
// in Mews (resourceAccessTokens) once written back.
type storedKey struct {
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
func (r *record) worthKeeping() bool {
	return r.Status != NotIssued || r.Pending != "" || !r.WakeAt.IsZero() ||
		!r.RetryAt.IsZero() || len(r.Keys) > 0 || len(r.Gone) > 0 || r.ValidityOwed
}

// Run is the pipeline's one goroutine, keeping its records in store until
// ctx ends. Encoder calls inside it are not cut short by ctx (their own
// timeout bounds them), so a shutdown never leaves a key half issued.
func (dk *Pipeline) Run(ctx context.Context, store Store) {
	dk.store = store
	// A guest uses a digital key later; a receptionist with a guest at the
	// desk is waiting for a key card now. When the request budget is
	// short, key commands go first.
	ctx = mews.WithLowPriority(ctx)
	dk.loadSchedule()
	reconcile := time.NewTicker(dk.reconcile)
	defer reconcile.Stop()
	refresh := time.NewTicker(roomCacheLifetime)
	defer refresh.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		dk.armTimer(timer)
		select {
		case <-ctx.Done():
			return
		case <-dk.hints.Ready():
			ids, seen := dk.hints.Take(maxBatch)
			dk.fetch(ctx, ids, seen)
		case <-dk.roomHints.Ready():
			ids, _ := dk.roomHints.Take(maxBatch)
			for _, id := range ids {
				delete(dk.rooms, id)
			}
		case <-dk.catchUpNow:
			dk.catchUp(ctx)
		case <-reconcile.C:
			dk.catchUp(ctx)
		case <-timer.C:
			dk.wakeUp(ctx)
		case <-refresh.C:
			clear(dk.rooms)
			dk.prune()
		}
	}
}

func (dk *Pipeline) armTimer(timer *time.Timer) {
	var first time.Time
	for _, at := range dk.wake {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	for _, at := range dk.owed {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		timer.Stop()
		return
	}
	timer.Reset(max(0, first.Sub(dk.now())))
}

// wakeUp retries the write-backs whose time has come, and fetches the
// reservations whose time has come: a retry, an issue_before_arrival window
// opening, an operation interrupted by a crash.
func (dk *Pipeline) wakeUp(ctx context.Context) {
	now := dk.now()
	for id, at := range dk.owed {
		if at.After(now) || ctx.Err() != nil {
			continue
		}
		delete(dk.owed, id)
		rec, err := dk.load(id)
		if err != nil {
			dk.log.Error().Err(err).Str(fieldReservation, id).Msg("reading the digital key record")
			continue
		}
		if dk.owesWriteBack(&rec) {
			dk.settleWriteBack(ctx, id, &rec, dk.log.With().Str(fieldReservation, id).Logger())
		}
	}
	var ids []string
	seen := map[string]time.Time{}
	for id, at := range dk.wake {
		if !at.After(now) {
			ids = append(ids, id)
			seen[id] = now
			delete(dk.wake, id)
		}
	}
	dk.fetch(ctx, ids, seen)
}

// loadSchedule finds, after a start, the reservations the journal
// says need another look.
func (dk *Pipeline) loadSchedule() {
	entries, err := dk.store.DigitalRecords()
	if err != nil {
		dk.log.Error().Err(err).Msg("reading digital key records; interrupted operations are found at the next change")
		return
	}
	now := dk.now()
	for id, raw := range entries {
		var rec record
		if err := json.Unmarshal(raw, &rec); err != nil {
			dk.log.Error().Err(err).Str(fieldReservation, id).Msg("unreadable digital key record")
			continue
		}
		switch {
		case rec.Pending != "":
			dk.log.Warn().Str(fieldReservation, id).Str(fieldAction, string(rec.Pending)).
				Msg("a digital key operation was interrupted by a restart; checking the reservation")
			dk.schedule(id, &rec)
			dk.wake[id] = now
		default:
			dk.schedule(id, &rec)
		}
		if dk.owesWriteBack(&rec) {
			// A restart may follow a fix of what made Mews refuse: try at
			// once (the backoff resumes where it was if it did not). The
			// new time is journalled, so looking at the reservation again
			// before the retry does not push it back.
			rec.WriteBackAt = now
			if err := dk.save(id, &rec); err != nil {
				dk.log.Error().Err(err).Str(fieldReservation, id).Msg("scheduling the owed write-back")
			}
		}
	}
}

func (dk *Pipeline) schedule(id string, rec *record) {
	if dk.owesWriteBack(rec) {
		dk.owed[id] = rec.WriteBackAt
	} else {
		delete(dk.owed, id)
	}
	at := rec.WakeAt
	if !rec.RetryAt.IsZero() && (at.IsZero() || rec.RetryAt.Before(at)) {
		at = rec.RetryAt
	}
	if at.IsZero() {
		delete(dk.wake, id)
		return
	}
	dk.wake[id] = at
}

// prune forgets reservations whose keys were revoked longer ago than
// the journal keeps command history: no late event can matter any more.
func (dk *Pipeline) prune() {
	entries, err := dk.store.DigitalRecords()
	if err != nil {
		dk.log.Warn().Err(err).Msg("pruning digital key records")
		return
	}
	cutoff := dk.now().Add(-dk.history)
	for id, raw := range entries {
		var rec record
		if json.Unmarshal(raw, &rec) != nil {
			continue
		}
		if rec.Status == Revoked && len(rec.Keys) == 0 && len(rec.Gone) == 0 && rec.Seen.Before(cutoff) {
			if err := dk.store.DeleteDigitalRecord(id); err != nil {
				dk.log.Warn().Err(err).Msg("pruning digital key records")
				return
			}
		}
	}
}

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

// process decides about fetched reservations and carries the
// decisions out. Rooms and guests are fetched only for the keys being
// issued or changed, each in one request for the whole batch.
func (dk *Pipeline) process(ctx context.Context, rs []mews.Reservation, seen map[string]time.Time) {
	now := dk.now()
	plans := make([]plan, 0, len(rs))
	var roomIDs, guestIDs []string
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
		if p.makesKey() {
			if _, ok := dk.rooms[p.dec.Next.Grant.Room]; !ok {
				roomIDs = append(roomIDs, p.dec.Next.Grant.Room)
			}
			if r.AccountID != "" {
				guestIDs = append(guestIDs, r.AccountID)
			}
		}
		plans = append(plans, p)
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
		if p.makesKey() && (roomErr != nil || guestErr != nil) {
			dk.log.Error().Err(errors.Join(roomErr, guestErr)).Str(fieldReservation, p.r.ID).
				Msg("fetching the room or guest for a digital key failed; will retry")
			dk.retryLater(p.r.ID, p.rec)
			continue
		}
		dk.apply(ctx, p, guests[p.r.AccountID])
	}
}

func (dk *Pipeline) cacheRooms(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rooms, err := dk.api.Resources(ctx, ids)
	if err != nil {
		return fmt.Errorf("fetch rooms: %w", err)
	}
	for _, r := range rooms {
		dk.rooms[r.ID] = r
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

// roomName is the room's name in Mews (what [rooms] maps), or its id when
// Mews did not return it (deleted or inactive).
func (dk *Pipeline) roomName(id string) string {
	if r, ok := dk.rooms[id]; ok && r.Name != "" {
		return r.Name
	}
	return id
}

func (dk *Pipeline) load(id string) (record, error) {
	var rec record
	raw, err := dk.store.DigitalRecord(id)
	if err != nil || raw == nil {
		return rec, err
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, fmt.Errorf("digital key record of %s: %w", id, err)
	}
	return rec, nil
}

// save writes the record (or removes it when it says nothing) and
// schedules its next look. It is on disk when it returns nil.
func (dk *Pipeline) save(id string, rec *record) error {
	dk.schedule(id, rec)
	if !rec.worthKeeping() {
		return dk.store.DeleteDigitalRecord(id)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("digital key record of %s: %w", id, err)
	}
	return dk.store.PutDigitalRecord(id, raw)
}

// retryLater schedules another look after a failure that changed nothing.
func (dk *Pipeline) retryLater(id string, rec record) {
	rec.Attempts++
	rec.RetryAt = dk.now().Add(dk.retry.After(rec.Attempts))
	if err := dk.save(id, &rec); err != nil {
		dk.log.Error().Err(err).Str(fieldReservation, id).Msg("recording the digital key retry")
	}
}

// apply carries out one decision. The order makes a crash safe: the
// journal records the operation as pending before the encoder is called and
// the result after, so a restart finds an interrupted operation and never
// silently issues a second key.
func (dk *Pipeline) apply(ctx context.Context, p *plan, guest mews.Customer) {
	r, act := p.r, p.dec.Action
	log := dk.log.With().Str(fieldReservation, r.ID).Str("number", r.Number).Logger()
	if act == None {
		log.Debug().Str(fieldState, string(r.State)).Str("reason", p.dec.Reason).Msg("digital key: nothing to do")
		if p.dec.Stale && !p.rec.RetryAt.IsZero() {
			// An old version says nothing about the newer one the retry
			// is for: look again later.
			dk.retryLater(r.ID, p.rec)
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
		if err := dk.save(r.ID, &next); err != nil {
			log.Error().Err(err).Msg("recording the digital key state")
		}
		return
	}
	log = log.With().Str(fieldAction, string(act)).Logger()

	marked := p.rec
	marked.Pending, marked.Done, marked.Seen = act, p.dec.Next.Done, p.dec.Next.Seen
	marked.WakeAt, marked.RetryAt = time.Time{}, time.Time{}
	if err := dk.save(r.ID, &marked); err != nil {
		log.Error().Err(err).Msg("cannot journal the digital key operation; not calling the encoder")
		return
	}

	grant := p.dec.Next.Grant
	newReq := dk.request(r, act, grant, dk.roomName(grant.Room), guest)
	oldReq := dk.request(r, act, p.rec.Grant, p.rec.RoomName, guest)
	if p.makesKey() {
		log.Debug().Str("guest", guest.LastName).Str("email", guest.Email).Str("phone", guest.Phone).Msg("digital key for")
	}
	start := dk.now()
	res, err := dk.operate(ctx, act, newReq, oldReq)
	took := dk.now().Sub(start)
	dk.observe(took)

	out := Outcome{ReservationID: r.ID, ReservationNumber: r.Number, Action: act,
		Room: newReq.LockIDs[0], ValidFrom: grant.From, ValidUntil: grant.Until,
		Keys: len(res.Keys), Err: err, Latency: start.Sub(p.seen)}
	if act == Revoke {
		out.Room, out.ValidFrom, out.ValidUntil = oldReq.LockIDs[0], p.rec.Grant.From, p.rec.Grant.Until
	}
	defer func() {
		if dk.onOutcome != nil {
			dk.onOutcome(out)
		}
	}()

	if err != nil {
		dk.failed(r.ID, p, act, err, log)
		return
	}
	next := p.rec
	next.State, next.Number, next.RetryAt, next.Attempts = p.dec.Next, r.Number, time.Time{}, 0
	cur := p.rec.Keys
	switch act {
	case Revoke:
		cur = nil
	default:
		next.RoomName = newReq.LockIDs[0]
		if len(res.Keys) > 0 || act != Update {
			cur = newKeys(res.Keys)
		}
	}
	// The write-back owed is journalled with the result, so neither a
	// failure nor a crash loses it.
	dk.owe(&next, act, p.rec.Grant, grant, p.rec.Keys, cur)
	next.WriteBackAt, next.WriteBackAttempts = time.Time{}, 0
	if err := dk.save(r.ID, &next); err != nil {
		// The key exists but the journal cannot say so; the pending mark
		// left behind makes the next start check this reservation.
		log.Error().Err(err).Msg("cannot journal the digital key result")
		return
	}
	log.Info().Str("room", out.Room).Time("valid_until", out.ValidUntil).Int("keys", len(res.Keys)).
		Int64(fieldLatencyMS, out.Latency.Milliseconds()).Msg("digital key " + doneVerb(act))
	if dk.owesWriteBack(&next) {
		dk.settleWriteBack(ctx, r.ID, &next, log)
	}
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
	rec.RoomName = dk.roomName(rec.Grant.Room)
	if err := dk.save(id, &rec); err != nil {
		log.Error().Err(err).Msg("recording the failed digital key operation")
	}
}

func (dk *Pipeline) request(r *mews.Reservation, act Action, g Grant, roomName string, guest mews.Customer) keys.Request {
	if roomName == "" {
		roomName = g.Room
	}
	return keys.Request{
		IdempotencyKey:    fmt.Sprintf("%s/%s/%s", r.ID, act, r.UpdatedUtc.UTC().Format(time.RFC3339Nano)),
		Encoder:           dk.encoder,
		Kind:              keys.KindDigital,
		NewKey:            true,
		ReservationID:     r.ID,
		ReservationNumber: r.Number,
		Rooms:             []string{dk.lockRoom(roomName)},
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

// Write-back records digital keys in Mews as resource access tokens so staff
// see them on the reservation. What Mews should show is part of the
// reservation's journalled record: Keys must show (a key without a token id
// is owed an add), Gone must not (owed a delete), ValidityOwed says the
// tokens' dates are behind the grant. Settling retries with backoff, across
// restarts too, until Mews has accepted everything. Failures never undo the
// key: the guest's door matters more than the record.

// owesWriteBack reports whether Mews does not yet show what the record says.
func (dk *Pipeline) owesWriteBack(rec *record) bool {
	if !dk.writeBack {
		return false
	}
	if len(rec.Gone) > 0 || rec.ValidityOwed {
		return true
	}
	return slices.ContainsFunc(rec.Keys, func(k storedKey) bool {
		_, v := tokenOf(k)
		return k.Token == "" && v != ""
	})
}

// owe records what Mews must show after a successful operation: the keys
// the encoder returned replace the old ones, or, when only the dates
// changed, the old tokens get the new dates.
func (dk *Pipeline) owe(rec *record, act Action, prev, grant Grant, old, cur []storedKey) {
	if !dk.writeBack {
		rec.Keys = cur
		return
	}
	if act == Update && prev.Room == grant.Room && sameKeys(old, cur) {
		rec.Keys = slices.Clone(old)
		rec.ValidityOwed = rec.ValidityOwed || slices.ContainsFunc(old, func(k storedKey) bool { return k.Token != "" || k.Sent })
		return
	}
	for _, k := range old {
		if k.Token != "" || k.Sent {
			rec.Gone = append(rec.Gone, k)
		}
	}
	rec.Keys, rec.ValidityOwed = cur, false
	for i := range rec.Keys {
		rec.Keys[i].Token, rec.Keys[i].Sent, rec.Keys[i].Room = "", false, grant.Room
	}
}

// settleWriteBack brings Mews in line with the record, saving the record as
// it goes, and schedules a retry of whatever failed.
func (dk *Pipeline) settleWriteBack(ctx context.Context, id string, rec *record, log zerolog.Logger) {
	err := dk.syncTokens(ctx, id, rec, log)
	if err == nil {
		rec.WriteBackAt, rec.WriteBackAttempts = time.Time{}, 0
	} else if ctx.Err() == nil {
		rec.WriteBackAttempts++
		rec.WriteBackAt = dk.now().Add(dk.retry.After(rec.WriteBackAttempts))
		log.Warn().Err(err).Int("attempt", rec.WriteBackAttempts).Time("retry_at", rec.WriteBackAt).
			Msg("recording the digital key in Mews failed; will retry")
	}
	if err := dk.save(id, rec); err != nil {
		log.Error().Err(err).Msg("cannot journal the Mews records of the digital key")
	}
}

// syncTokens runs the owed deletes, adds and date changes. An add that may
// have reached Mews (Sent) is first looked up, so a key never shows twice.
func (dk *Pipeline) syncTokens(ctx context.Context, id string, rec *record, log zerolog.Logger) error {
	if slices.ContainsFunc(rec.Keys, unconfirmed) || slices.ContainsFunc(rec.Gone, unconfirmed) {
		found, err := dk.api.AccessTokens(ctx, []string{id})
		if err != nil {
			return err
		}
		claimed := map[string]bool{}
		match(rec.Keys, found, claimed)
		match(rec.Gone, found, claimed)
	}
	var errs []error
	if err := dk.deleteGone(ctx, rec); err != nil {
		errs = append(errs, err)
	}
	if err := dk.addTokens(ctx, id, rec); err != nil {
		errs = append(errs, err)
	}
	if err := dk.updateTokenValidity(ctx, rec); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Debug().Msg("digital key recorded in Mews")
	}
	return errors.Join(errs...)
}

// unconfirmed: an add of this key may have reached Mews without our
// learning its token id.
func unconfirmed(k storedKey) bool { return k.Token == "" && k.Sent }

// match gives unconfirmed keys the ids of the active tokens Mews holds for
// them; a key Mews does not hold was never added.
func match(ks []storedKey, found []mews.ResourceAccessToken, claimed map[string]bool) {
	for i := range ks {
		k := &ks[i]
		if !unconfirmed(*k) {
			continue
		}
		typ, value := tokenOf(*k)
		for _, t := range found {
			if t.IsActive && !claimed[t.ID] && t.Type == typ && t.Value == value && t.SerialNumber == k.ID &&
				(k.Room == "" || t.ResourceID == k.Room) {
				k.Token, claimed[t.ID] = t.ID, true
				break
			}
		}
		k.Sent = false
	}
}

// tokenOf maps a key onto what Mews can record. Mews knows PIN codes and
// RFID tags only. A mobile key is a credential held in the lock vendor's
// app; like an RFID tag's number, its id identifies it without opening
// anything, so it is recorded as an RfidTag carrying the key's id (its
// value only when there is no id): the secret of a mobile key never goes to
// Mews.
func tokenOf(k storedKey) (mews.AccessTokenType, string) {
	switch k.Type {
	case keys.KeyPinCode:
		return mews.AccessTokenPinCode, k.Value
	case keys.KeyRfidTag:
		return mews.AccessTokenRfidTag, k.Value
	default:
		if k.ID != "" {
			return mews.AccessTokenRfidTag, k.ID
		}
		return mews.AccessTokenRfidTag, k.Value
	}
}

// addTokens adds the keys Mews does not show yet. They are journalled as
// sent before the request leaves: whatever happens to it, the next attempt
// looks before adding again.
func (dk *Pipeline) addTokens(ctx context.Context, reservation string, rec *record) error {
	var tokens []mews.ResourceAccessToken
	var index []int // tokens[i] records rec.Keys[index[i]]
	for i, k := range rec.Keys {
		typ, value := tokenOf(k)
		if k.Token != "" || value == "" {
			continue
		}
		tokens = append(tokens, mews.ResourceAccessToken{
			ServiceOrderID: reservation, ResourceID: rec.Grant.Room, Type: typ, Value: value, SerialNumber: k.ID,
			ValidityStartUtc: rec.Grant.From, ValidityEndUtc: rec.Grant.Until,
		})
		index = append(index, i)
	}
	if len(tokens) == 0 {
		return nil
	}
	for _, i := range index {
		rec.Keys[i].Sent, rec.Keys[i].Room = true, rec.Grant.Room
	}
	if err := dk.save(reservation, rec); err != nil {
		return err
	}
	added, err := dk.api.AddAccessTokens(ctx, tokens)
	if err != nil {
		return err
	}
	for i, t := range added {
		if i < len(index) {
			k := &rec.Keys[index[i]]
			k.Token, k.Sent = t.ID, false
		}
	}
	return nil
}

func (dk *Pipeline) updateTokenValidity(ctx context.Context, rec *record) error {
	if !rec.ValidityOwed {
		return nil
	}
	g := rec.Grant
	var updates []mews.AccessTokenUpdate
	for _, k := range rec.Keys {
		if k.Token != "" {
			updates = append(updates, mews.AccessTokenUpdate{ID: k.Token, ValidityStartUtc: &g.From, ValidityEndUtc: &g.Until})
		}
	}
	if len(updates) > 0 {
		if _, err := dk.api.UpdateAccessTokens(ctx, updates); err != nil {
			return err
		}
	}
	rec.ValidityOwed = false
	return nil
}

// deleteGone deletes the tokens of replaced and revoked keys. A token Mews
// does not know (deleted by staff) counts as deleted, and so does a key
// whose add never reached Mews.
func (dk *Pipeline) deleteGone(ctx context.Context, rec *record) error {
	var ids []string
	for _, k := range rec.Gone {
		if k.Token != "" {
			ids = append(ids, k.Token)
		}
	}
	if len(ids) > 0 {
		if err := dk.api.DeleteAccessTokens(ctx, ids); err != nil && !errors.Is(err, mews.ErrBadRequest) {
			return err
		}
	}
	rec.Gone = nil
	return nil
}

func sameKeys(a, b []storedKey) bool {
	return slices.EqualFunc(a, b, func(x, y storedKey) bool {
		return x.ID == y.ID && x.Type == y.Type && x.Value == y.Value
	})
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
