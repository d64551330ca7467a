package digitalkeys

import (
	"context"
	"encoding/json"
	"fmt"
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
	Companionships(ctx context.Context, reservationIDs []string) ([]mews.Companionship, error)
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
	// Companions gives each companion of the main guest who has an e-mail
	// or phone a key of their own.
	Companions bool
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
	// CompanionshipID names the companion whose key it is; empty for the
	// main guest's.
	CompanionshipID string
	Action          Action
	// Room is the room name the key opens (the old room for a revoke): a
	// bed's room for a bed.
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
	writeBack      bool
	withCompanions bool
	reconcile      time.Duration
	history        time.Duration
	retry          retry.Schedule
	lockRoom       func(string) string
	now            func() time.Time
	log            zerolog.Logger
	onOutcome      func(Outcome)
	observe        func(time.Duration)

	hints      *hints.Set // reservation ids from events
	roomHints  *hints.Set // resource ids from events: cached rooms to forget
	catchUpNow chan struct{}

	// Touched only by Run.
	rooms map[string]mews.Resource // rooms and beds by id
	wake  map[string]time.Time     // reservation id -> when to fetch it again
	owed  map[string]time.Time     // reservation id -> when to retry its write-back
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
		writeBack: cfg.WriteBack, withCompanions: cfg.Companions, reconcile: cfg.ReconcileInterval, history: cfg.History, retry: cfg.Retry,
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
		dk.schedule(id, &rec)
		if act := rec.interrupted(); act != "" {
			dk.log.Warn().Str(fieldReservation, id).Str(fieldAction, string(act)).
				Msg("a digital key operation was interrupted by a restart; checking the reservation")
			dk.wake[id] = now
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
		if rec.Status == Revoked && len(rec.Keys) == 0 && len(rec.Gone) == 0 && len(rec.Companions) == 0 && rec.Seen.Before(cutoff) {
			if err := dk.store.DeleteDigitalRecord(id); err != nil {
				dk.log.Warn().Err(err).Msg("pruning digital key records")
				return
			}
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
