package salto

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/internal/ascii"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

// Log field names.
const (
	logCommand = "command"
	logRooms   = "rooms"
	logMessage = "message"
)

func init() { keys.Register("salto", keys.DriverOf(DefaultConfig, New)) }

var (
	_ keys.Encoder        = (*Encoder)(nil)
	_ keys.Updater        = (*Encoder)(nil)
	_ keys.Revoker        = (*Encoder)(nil)
	_ keys.HealthReporter = (*Encoder)(nil)
	_ keys.Validator      = (*Config)(nil)
)

// Encoder sends key requests to one Salto PC interface, each on a TCP
// connection of its own, as the production clients do, or on its own
// opening of the serial port.
type Encoder struct {
	cfg    Config
	env    keys.Env
	log    zerolog.Logger
	loc    *time.Location
	layout string // Go layout of date_format
	eject  string // R or E

	// slot admits one request at a time: an encoder cuts one card at a
	// time, and an answer carries nothing that ties it to one of two
	// overlapping requests.
	slot chan struct{}

	mu     sync.Mutex
	health keys.Health // as of the last probe
}

// New validates cfg. It does not contact Salto: the interface is reached
// afresh for every request, and Health says whether it answers.
func New(cfg Config, env keys.Env) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("salto: %w", err)
	}
	loc, _ := cfg.location()
	layout, _ := cfg.dateLayout()
	eject, _ := cfg.ejectCode()
	return &Encoder{
		cfg:    cfg,
		env:    env,
		log:    env.Logger.With().Str("driver", "salto").Logger(),
		loc:    loc,
		layout: layout,
		eject:  eject,
		slot:   make(chan struct{}, 1),
	}, nil
}

// Issue makes req.KeyCount cards for the request's rooms with CN (a new
// key: the rooms' earlier cards stop working) or CC (copies), or with
// mobile set a JustIN mobile key with CNM or CCM.
func (e *Encoder) Issue(ctx context.Context, req keys.Request) (keys.Result, error) {
	ctx, cancel := e.bound(ctx)
	defer cancel()
	iss, err := e.prepare(req, req.NewKey)
	if err != nil {
		return keys.Result{}, err
	}
	if err := e.acquire(ctx); err != nil {
		return keys.Result{}, err
	}
	defer e.release()
	return e.issue(ctx, iss)
}

// Revoke checks the request's rooms out with CO, one message per room: the
// rooms' guest keys stop working.
func (e *Encoder) Revoke(ctx context.Context, req keys.Request) (keys.Result, error) {
	ctx, cancel := e.bound(ctx)
	defer cancel()
	rooms, err := e.rooms(req)
	if err != nil {
		return keys.Result{}, err
	}
	if err := e.acquire(ctx); err != nil {
		return keys.Result{}, err
	}
	defer e.release()
	note, err := e.revoke(ctx, rooms)
	return keys.Result{Note: note}, err
}

// Update has no counterpart in the protocol: it revokes the rooms' keys,
// then issues a new key (CN, as a copy is refused for a room checked out).
func (e *Encoder) Update(ctx context.Context, req keys.Request) (keys.Result, error) {
	ctx, cancel := e.bound(ctx)
	defer cancel()
	// Everything is checked before the first message goes out.
	iss, err := e.prepare(req, true)
	if err != nil {
		return keys.Result{}, err
	}
	if err := e.acquire(ctx); err != nil {
		return keys.Result{}, err
	}
	defer e.release()
	revoked, err := e.revoke(ctx, iss.rooms)
	if err != nil {
		return keys.Result{}, err
	}
	res, err := e.issue(ctx, iss)
	if err != nil {
		return keys.Result{}, &keys.Error{
			Msg:      fmt.Sprintf("%s, but the new key failed: %s", revoked, keys.Message(err)),
			MaybeCut: keys.MaybeCut(err),
			Err:      err,
		}
	}
	res.Note = revoked + ", " + res.Note
	return res, nil
}

// Health probes the interface with ENQ: ACK is ready, NAK busy, anything
// else not answering. While a request of ours holds the interface it is not
// disturbed.
func (e *Encoder) Health(ctx context.Context) keys.Health {
	select {
	case e.slot <- struct{}{}:
		defer e.release()
	default:
		return keys.Health{OK: true, Detail: "Salto interface busy with a key request"}
	}
	ok, detail := e.probe(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.health.OK != ok || e.health.Detail != detail || e.health.Since.IsZero() {
		e.health = keys.Health{OK: ok, Detail: detail, Since: time.Now()}
	}
	return e.health
}

// Close has nothing to release: every request opens and closes its own
// connection.
func (e *Encoder) Close() error { return nil }

// bound puts the configured timeout on a ctx that has no deadline.
func (e *Encoder) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); !ok && e.env.Timeout > 0 {
		return context.WithTimeout(ctx, e.env.Timeout)
	}
	return context.WithCancel(ctx)
}

