package fias

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/internal/ascii"
)

// Log field names.
const (
	logAddr   = "addr"
	logOp     = "op"
	logRoom   = "room"
	logRecord = "record"
)

func init() { keys.Register("fias", keys.DriverOf(DefaultConfig, New)) }

var (
	_ keys.Encoder        = (*Encoder)(nil)
	_ keys.Updater        = (*Encoder)(nil)
	_ keys.Revoker        = (*Encoder)(nil)
	_ keys.HealthReporter = (*Encoder)(nil)
	_ keys.Validator      = (*Config)(nil)
)

// defaultFields are sent for a record type the lock system sent no LR for.
var defaultFields = map[string][]string{
	"KR": {"WS", "KC", "RN", "KT", "K#", "G#", "GN", "GF", "GA", "GD", "DT", "DA", "TI"},
	"KD": {"WS", "KC", "RN", "G#", "DA", "TI"},
	"KM": {"WS", "KC", "RN", "G#", "GA", "GD", "DT", "DA", "TI"},
}

// Encoder is a FIAS link to one lock system and one of its key coders.
type Encoder struct {
	cfg        Config
	env        keys.Env
	log        zerolog.Logger
	loc        *time.Location
	departure  string // time layout of DT
	link       *link
	listener   *listener // nil when the encoder dials
	cancel     context.CancelFunc
	background sync.WaitGroup
	closeOnce  sync.Once

	// slot admits one request at a time: a key coder answers one KR, and
	// a KA carries nothing that ties it to a particular KR besides KC.
	slot chan struct{}

	mu      sync.Mutex
	pending *call
}

// call is a request waiting for its KA.
type call struct {
	s   *session
	req Record
	ans chan Record
}

// New validates cfg and starts keeping the link in the background: it does
// not wait for the lock system. With Listen set it binds the address first
// and fails if it cannot, unless another encoder of this process listens
// there: then it takes the socket over (see listener).
func New(cfg Config, env keys.Env) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fias: %w", err)
	}
	loc, _ := cfg.location()
	layout, _ := cfg.departureLayout()
	e := &Encoder{
		cfg:       cfg,
		env:       env,
		log:       env.Logger.With().Str("driver", "fias").Logger(),
		loc:       loc,
		departure: layout,
		slot:      make(chan struct{}, 1),
	}
	e.link = newLink(&e.cfg, e.log, loc, e.onRecord)
	// Before the listener can hand the link a connection, which selects on
	// stopped.
	ctx, cancel := context.WithCancel(context.Background())
	e.link.stopped = ctx.Done()
	if cfg.Listen != "" {
		sl, shared, err := listen(cfg.Listen, env.Name, e.link)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("fias: listen for the lock system: %w", err)
		}
		e.listener = sl
		msg := "waiting for the lock system to connect"
		if shared {
			msg = "took over the listening socket from the encoder still open on it; waiting for the lock system to connect"
		}
		e.log.Info().Str(logAddr, sl.ln.Addr().String()).Msg(msg)
	}
	e.cancel = cancel
	e.background.Go(func() { e.link.run(ctx) })
	return e, nil
}

// ListenAddr is the address the lock system connects to, nil when the
// encoder dials.
func (e *Encoder) ListenAddr() net.Addr {
	if e.listener == nil {
		return nil
	}
	return e.listener.ln.Addr()
}

// Issue cuts req.KeyCount cards with KR. A FIAS KR names one room, so a
// request for several rooms sends one KR per room, in order.
func (e *Encoder) Issue(ctx context.Context, req keys.Request) (keys.Result, error) {
	kt := "D"
	if req.NewKey || e.cfg.AlwaysNewKey {
		kt = "N"
	}
	return e.perRoom(ctx, "KR", req, kt, func(room string) string {
		n := keyCount(req)
		if n == 1 {
			return "1 key for room " + room
		}
		return fmt.Sprintf("%d keys for room %s", n, room)
	})
}

// Update changes room or validity of existing keys with KM.
func (e *Encoder) Update(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.perRoom(ctx, "KM", req, "", func(room string) string { return "keys for room " + room + " changed" })
}

// Revoke invalidates the keys of the reservation with KD.
func (e *Encoder) Revoke(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.perRoom(ctx, "KD", req, "", func(room string) string { return "keys for room " + room + " revoked" })
}

// Health reports whether the FIAS link is up.
func (e *Encoder) Health(context.Context) keys.Health { return e.link.health() }

// Close ends the link with LE and stops every goroutine of the encoder. A
// listening socket stays open while a newer encoder uses it.
func (e *Encoder) Close() error {
	e.closeOnce.Do(func() {
		// Off the socket before stopping, so that the listener hands no
		// connection to a link that has stopped taking them.
		if e.listener != nil {
			e.listener.release(e.link)
		}
		e.cancel()
		e.background.Wait()
	})
	return nil
}

