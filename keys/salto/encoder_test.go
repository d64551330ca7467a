package salto_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/salto"
	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig keeps the property in a zone with summer time, so that time
// conversions and DST show.
func testConfig() salto.Config {
	c := salto.DefaultConfig()
	c.TimeZone = "Europe/Madrid"
	return c
}

func env(t *testing.T) keys.Env {
	return keys.Env{
		Name:    "frontdesk",
		Timeout: 10 * time.Second,
		Logger:  zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	}
}

// start opens an encoder in front of a fresh simulated interface.
func start(t *testing.T, mod func(*salto.Config)) (*salto.Encoder, *saltotest.Interface) {
	t.Helper()
	sim, err := saltotest.Listen(saltotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	cfg := testConfig()
	cfg.Address = sim.Addr()
	if mod != nil {
		mod(&cfg)
	}
	e, err := salto.New(cfg, env(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e, sim
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// request arrives in summer (12:30 UTC is 14:30 in Madrid, CEST) and
// leaves in winter (10:00 UTC is 11:00, CET).
func request() keys.Request {
	return keys.Request{
		IdempotencyKey:    "cmd-1",
		Encoder:           "frontdesk",
		Kind:              keys.KindCard,
		NewKey:            true,
		ReservationID:     "5b1d0b45",
		ReservationNumber: "1234",
		Rooms:             []string{"0101"},
		LockIDs:           []string{"101"},
		KeyCount:          2,
		ValidFrom:         time.Date(2026, 7, 1, 12, 30, 0, 0, time.UTC),
		ValidUntil:        time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC),
		Guest: keys.Guest{
			FirstName: "Jan", LastName: "Novák",
			NormalizedFirstName: "JAN", NormalizedLastName: "NOVAK",
			Phone: "+420 777-000 000",
		},
		KeyCutterID: "Online Encoder 1",
	}
}

func last(t *testing.T, sim *saltotest.Interface, cmd string) saltotest.Record {
	t.Helper()
	r, ok := saltotest.Last(sim.Received(), cmd)
	if !ok {
		t.Fatalf("Salto received no %s", cmd)
	}
	return r
}

func wantFields(t *testing.T, m salto.Message, want salto.Message) {
	t.Helper()
	if len(m) != len(want) {
		t.Errorf("%s has %d fields, want %d:\n got %q\nwant %q", m.Field(0), len(m), len(want), m, want)
		return
	}
	for i := range want {
		if m[i] != want[i] {
			t.Errorf("%s field %d = %q, want %q", m.Field(0), i, m[i], want[i])
		}
	}
}

func wantError(t *testing.T, err error, msg string, maybeCut bool) {
	t.Helper()
	var ke *keys.Error
	if !errors.As(err, &ke) {
		t.Fatalf("error = %v (%T), want *keys.Error %q", err, err, msg)
	}
	if ke.Msg != msg || ke.MaybeCut != maybeCut {
		t.Errorf("error = {Msg: %q, MaybeCut: %v}, want {%q, %v}", ke.Msg, ke.MaybeCut, msg, maybeCut)
	}
}

func TestRegistered(t *testing.T) {
	drv, ok := keys.Lookup("salto")
	if !ok {
		t.Fatal(`driver "salto" not registered`)
	}
	if _, ok := drv.NewConfig().(*salto.Config); !ok {
		t.Errorf("NewConfig() = %T, want *salto.Config", drv.NewConfig())
	}
}

func TestIssueNewCards(t *testing.T) {
	for _, tt := range []struct {
		format, from, until string
	}{
		{"hhmmDDMMYY", "1430010726", "1100291126"},
		{"hhDDMMYY", "14010726", "11291126"}, // minutes dropped, as Mews's connector does
	} {
		t.Run(tt.format, func(t *testing.T) {
			e, sim := start(t, func(c *salto.Config) { c.DateFormat = tt.format })
			res, err := e.Issue(ctxT(t), request())
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if want := "2 keys for room 0101 (serials SN000001, SN000002)"; res.Note != want {
				t.Errorf("note = %q, want %q", res.Note, want)
			}
			if want := []keys.Key{{ID: "SN000001", Type: keys.KeyRfidTag, Value: "SN000001"}, {ID: "SN000002", Type: keys.KeyRfidTag, Value: "SN000002"}}; !slices.Equal(res.Keys, want) {
				t.Errorf("keys = %+v, want %+v", res.Keys, want)
			}
			r := last(t, sim, "CN")
			wantFields(t, r.Msg, salto.Message{
				"CN2", "Online Encoder 1", "R", "0101", "", "", "",
				"", "", tt.from, tt.until, "mews-keyd", "JAN NOVAK", "", "", "2",
			})
			if !r.Checked {
				t.Error("message went without its LRC")
			}
		})
	}
}

func TestIssueCopy(t *testing.T) {
	e, sim := start(t, func(c *salto.Config) {
		c.Encoder = "Encoder Desk"
		c.Eject = "eject"
		c.PrintGuestName = false
		c.Operator = "night shift"
		c.LRC = false
	})
	req := request()
	req.NewKey = false
	req.KeyCount = 1
	req.Rooms = []string{"0101", "Spa"}
	res, err := e.Issue(ctxT(t), req)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if want := "1 key for rooms 0101, Spa (serial SN000001)"; res.Note != want {
		t.Errorf("note = %q, want %q", res.Note, want)
	}
	r := last(t, sim, "CC")
	// A configured encoder wins over the key cutter's identifier; one card
	// is a CC without a count.
	wantFields(t, r.Msg, salto.Message{
		"CC", "Encoder Desk", "E", "0101", "Spa", "", "",
		"", "", "1430010726", "1100291126", "night shift", "", "", "", "2",
	})
	if r.Checked {
		t.Error("lrc = false, yet the message carried an LRC instead of 0x0D")
	}
}

// Rooms come from the lock ids through [rooms] when the caller mapped
// none.
func TestRoomsFromLockIDs(t *testing.T) {
	sim, err := saltotest.Listen(saltotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg := testConfig()
	cfg.Address = sim.Addr()
	en := env(t)
	en.Rooms = map[string]string{"101": "A-101"}
	e, err := salto.New(cfg, en)
	if err != nil {
		t.Fatal(err)
	}
	req := request()
	req.Rooms, req.LockIDs = nil, []string{"101", "102"}
	if _, err := e.Issue(ctxT(t), req); err != nil {
		t.Fatal(err)
	}
	if r := last(t, sim, "CN"); r.Msg.Field(3) != "A-101" || r.Msg.Field(4) != "102" {
		t.Errorf("rooms %q, want A-101 and 102", r.Msg[3:7])
	}
}

func TestRevoke(t *testing.T) {
	e, sim := start(t, nil)
	req := request()
	req.Rooms = []string{"0101", "0102"}
	res, err := e.Revoke(ctxT(t), req)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if want := "keys for rooms 0101, 0102 revoked"; res.Note != want {
		t.Errorf("note = %q, want %q", res.Note, want)
	}
	recs := sim.Received()
	if len(recs) != 2 {
		t.Fatalf("Salto received %d messages, want a CO per room", len(recs))
	}
	wantFields(t, recs[0].Msg, salto.Message{"CO", "0", "0101"})
	wantFields(t, recs[1].Msg, salto.Message{"CO", "0", "0102"})
}

func TestUpdate(t *testing.T) {
	e, sim := start(t, nil)
	req := request()
	req.NewKey = false // a copy would be refused after CO: Update always makes a new key
	res, err := e.Update(ctxT(t), req)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if want := "keys for room 0101 revoked, 2 keys for room 0101 (serials SN000001, SN000002)"; res.Note != want {
		t.Errorf("note = %q, want %q", res.Note, want)
	}
	var cmds []string
	for _, r := range sim.Received() {
		cmds = append(cmds, r.Msg.Field(0))
	}
	if !slices.Equal(cmds, []string{"CO", "CN2"}) {
		t.Errorf("Salto received %v, want CO then CN2", cmds)
	}
}

func TestMobileKey(t *testing.T) {
	e, sim := start(t, func(c *salto.Config) {
		c.Mobile = true
		c.MobileMessage = "Room {room}, {from} - {until}"
	})
	req := request()
	req.Kind = keys.KindDigital
	res, err := e.Issue(ctxT(t), req)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if want := "mobile key for room 0101 sent to the guest's phone"; res.Note != want {
		t.Errorf("note = %q, want %q", res.Note, want)
	}
	wantFields(t, last(t, sim, "CNM").Msg, salto.Message{
		"CNM", "+420777000000", "0101", "", "", "",
		"", "", "1430010726", "1100291126", "mews-keyd", "JAN NOVAK", "", "",
		"Room 0101, 1 Jul 2026 14:30 - 29 Nov 2026 11:00",
	})

	req.NewKey = false
	if _, err := e.Issue(ctxT(t), req); err != nil {
		t.Fatalf("Issue copy: %v", err)
	}
	if r := last(t, sim, "CCM"); r.Msg.Field(1) != "+420777000000" {
		t.Errorf("CCM %q", r.Msg)
	}

	for _, tt := range []struct{ phone, msg string }{
		{"", "the guest has no phone number in Mews; a mobile key is sent to one"},
		{"777 000 000", "the guest's phone number in Mews is not international (+ or 00 and the country code); no mobile key was sent"},
	} {
		req.Guest.Phone = tt.phone
		_, err := e.Issue(ctxT(t), req)
		wantError(t, err, tt.msg, false)
	}
	if n := len(sim.Received()); n != 2 {
		t.Errorf("Salto received %d messages, want none for the keys without a usable phone", n)
	}
}

// Whatever Salto cannot take fails before a byte is sent.
func TestRefusedBeforeSending(t *testing.T) {
	tooLong := strings.Repeat("9", 25)
	tests := []struct {
		name string
		mod  func(*keys.Request)
		msg  string
	}{
		{"five rooms", func(r *keys.Request) { r.Rooms = []string{"1", "2", "3", "4", "5"} },
			"Salto takes at most 4 rooms per key; this key is for 5 (1, 2, 3, 4, 5)"},
		{"room too long", func(r *keys.Request) { r.Rooms = []string{tooLong} },
			`room "` + tooLong + `" is longer than the 24 characters Salto takes`},
		{"room with a separator", func(r *keys.Request) { r.Rooms = []string{"10\u00b31"} },
			`room "10³1" cannot be sent to Salto (it contains "³")`},
		{"no room", func(r *keys.Request) { r.Rooms, r.LockIDs = nil, nil }, "no room to encode"},
		{"no encoder", func(r *keys.Request) { r.KeyCutterID = "" },
			"no Salto encoder named: set encoder in the configuration, or an identifier on the key cutter in Mews"},
		{"no end date", func(r *keys.Request) { r.ValidUntil = time.Time{} }, "the key has no end date"},
	}
	e, sim := start(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request()
			tt.mod(&req)
			_, err := e.Issue(ctxT(t), req)
			wantError(t, err, tt.msg, false)
		})
	}
	if n := len(sim.Received()); n != 0 {
		t.Errorf("Salto received %d messages, want none", n)
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct{ code, text, msg string }{
		{"ES", "", "Salto did not understand the request"},
		{"NC", "", "Salto cannot reach the encoder: check that it is switched on and connected"},
		{"NF", "", "Salto's database files are damaged or missing: call Salto support"},
		{"OV", "", "the encoder is busy; try again in a moment"},
		{"EP", "", "no card in the encoder, or it is inserted wrongly"},
		{"EF", "", "the card was made by another system or is damaged: use another card"},
		{"TD", "", "room 0101 is unknown to Salto"},
		{"ED", "", "no card was inserted in time"},
		{"EA", "", "the room is checked out in Salto: cut a new key instead of a copy"},
		{"OS", "", "room 0101 is out of service in Salto"},
		{"EO", "", "the card is being encoded at another station"},
		{"EV", "", "the card belongs to a staff member: use a guest card"},
		{"EG", "Licence expired", "Salto: Licence expired"},
		{"EG", "", "Salto reported an error without saying which"},
	}
	e, sim := start(t, nil)
	sim.SetMode(saltotest.ModeError)
	for _, tt := range tests {
		t.Run(tt.code+" "+tt.text, func(t *testing.T) {
			sim.SetError(tt.code, tt.text)
			_, err := e.Issue(ctxT(t), request())
			wantError(t, err, tt.msg, false)
		})
	}
	t.Run("TD for one of several rooms", func(t *testing.T) {
		sim.SetError("TD", "")
		req := request()
		req.Rooms = []string{"0101", "0102"}
		_, err := e.Issue(ctxT(t), req)
		wantError(t, err, "one of the rooms 0101, 0102 is unknown to Salto", false)
	})
}

// A copy for a room Salto has checked out is refused, in Salto's words.
func TestCopyAfterCheckOut(t *testing.T) {
	e, _ := start(t, nil)
	if _, err := e.Revoke(ctxT(t), request()); err != nil {
		t.Fatal(err)
	}
	req := request()
	req.NewKey = false
	_, err := e.Issue(ctxT(t), req)
	wantError(t, err, "the room is checked out in Salto: cut a new key instead of a copy", false)
}

func TestNAK(t *testing.T) {
	t.Run("NAK then ACK", func(t *testing.T) {
		e, sim := start(t, nil)
		sim.SetNAK(1)
		if _, err := e.Issue(ctxT(t), request()); err != nil {
			t.Fatalf("Issue: %v", err)
		}
		recs := sim.Received()
		if len(recs) != 2 || !recs[0].Refused || recs[1].Refused || sim.ENQs() != 1 {
			t.Errorf("received %d messages (first refused %v), %d ENQs; want the message, ENQ, the message again", len(recs), recs[0].Refused, sim.ENQs())
		}
	})
	t.Run("NAK three times", func(t *testing.T) {
		e, sim := start(t, nil)
		sim.SetNAK(3)
		_, err := e.Issue(ctxT(t), request())
		wantError(t, err, "Salto interface not ready", false)
		if n, enqs := len(sim.Received()), sim.ENQs(); n != 3 || enqs != 2 {
			t.Errorf("Salto received %d messages and %d ENQs, want 3 and 2", n, enqs)
		}
	})
	t.Run("busy", func(t *testing.T) {
		e, sim := start(t, nil)
		sim.SetBusy(true)
		_, err := e.Issue(ctxT(t), request())
		wantError(t, err, "Salto interface not ready", false)
		if n, enqs := len(sim.Received()), sim.ENQs(); n != 1 || enqs != 3 {
			t.Errorf("Salto received %d messages and %d ENQs, want 1 and 3", n, enqs)
		}
	})
}

// Salto's answer may come in pieces or together with the ACK.
func TestWrites(t *testing.T) {
	for _, w := range []saltotest.Writes{saltotest.WritesSplit, saltotest.WritesCoalesced} {
		e, sim := start(t, nil)
		sim.SetWrites(w)
		res, err := e.Issue(ctxT(t), request())
		if err != nil || len(res.Keys) != 2 {
			t.Errorf("writes %d: %+v, %v", w, res, err)
		}
	}
}

// An answer that comes without an ACK before it is taken: Salto did the
// work.
func TestAnswerWithoutACK(t *testing.T) {
	e, sim := start(t, nil)
	sim.SetMode(saltotest.ModeAnswerOnly)
	if res, err := e.Issue(ctxT(t), request()); err != nil || len(res.Keys) != 2 {
		t.Errorf("answer without ACK: %+v, %v", res, err)
	}
}

func TestNoLRCFromSalto(t *testing.T) {
	sim, err := saltotest.Listen(saltotest.Options{NoLRC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg := testConfig()
	cfg.Address = sim.Addr()
	e, err := salto.New(cfg, env(t))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.Issue(ctxT(t), request()); err != nil || len(res.Keys) != 2 {
		t.Errorf("answer with 0x0D for its LRC: %+v, %v", res, err)
	}
}

// Before Salto's ACK nothing was made; after it a card may have been.
func TestFaults(t *testing.T) {
	tests := []struct {
		mode     saltotest.Mode
		msg      string
		maybeCut bool
	}{
		{saltotest.ModeNoAck, "Salto interface did not acknowledge the request within 200ms; no key was made", false},
		{saltotest.ModeClose, "Salto interface closed the connection without acknowledging the request; no key was made", false},
		{saltotest.ModeNoAnswer, "no answer from Salto within 500ms", true},
		{saltotest.ModeAckClose, "Salto interface closed the connection before answering", true},
		{saltotest.ModeBadLRC, "Salto's answer arrived damaged", true},
		{saltotest.ModeGarbage, "Salto's answer arrived damaged", true},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			e, sim := start(t, func(c *salto.Config) { c.ConnectTimeout = keys.Duration(200 * time.Millisecond) })
			sim.SetMode(tt.mode)
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			_, err := e.Issue(ctx, request())
			wantError(t, err, tt.msg, tt.maybeCut)
		})
	}
}

func TestInterfaceDown(t *testing.T) {
	e, sim := start(t, nil)
	sim.Close()
	_, err := e.Issue(ctxT(t), request())
	wantError(t, err, "Salto interface not answering", false)
	want := "Salto interface not answering: cannot connect to " + sim.Addr() + ": connection refused"
	if h := e.Health(ctxT(t)); h.OK || !strings.HasPrefix(h.Detail, want) {
		t.Errorf("Health = %+v, want %q", h, want)
	}
}

// TestHealthOfASilentPort: something takes the connection but never
// answers ENQ; Health says so, and within the connect timeout.
func TestHealthOfASilentPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if conn, err := ln.Accept(); err == nil {
			accepted <- conn
		}
	}()
	cfg := testConfig()
	cfg.Address = ln.Addr().String()
	cfg.ConnectTimeout = keys.Duration(300 * time.Millisecond)
	e, err := salto.New(cfg, env(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	want := "Salto interface not answering: " + cfg.Address + " accepted the connection but did not answer ENQ in 300ms"
	if h := e.Health(ctxT(t)); h.OK || h.Detail != want {
		t.Errorf("Health = %+v, want %q", h, want)
	}
	(<-accepted).Close()
}

func TestHealth(t *testing.T) {
	e, sim := start(t, nil)
	h := e.Health(ctxT(t))
	if !h.OK || h.Detail != "Salto interface ready" || h.Since.IsZero() {
		t.Errorf("Health = %+v, want ready", h)
	}
	sim.SetBusy(true)
	if h := e.Health(ctxT(t)); !h.OK || h.Detail != "Salto interface busy" {
		t.Errorf("Health = %+v, want busy", h)
	}
	sim.SetBusy(false)
	if sim.ENQs() != 2 {
		t.Errorf("Salto received %d ENQs, want one per probe", sim.ENQs())
	}

	// A request of ours in progress is not disturbed by a probe.
	sim.SetDelay(time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := e.Issue(ctx, request())
		done <- err
	}()
	if err := sim.Wait(ctxT(t), func(rs []saltotest.Record) bool { return len(rs) == 1 }); err != nil {
		t.Fatal(err)
	}
	if h := e.Health(ctxT(t)); !h.OK || h.Detail != "Salto interface busy with a key request" {
		t.Errorf("Health during a request = %+v", h)
	}
	if sim.ENQs() != 2 {
		t.Errorf("a probe went out during a request")
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("a cancelled request succeeded")
	}
}