func (e *Encoder) acquire(ctx context.Context) error {
	// select picks at random among ready cases: a request already cancelled
	// must not go out just because the slot was free too.
	if ctx.Err() != nil {
		return wire.NotStarted(ctx)
	}
	select {
	case e.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return wire.NotStarted(ctx)
	}
}

func (e *Encoder) release() { <-e.slot }

// issuance is an Issue request turned into its message.
type issuance struct {
	msg   Message
	rooms []string
	count int
}

// prepare checks req and builds its CN/CC (or CNM/CCM) message. Whatever
// Salto could not take fails here, before anything is sent.
func (e *Encoder) prepare(req keys.Request, newKey bool) (issuance, error) {
	rooms, err := e.rooms(req)
	if err != nil {
		return issuance{}, err
	}
	if req.ValidUntil.IsZero() {
		return issuance{}, keys.Failf("the key has no end date")
	}
	from := req.ValidFrom
	if from.IsZero() {
		from = time.Now()
	}
	from, until := from.In(e.loc), req.ValidUntil.In(e.loc)
	// Rooms 1-4, granted and denied authorisations, the dates, the operator
	// and the print lines: the same in cards and mobile keys.
	middle := make([]string, 0, 12)
	middle = append(middle, rooms...)
	middle = append(middle, make([]string, maxRooms-len(rooms))...)
	middle = append(middle, "", "", from.Format(e.layout), until.Format(e.layout), e.cfg.Operator)
	middle = append(middle, e.printLines(req)...)

	if e.cfg.Mobile {
		phone, err := mobilePhone(req.Guest.Phone)
		if err != nil {
			return issuance{}, err
		}
		cmd := "CCM"
		if newKey {
			cmd = "CNM"
		}
		const when = "2 Jan 2006 15:04"
		text := expandMessage(e.cfg.MobileMessage, strings.Join(rooms, ", "), from.Format(when), until.Format(when))
		msg := append(append(Message{cmd, phone}, middle...), text)
		return issuance{msg: msg, rooms: rooms, count: 1}, nil
	}
	encoder := e.cfg.Encoder
	if encoder == "" {
		encoder = req.KeyCutterID
	}
	if encoder == "" {
		return issuance{}, keys.Failf("no Salto encoder named: set encoder in the configuration, or an identifier on the key cutter in Mews")
	}
	if !plain(encoder) {
		return issuance{}, keys.Failf("the encoder name %q cannot be sent to Salto (printable ASCII only)", encoder)
	}
	count := max(req.KeyCount, 1)
	cmd := "CC"
	if newKey {
		cmd = "CN"
	}
	// "CN" alone is one card; a count is added only when there are more.
	if count > 1 {
		cmd += strconv.Itoa(count)
	}
	msg := append(append(Message{cmd, encoder, e.eject}, middle...), serialsAll)
	return issuance{msg: msg, rooms: rooms, count: count}, nil
}

// serialsAll asks Salto to return the serial number of every card.
const serialsAll = "2"

// rooms are the lock-system rooms of req, checked against what Salto takes.
// The caller maps Mews lock ids to rooms; if it sent none, map the lock ids
// here, keeping unmapped ones.
func (e *Encoder) rooms(req keys.Request) ([]string, error) {
	rooms := req.Rooms
	if len(rooms) == 0 {
		for _, id := range req.LockIDs {
			if r, ok := e.env.Rooms[id]; ok {
				id = r
			}
			rooms = append(rooms, id)
		}
	}
	switch {
	case len(rooms) == 0:
		return nil, keys.Failf("no room to encode")
	case len(rooms) > maxRooms:
		return nil, keys.Failf("Salto takes at most %d rooms per key; this key is for %d (%s)", maxRooms, len(rooms), strings.Join(rooms, ", "))
	}
	sent := make([]string, len(rooms))
	for i, room := range rooms {
		// Left out, a character would change the door: "10³1" is not "101".
		if c, bad := ascii.Unsendable(room, ""); bad {
			return nil, keys.Failf("room %q cannot be sent to Salto (it contains %q)", room, string(c))
		}
		sent[i] = ascii.Clean(room, "")
		if len(sent[i]) > maxRoom {
			return nil, keys.Failf("room %q is longer than the %d characters Salto takes", room, maxRoom)
		}
	}
	return sent, nil
}