func (e *Encoder) perRoom(ctx context.Context, op string, req keys.Request, kt string, note func(room string) string) (keys.Result, error) {
	rooms := e.rooms(req)
	if len(rooms) == 0 {
		return keys.Result{}, keys.Failf("no room to encode")
	}
	if err := sendable(rooms); err != nil {
		return keys.Result{}, err
	}
	if e.cfg.KCFromKeyCutter && req.KeyCutterID == "" {
		return keys.Result{}, keys.Failf("the key cutter has no identifier in Mews; set it to the lock system's key coder (KC)")
	}
	if _, ok := ctx.Deadline(); !ok && e.env.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.env.Timeout)
		defer cancel()
	}
	var (
		res   keys.Result
		notes []string
	)
	for i, room := range rooms {
		e.log.Info().Str(logOp, op).Str(logRoom, room).Str("kt", kt).Msg("sending key record")
		ans, err := e.exchange(ctx, func(s *session) Record { return e.record(s, op, req, room, kt) })
		if err == nil {
			err = answerError(ans)
		}
		if err != nil {
			if i > 0 {
				// Earlier rooms succeeded: whatever happened now, cards exist.
				return keys.Result{}, &keys.Error{
					Msg:      fmt.Sprintf("room %s: %s (%s done)", room, keys.Message(err), strings.Join(notes, ", ")),
					MaybeCut: true,
					Err:      err,
				}
			}
			return keys.Result{}, err
		}
		res.Keys = append(res.Keys, trackKeys(ans)...)
		notes = append(notes, note(room))
	}
	res.Note = strings.Join(notes, ", ")
	return res, nil
}

// rooms are the lock-system rooms of req. The caller maps Mews lock ids to
// rooms; if it sent none, map the lock ids here, keeping unmapped ones.
func (e *Encoder) rooms(req keys.Request) []string {
	if len(req.Rooms) > 0 {
		return req.Rooms
	}
	rooms := make([]string, 0, len(req.LockIDs))
	for _, id := range req.LockIDs {
		if r, ok := e.env.Rooms[id]; ok {
			id = r
		}
		rooms = append(rooms, id)
	}
	return rooms
}

// sendable refuses the request, before anything is sent for any of its
// rooms, if a room has a character FIAS cannot carry: with it left out,
// "10|1" would become "101", someone else's door.
func sendable(rooms []string) error {
	for _, room := range rooms {
		if c, bad := ascii.Unsendable(room, separator); bad {
			return keys.Failf("room %q cannot be sent to the lock system (it contains %q)", room, string(c))
		}
	}
	return nil
}

// exchange sends the record build makes for the current session and waits
// for its KA.
func (e *Encoder) exchange(ctx context.Context, build func(*session) Record) (Record, error) {
	// select picks at random among ready cases: a request already cancelled
	// must not go out just because the slot was free too.
	if err := ctx.Err(); err != nil {
		return Record{}, &keys.Error{Msg: "cancelled before the request was sent", Err: err}
	}
	select {
	case e.slot <- struct{}{}:
	case <-ctx.Done():
		return Record{}, &keys.Error{Msg: "encoder busy with another request", Err: ctx.Err()}
	}
	defer func() { <-e.slot }()

	// A link that is down may be on its way back (a reconnect takes a
	// second); waiting briefly spares the receptionist a failure.
	s, err := e.link.waitUp(ctx, e.cfg.ConnectTimeout.D())
	if err != nil {
		return Record{}, &keys.Error{Msg: "lock system offline", Err: err}
	}
	if err := ctx.Err(); err != nil {
		return Record{}, &keys.Error{Msg: "cancelled before the request was sent", Err: err}
	}
	c := &call{s: s, req: build(s), ans: make(chan Record, 1)}
	e.mu.Lock()
	e.pending = c
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.pending == c {
			e.pending = nil
		}
		e.mu.Unlock()
	}()

	e.log.Debug().Stringer(logRecord, c.req).Msg("sent")
	if sent, err := s.send(c.req); err != nil {
		return Record{}, &keys.Error{Msg: "link to lock system lost", MaybeCut: sent, Err: err}
	}
	select {
	case ans := <-c.ans:
		return ans, nil
	case <-s.done:
		return Record{}, &keys.Error{Msg: "link to lock system lost while waiting for its answer", MaybeCut: true}
	case <-ctx.Done():
		return Record{}, &keys.Error{Msg: "no answer from lock system", MaybeCut: true, Err: ctx.Err()}
	}
}