// printLines are the card's three print lines: the guest's name first, if
// wanted, in the ASCII form Mews normalizes it to.
func (e *Encoder) printLines(req keys.Request) []string {
	lines := make([]string, 3)
	if e.cfg.PrintGuestName {
		g := req.Guest
		first, last := g.NormalizedFirstName, g.NormalizedLastName
		if first == "" && last == "" {
			first, last = g.FirstName, g.LastName
		}
		lines[0] = strings.TrimSpace(ascii.Clean(strings.TrimSpace(first+" "+last), ""))
	}
	return lines
}

var (
	phoneDecoration = strings.NewReplacer(" ", "", "-", "", ".", "", "/", "", "(", "", ")", "")
	internationalNo = regexp.MustCompile(`^(\+|00)[0-9]{6,15}$`)
)

// mobilePhone is the guest's phone as JustIN wants it: international, +
// or 00 and digits. The number itself stays out of the error: it is
// personal data.
func mobilePhone(phone string) (string, error) {
	if strings.TrimSpace(phone) == "" {
		return "", keys.Failf("the guest has no phone number in Mews; a mobile key is sent to one")
	}
	p := phoneDecoration.Replace(phone)
	if !internationalNo.MatchString(p) {
		return "", keys.Failf("the guest's phone number in Mews is not international (+ or 00 and the country code); no mobile key was sent")
	}
	return p, nil
}

// expandMessage fills in mobile_message. Salto takes at most 256
// characters; a message that long room names make longer is cut.
func expandMessage(tmpl, room, from, until string) string {
	s := ascii.Clean(strings.NewReplacer("{room}", room, "{from}", from, "{until}", until).Replace(tmpl), "")
	return s[:min(len(s), maxMessage)]
}

// issue sends a prepared CN/CC/CNM/CCM and reads the serials from the
// answer.
func (e *Encoder) issue(ctx context.Context, iss issuance) (keys.Result, error) {
	ans, err := e.request(ctx, iss.msg, iss.rooms)
	if err != nil {
		return keys.Result{}, err
	}
	typ := keys.KeyRfidTag
	if e.cfg.Mobile {
		typ = keys.KeyMobile
	}
	var (
		res     keys.Result
		serials []string
	)
	for _, f := range ans[min(2, len(ans)):] {
		if v := strings.TrimSpace(ascii.FromLatin1(f)); v != "" {
			res.Keys = append(res.Keys, keys.Key{ID: v, Type: typ, Value: v})
			serials = append(serials, v)
		}
	}
	res.Note = issueNote(e.cfg.Mobile, iss.count, iss.rooms, serials)
	return res, nil
}

func issueNote(mobile bool, count int, rooms, serials []string) string {
	where := "room " + rooms[0]
	if len(rooms) > 1 {
		where = "rooms " + strings.Join(rooms, ", ")
	}
	if mobile {
		return "mobile key for " + where + " sent to the guest's phone"
	}
	note := fmt.Sprintf("%d keys for %s", count, where)
	if count == 1 {
		note = "1 key for " + where
	}
	switch len(serials) {
	case 0:
		return note
	case 1:
		return note + " (serial " + serials[0] + ")"
	}
	return note + " (serials " + strings.Join(serials, ", ") + ")"
}

// revoke sends CO for each room in turn.
func (e *Encoder) revoke(ctx context.Context, rooms []string) (string, error) {
	var done []string
	for _, room := range rooms {
		if _, err := e.request(ctx, Message{"CO", "0", room}, []string{room}); err != nil {
			if len(done) > 0 {
				return "", &keys.Error{
					Msg:      fmt.Sprintf("room %s: %s (%s)", room, keys.Message(err), revokedNote(done)),
					MaybeCut: keys.MaybeCut(err),
					Err:      err,
				}
			}
			return "", err
		}
		done = append(done, room)
	}
	return revokedNote(done), nil
}

func revokedNote(rooms []string) string {
	if len(rooms) == 1 {
		return "keys for room " + rooms[0] + " revoked"
	}
	return "keys for rooms " + strings.Join(rooms, ", ") + " revoked"
}

// request sends m and returns Salto's answer if it reports success.
func (e *Encoder) request(ctx context.Context, m Message, rooms []string) (Message, error) {
	e.log.Info().Str(logCommand, m[0]).Strs(logRooms, rooms).Msg("asking Salto")
	e.log.Debug().Stringer(logMessage, m).Msg("sent")
	ans, err := e.send(ctx, m)
	if err != nil {
		return nil, err
	}
	e.log.Debug().Stringer(logMessage, ans).Msg("answer")
	if err := verdict(m, ans, rooms); err != nil {
		return nil, err
	}
	return ans, nil
}