// onRecord receives the records that are not link management.
func (e *Encoder) onRecord(s *session, r Record) {
	if r.Type != "KA" {
		e.log.Debug().Str("type", r.Type).Msg("ignoring record")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.pending
	if c == nil || c.s != s || !answers(r, c.req) {
		e.log.Debug().Stringer(logRecord, r).Msg("ignoring KA that answers none of our requests")
		return
	}
	e.pending = nil
	c.ans <- r
}

// answers reports whether KA a can be the answer to req: a field both carry
// must agree. KC and WS tell our key coder from others on the same link; G#
// keeps a late answer to an abandoned request from passing for the next
// guest's. Leading zeros do not count, as some lock systems pad numbers.
func answers(a, req Record) bool {
	for _, id := range []string{"KC", "WS", "G#"} {
		av, aok := a.Lookup(id)
		rv, rok := req.Lookup(id)
		if aok && rok && strings.TrimLeft(strings.TrimSpace(av), "0") != strings.TrimLeft(rv, "0") {
			return false
		}
	}
	return true
}

// statusText words the AS codes of a KA for the receptionist, for lock
// systems that send no clear text.
var statusText = map[string]string{
	"BY": "lock system busy",
	"NF": "not found",
	"UR": "request refused by lock system",
}

// answerError returns nil for a KA that reports success.
func answerError(ans Record) error {
	as := strings.TrimSpace(ans.Get("AS"))
	if as == "OK" {
		return nil
	}
	msg := strings.TrimSpace(ascii.FromLatin1(ans.Get("CT")))
	if msg == "" {
		msg = statusText[as]
	}
	if msg == "" {
		msg = fmt.Sprintf("lock system refused the request (status %q)", as)
	}
	// The lock system decided and said so: no card came out.
	return &keys.Error{Msg: msg}
}

// trackKeys turns the track data $1..$4 of a KA into keys; lock systems that
// return anything there return the card's serial.
func trackKeys(ans Record) []keys.Key {
	var ks []keys.Key
	for _, id := range []string{"$1", "$2", "$3", "$4"} {
		if v := strings.TrimSpace(ascii.FromLatin1(ans.Get(id))); v != "" {
			ks = append(ks, keys.Key{ID: v, Type: keys.KeyRfidTag, Value: v})
		}
	}
	return ks
}

func keyCount(req keys.Request) int { return max(req.KeyCount, 1) }

// record builds a key record with the fields the lock system asked for in
// its LR for this record type, or a default set, always with WS and KC.
func (e *Encoder) record(s *session, op string, req keys.Request, room, kt string) Record {
	ids, ok := s.fieldList(op)
	if !ok {
		ids = defaultFields[op]
	}
	r := Record{Type: op}
	for _, id := range []string{"WS", "KC"} {
		if !containsID(ids, id) {
			r.Fields = append(r.Fields, Field{id, e.value(id, req, room, kt)})
		}
	}
	for _, id := range ids {
		if !known(id) {
			e.log.Debug().Str("field", id).Str(logOp, op).Msg("lock system asks for a field we cannot fill; left out")
			continue
		}
		r.Fields = append(r.Fields, Field{id, e.value(id, req, room, kt)})
	}
	return r
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func known(id string) bool {
	switch id {
	case "WS", "KC", "RN", "KT", "K#", "G#", "GN", "GF", "GA", "GD", "DT", "DA", "TI":
		return true
	}
	return false
}

// value is what we send in field id. Every value passes through Clean when
// the record is framed.
func (e *Encoder) value(id string, req keys.Request, room, kt string) string {
	now := time.Now().In(e.loc)
	switch id {
	case "WS":
		return e.cfg.Workstation
	case "KC":
		if e.cfg.KCFromKeyCutter {
			return req.KeyCutterID
		}
		return e.cfg.EncoderStation
	case "RN":
		return room
	case "KT":
		return kt
	case "K#":
		return strconv.Itoa(keyCount(req))
	case "G#":
		if req.ReservationNumber != "" {
			return req.ReservationNumber
		}
		return req.ReservationID
	case "GN":
		return name(req.Guest.NormalizedLastName, req.Guest.LastName)
	case "GF":
		return name(req.Guest.NormalizedFirstName, req.Guest.FirstName)
	case "GA":
		from := req.ValidFrom
		if from.IsZero() {
			from = now
		}
		return from.In(e.loc).Format("060102")
	case "GD":
		return e.format(req.ValidUntil, "060102")
	case "DT":
		return e.format(req.ValidUntil, e.departure)
	case "DA":
		return now.Format("060102")
	case "TI":
		return now.Format("150405")
	}
	return ""
}

func (e *Encoder) format(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.In(e.loc).Format(layout)
}

// name prefers the normalized form Mews supplies, which is meant for systems
// that cannot print every alphabet.
func name(normalized, plain string) string {
	if n := strings.TrimSpace(Clean(normalized)); n != "" {
		return n
	}
	return strings.TrimSpace(Clean(plain))
}
