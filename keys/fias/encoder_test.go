package fias_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/internal/testaddr"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/fias"
	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig reconnects fast and keeps the property in a zone other than
// UTC, so that time conversions show.
func testConfig() fias.Config {
	c := fias.DefaultConfig()
	c.TimeZone = "Europe/Prague"
	c.ReconnectMin = keys.Duration(10 * time.Millisecond)
	c.ReconnectMax = keys.Duration(50 * time.Millisecond)
	c.ConnectTimeout = keys.Duration(5 * time.Second)
	return c
}

func env(t *testing.T) keys.Env {
	return keys.Env{
		Name:    "frontdesk",
		Timeout: 10 * time.Second,
		Logger:  zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	}
}

func open(t *testing.T, cfg fias.Config) *fias.Encoder {
	t.Helper()
	e, err := fias.New(cfg, env(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

type role int

const (
	pmsDials role = iota
	pmsListens
)

func (r role) String() string {
	if r == pmsDials {
		return "pms dials"
	}
	return "pms listens"
}

// start connects an encoder and a simulated lock system in the given role
// and waits for the link.
func start(t *testing.T, r role, opts fiastest.Options, mod func(*fias.Config)) (*fias.Encoder, *fiastest.Lock) {
	t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	var (
		e    *fias.Encoder
		lock *fiastest.Lock
	)
	if r == pmsDials {
		var err error
		lock, err = fiastest.Listen(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lock.Close() })
		cfg.Address = lock.Addr()
		e = open(t, cfg)
	} else {
		cfg.Listen = "127.0.0.1:0"
		e = open(t, cfg)
		lock = fiastest.Dial(e.ListenAddr().String(), opts)
		t.Cleanup(func() { lock.Close() })
	}
	if err := e.WaitLink(ctxT(t), true); err != nil {
		t.Fatalf("link did not come up: %v", err)
	}
	return e, lock
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

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
		ValidFrom:         time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC),
		ValidUntil:        time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC),
		Guest: keys.Guest{
			FirstName: "Jan", LastName: "Novák",
			NormalizedFirstName: "JAN", NormalizedLastName: "NOVAK",
		},
	}
}

func lastOf(t *testing.T, lock *fiastest.Lock, typ string) fias.Record {
	t.Helper()
	r, ok := fiastest.Last(lock.Received(), typ)
	if !ok {
		t.Fatalf("lock received no %s record", typ)
	}
	return r
}

func wantFields(t *testing.T, r fias.Record, want ...string) {
	t.Helper()
	if got := r.IDs(); !slices.Equal(got, want) {
		t.Errorf("%s fields = %v, want %v", r.Type, got, want)
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

func TestIssue(t *testing.T) {
	for _, r := range []role{pmsDials, pmsListens} {
		for _, lockFirst := range []bool{false, true} {
			name := r.String() + ", PMS sends LS first"
			if lockFirst {
				name = r.String() + ", lock sends LS first"
			}
			t.Run(name, func(t *testing.T) {
				e, lock := start(t, r, fiastest.Options{LockFirst: lockFirst}, nil)
				res, err := e.Issue(ctxT(t), request())
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				if res.Note != "2 keys for room 0101" {
					t.Errorf("note = %q", res.Note)
				}
				if len(res.Keys) != 2 || res.Keys[0].Type != keys.KeyRfidTag || !strings.HasPrefix(res.Keys[0].ID, "SIM") || res.Keys[0].Value != res.Keys[0].ID {
					t.Errorf("keys = %+v, want 2 RfidTag keys with the serials from the track data", res.Keys)
				}
				kr := lastOf(t, lock, "KR")
				// The simulator's LR for KR lists this order.
				wantFields(t, kr, "KC", "KT", "RN", "WS", "K#", "G#", "GN", "GF", "GA", "GD", "DT", "DA", "TI")
				for id, want := range map[string]string{
					"KC": "1", "WS": "1", "KT": "N", "RN": "0101", "K#": "2", "G#": "1234",
					"GN": "NOVAK", "GF": "JAN", "GA": "261127", "GD": "261129", "DT": "1100",
				} {
					if got := kr.Get(id); got != want {
						t.Errorf("KR %s = %q, want %q", id, got, want)
					}
				}
				if da := kr.Get("DA"); len(da) != 6 {
					t.Errorf("KR DA = %q, want YYMMDD", da)
				}
			})
		}
	}
}

func TestLinkStart(t *testing.T) {
	t.Run("PMS first", func(t *testing.T) {
		_, lock := start(t, pmsDials, fiastest.Options{}, nil)
		// The PMS answers the lock's LA (after its LD and LRs) with LA.
		if err := lock.Wait(ctxT(t), func(rs []fias.Record) bool { return fiastest.Count(rs, "LA") > 0 }); err != nil {
			t.Fatal(err)
		}
		got := types(lock.Received())
		if !slices.Equal(got[:2], []string{"LS", "LA"}) {
			t.Errorf("PMS sent %v, want LS then LA", got)
		}
	})
	t.Run("lock first", func(t *testing.T) {
		_, lock := start(t, pmsListens, fiastest.Options{LockFirst: true}, nil)
		if err := lock.Wait(ctxT(t), func(rs []fias.Record) bool { return fiastest.Count(rs, "LA") > 0 }); err != nil {
			t.Fatal(err)
		}
		rs := lock.Received()
		i := slices.IndexFunc(rs, func(r fias.Record) bool { return r.Type == "LD" })
		if i < 0 {
			t.Fatalf("PMS did not describe itself with LD; sent %v", types(rs))
		}
		if rs[i].Get("V#") == "" || rs[i].Get("IF") != "WW" {
			t.Errorf("LD = %v, want V# and IF", rs[i])
		}
		after := types(rs[i:])
		if !slices.Equal(after[:4], []string{"LD", "LR", "LR", "LA"}) {
			t.Errorf("PMS answered the lock's LS with %v, want LD, LR, LR, LA", after)
		}
		if rs[i+1].Get("RI") != "KA" || !strings.Contains(rs[i+1].Get("FL"), "AS") {
			t.Errorf("first LR = %v, want the KA fields we read", rs[i+1])
		}
	})
}

func types(rs []fias.Record) []string {
	ts := make([]string, len(rs))
	for i, r := range rs {
		ts[i] = r.Type
	}
	return ts
}

func TestLinkRecordFieldsHonoured(t *testing.T) {
	opts := fiastest.Options{Fields: map[string][]string{
		// WS in the middle stays there; XX is nothing we know.
		"KR": {"RN", "WS", "KT", "XX", "K#", "GD"},
		"KM": {"RN", "GD"},
	}}
	e, lock := start(t, pmsDials, opts, nil)
	ctx := ctxT(t)
	if _, err := e.Issue(ctx, request()); err != nil {
		t.Fatal(err)
	}
	wantFields(t, lastOf(t, lock, "KR"), "KC", "RN", "WS", "KT", "K#", "GD")
	if _, err := e.Update(ctx, request()); err != nil {
		t.Fatal(err)
	}
	wantFields(t, lastOf(t, lock, "KM"), "WS", "KC", "RN", "GD")
	// No LR for KD: the default set.
	if _, err := e.Revoke(ctx, request()); err != nil {
		t.Fatal(err)
	}
	wantFields(t, lastOf(t, lock, "KD"), "WS", "KC", "RN", "G#", "DA", "TI")
}

func TestRevokeAndUpdate(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, nil)
	ctx := ctxT(t)
	res, err := e.Revoke(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	if res.Note != "keys for room 0101 revoked" {
		t.Errorf("revoke note = %q", res.Note)
	}
	wantFields(t, lastOf(t, lock, "KD"), "KC", "RN", "WS", "G#", "DA", "TI")
	res, err = e.Update(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	if res.Note != "keys for room 0101 changed" {
		t.Errorf("update note = %q", res.Note)
	}
	if km := lastOf(t, lock, "KM"); km.Get("GD") != "261129" || km.Get("RN") != "0101" {
		t.Errorf("KM = %v", km)
	}
}

func TestDuplicateKey(t *testing.T) {
	for _, tc := range []struct {
		name        string
		newKey, cfg bool
		wantKeyType string
	}{
		{"duplicate", false, false, "D"},
		{"new", true, false, "N"},
		{"always new", false, true, "N"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, lock := start(t, pmsDials, fiastest.Options{}, func(c *fias.Config) { c.AlwaysNewKey = tc.cfg })
			req := request()
			req.NewKey = tc.newKey
			if _, err := e.Issue(ctxT(t), req); err != nil {
				t.Fatal(err)
			}
			if kt := lastOf(t, lock, "KR").Get("KT"); kt != tc.wantKeyType {
				t.Errorf("KT = %q, want %q", kt, tc.wantKeyType)
			}
		})
	}
}

func TestAnswerMatching(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, nil)
	lock.SetMode(fiastest.ModeNoAnswer)
	ctx := ctxT(t)
	type result struct {
		res keys.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := e.Issue(ctx, request())
		done <- result{res, err}
	}()
	if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "KR") == 1 }); err != nil {
		t.Fatal(err)
	}
	for _, ka := range []fias.Record{
		fias.NewRecord("KA", "AS", "OK", "KC", "2", "WS", "1", "$1", "OTHER-CODER"),
		fias.NewRecord("KA", "AS", "OK", "KC", "1", "WS", "7", "$1", "OTHER-WORKSTATION"),
		fias.NewRecord("KA", "AS", "OK", "KC", "1", "WS", "1", "G#", "9999", "$1", "OTHER-GUEST"),
		fias.NewRecord("KA", "AS", "OK", "KC", "1", "WS", "1", "G#", "00001234", "$1", "OURS"),
	} {
		if err := lock.Send(ka); err != nil {
			t.Fatal(err)
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.res.Keys) != 1 || r.res.Keys[0].ID != "OURS" {
		t.Errorf("keys = %+v, want the one from the KA for our key coder and guest", r.res.Keys)
	}
}

func TestFailureAnswer(t *testing.T) {
	for _, tc := range []struct{ status, text, want string }{
		{"BY", "Encoder busy", "Encoder busy"},
		{"BY", "", "lock system busy"},
		{"NF", "", "not found"},
		{"UR", "", "request refused by lock system"},
		{"XX", "", `lock system refused the request (status "XX")`},
	} {
		t.Run(tc.status+" "+tc.text, func(t *testing.T) {
			e, lock := start(t, pmsDials, fiastest.Options{}, nil)
			lock.SetMode(fiastest.ModeFail)
			lock.SetFailure(tc.status, tc.text)
			_, err := e.Issue(ctxT(t), request())
			wantError(t, err, tc.want, false)
		})
	}
}

func TestNoAnswer(t *testing.T) {
	for _, mode := range []fiastest.Mode{fiastest.ModeNoAnswer, fiastest.ModeHalf} {
		t.Run(map[fiastest.Mode]string{fiastest.ModeNoAnswer: "nothing", fiastest.ModeHalf: "half a frame"}[mode], func(t *testing.T) {
			e, lock := start(t, pmsDials, fiastest.Options{}, nil)
			lock.SetMode(mode)
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err := e.Issue(ctx, request())
			wantError(t, err, "no answer from lock system", true)
			// The next answer's STX ends whatever half frame came before.
			lock.SetMode(fiastest.ModeOK)
			if _, err := e.Issue(ctxT(t), request()); err != nil {
				t.Errorf("request after the timeout: %v", err)
			}
		})
	}
}

func TestEnvTimeoutBoundsRequestWithoutDeadline(t *testing.T) {
	lock, err := fiastest.Listen(fiastest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	cfg := testConfig()
	cfg.Address = lock.Addr()
	en := env(t)
	en.Timeout = 100 * time.Millisecond
	e, err := fias.New(cfg, en)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.WaitLink(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	lock.SetMode(fiastest.ModeNoAnswer)
	_, err = e.Issue(context.Background(), request())
	wantError(t, err, "no answer from lock system", true)
}

func TestNoiseBetweenRecords(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, nil)
	lock.SetMode(fiastest.ModeNoisy)
	res, err := e.Issue(ctxT(t), request())
	if err != nil {
		t.Fatalf("Issue through noise: %v", err)
	}
	if len(res.Keys) != 2 {
		t.Errorf("keys = %+v", res.Keys)
	}
}

func TestLinkDropMidRequest(t *testing.T) {
	for _, r := range []role{pmsDials, pmsListens} {
		t.Run(r.String(), func(t *testing.T) {
			e, lock := start(t, r, fiastest.Options{}, nil)
			lock.SetMode(fiastest.ModeNoAnswer)
			ctx := ctxT(t)
			done := make(chan error, 1)
			go func() {
				_, err := e.Issue(ctx, request())
				done <- err
			}()
			if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "KR") == 1 }); err != nil {
				t.Fatal(err)
			}
			lock.SetMode(fiastest.ModeOK)
			lock.DropLink()
			wantError(t, <-done, "link to lock system lost while waiting for its answer", true)
			// The request waits for the link to come back.
			if _, err := e.Issue(ctx, request()); err != nil {
				t.Fatalf("request after reconnect: %v", err)
			}
			if n := lock.Connects(); n != 2 {
				t.Errorf("connections = %d, want 2", n)
			}
		})
	}
}

func TestOffline(t *testing.T) {
	addr := testaddr.Free(t)
	cfg := testConfig()
	cfg.Address = addr
	cfg.ConnectTimeout = keys.Duration(50 * time.Millisecond)
	e := open(t, cfg)
	_, err := e.Issue(ctxT(t), request())
	wantError(t, err, "lock system offline", false)
	want := "lock system link down: cannot connect to " + addr + ": connection refused"
	if h := e.Health(t.Context()); h.OK || !strings.HasPrefix(h.Detail, want) {
		t.Errorf("health = %+v, want %q", h, want)
	}
}

// TestHealthSaysWhyTheLinkIsDown: a link that does not come up says why in
// words, for `check` and /healthz, rather than a bare "down".
func TestHealthSaysWhyTheLinkIsDown(t *testing.T) {
	down := func(t *testing.T, addr, want string) {
		t.Helper()
		cfg := testConfig()
		cfg.Address = addr
		e := open(t, cfg)
		ctx := ctxT(t)
		if err := e.WaitHealth(ctx, func(h keys.Health) bool { return strings.Contains(h.Detail, want) }); err != nil {
			t.Fatalf("health %+v never said %q: %v", e.Health(ctx), want, err)
		}
		if h := e.Health(ctx); h.OK || !strings.HasPrefix(h.Detail, "lock system link down: "+want) {
			t.Errorf("health = %+v", h)
		}
	}
	t.Run("unresolvable", func(t *testing.T) {
		down(t, "lock.mews-keyd.invalid:5010", "cannot resolve lock.mews-keyd.invalid")
	})
	t.Run("refused", func(t *testing.T) {
		addr := testaddr.Free(t)
		down(t, addr, "cannot connect to "+addr+": connection refused")
	})
	t.Run("silent", func(t *testing.T) {
		// A port that takes the connection and never answers our LS.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := testConfig()
		cfg.Address = ln.Addr().String()
		e := open(t, cfg)
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Read(make([]byte, 1)); err != nil { // our LS has gone out
			t.Fatal(err)
		}
		want := "lock system link down: " + cfg.Address + " accepted the connection but did not answer the link start (LS) in "
		if h := e.Health(ctxT(t)); h.OK || !strings.HasPrefix(h.Detail, want) {
			t.Errorf("health = %+v, want %q", h, want)
		}
	})
}

func TestHealth(t *testing.T) {
	lock, err := fiastest.Listen(fiastest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	lock.SetMode(fiastest.ModeSilent)
	cfg := testConfig()
	cfg.Address = lock.Addr()
	cfg.Keepalive = keys.Duration(20 * time.Millisecond)
	began := time.Now()
	e := open(t, cfg)
	ctx := ctxT(t)
	if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "LS") > 0 }); err != nil {
		t.Fatal(err)
	}
	if h := e.Health(ctx); h.OK || !strings.HasPrefix(h.Detail, "lock system link down: ") {
		t.Errorf("health during an unanswered link start = %+v, want down", h)
	}

	lock.SetMode(fiastest.ModeOK)
	if err := e.WaitLink(ctx, true); err != nil {
		t.Fatal(err)
	}
	up := e.Health(ctx)
	if !up.OK || up.Detail != "lock system link up" || up.Since.Before(began) {
		t.Errorf("health = %+v, want up since after %v", up, began)
	}

	lock.Close()
	if err := e.WaitLink(ctx, false); err != nil {
		t.Fatal(err)
	}
	if down := e.Health(ctx); down.OK || down.Since.Before(up.Since) {
		t.Errorf("health after the lock went away = %+v", down)
	}
}

func TestKeepaliveDetectsSilentPeer(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, func(c *fias.Config) { c.Keepalive = keys.Duration(30 * time.Millisecond) })
	ctx := ctxT(t)
	// A live peer answers the probes and the link stays up across several.
	if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "LS") >= 3 }); err != nil {
		t.Fatal(err)
	}
	if lock.Connects() != 1 {
		t.Errorf("link restarted although the lock answered every probe")
	}
	lock.SetMode(fiastest.ModeSilent)
	if err := e.WaitLink(ctx, false); err != nil {
		t.Fatalf("silent peer not detected: %v", err)
	}
	lock.SetMode(fiastest.ModeOK)
	if err := e.WaitLink(ctx, true); err != nil {
		t.Fatalf("link did not come back: %v", err)
	}
}

func TestDatabaseResync(t *testing.T) {
	_, lock := start(t, pmsDials, fiastest.Options{}, nil)
	ctx := ctxT(t)
	// Let the link start finish with our LA, so that only the answer to DR follows.
	if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "LA") > 0 }); err != nil {
		t.Fatal(err)
	}
	n := len(lock.Received())
	if err := lock.Send(fias.NewRecord("DR", "DA", "261127", "TI", "101500")); err != nil {
		t.Fatal(err)
	}
	if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "DE") > 0 }); err != nil {
		t.Fatal(err)
	}
	if got := types(lock.Received()[n:]); !slices.Equal(got, []string{"DS", "DE"}) {
		t.Errorf("answer to DR = %v, want DS, DE", got)
	}
}

func TestLockEndsLink(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, nil)
	ctx := ctxT(t)
	if err := lock.Send(fias.NewRecord("LE")); err != nil {
		t.Fatal(err)
	}
	if err := lock.Wait(ctx, func([]fias.Record) bool { return lock.Connects() == 2 }); err != nil {
		t.Fatalf("no reconnect after LE: %v", err)
	}
	if _, err := e.Issue(ctx, request()); err != nil {
		t.Fatal(err)
	}
}

func TestCloseSendsLinkEnd(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, nil)
	e.Close()
	if err := lock.Wait(ctxT(t), func(rs []fias.Record) bool { return fiastest.Count(rs, "LE") == 1 }); err != nil {
		t.Fatal(err)
	}
	_, err := e.Issue(ctxT(t), request())
	wantError(t, err, "lock system offline", false)
}

func TestSeveralRooms(t *testing.T) {
	req := request()
	req.Rooms = []string{"0101", "0102"}
	t.Run("all cut", func(t *testing.T) {
		e, lock := start(t, pmsDials, fiastest.Options{}, nil)
		res, err := e.Issue(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Note != "2 keys for room 0101, 2 keys for room 0102" || len(res.Keys) != 4 {
			t.Errorf("result = %+v", res)
		}
		rs := lock.Received()
		var rooms []string
		for _, r := range rs {
			if r.Type == "KR" {
				rooms = append(rooms, r.Get("RN"))
			}
		}
		if !slices.Equal(rooms, req.Rooms) {
			t.Errorf("KR rooms = %v", rooms)
		}
	})
	t.Run("second fails", func(t *testing.T) {
		e, lock := start(t, pmsDials, fiastest.Options{}, nil)
		lock.SetMode(fiastest.ModeNoAnswer)
		ctx := ctxT(t)
		done := make(chan error, 1)
		go func() {
			_, err := e.Issue(ctx, req)
			done <- err
		}()
		for i, ka := range []fias.Record{
			fias.NewRecord("KA", "AS", "OK", "KC", "1"),
			fias.NewRecord("KA", "AS", "BY", "KC", "1", "CT", "Encoder busy"),
		} {
			if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "KR") == i+1 }); err != nil {
				t.Fatal(err)
			}
			if err := lock.Send(ka); err != nil {
				t.Fatal(err)
			}
		}
		// Cards for the first room exist: nothing may retry this request.
		wantError(t, <-done, "room 0102: Encoder busy (2 keys for room 0101 done)", true)
	})
	t.Run("rooms from lock ids", func(t *testing.T) {
		lock, err := fiastest.Listen(fiastest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		cfg := testConfig()
		cfg.Address = lock.Addr()
		en := env(t)
		en.Rooms = map[string]string{"101": "0101"}
		e, err := fias.New(cfg, en)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		r := request()
		r.Rooms, r.LockIDs = nil, []string{"101", "205"}
		res, err := e.Issue(ctxT(t), r)
		if err != nil {
			t.Fatal(err)
		}
		if res.Note != "2 keys for room 0101, 2 keys for room 205" {
			t.Errorf("note = %q", res.Note)
		}
	})
	t.Run("no room", func(t *testing.T) {
		e, _ := start(t, pmsDials, fiastest.Options{}, nil)
		r := request()
		r.Rooms, r.LockIDs = nil, nil
		_, err := e.Issue(ctxT(t), r)
		wantError(t, err, "no room to encode", false)
	})
}

// A room FIAS cannot carry is refused, never rewritten into another room:
// "10|1" sent as "101" would cut a card for a stranger's door.
func TestUnsendableRoom(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, nil)
	for _, tc := range []struct {
		rooms []string
		want  string
	}{
		{[]string{"10|1"}, `room "10|1" cannot be sent to the lock system (it contains "|")`},
		{[]string{"0101", "01\x0202"}, `room "01\x0202" cannot be sent to the lock system (it contains "\x02")`},
		{[]string{"101\n"}, `room "101\n" cannot be sent to the lock system (it contains "\n")`},
		{[]string{"東101"}, `room "東101" cannot be sent to the lock system (it contains "東")`},
	} {
		req := request()
		req.Rooms = tc.rooms
		for op, call := range map[string]func(context.Context, keys.Request) (keys.Result, error){
			"KR": e.Issue, "KM": e.Update, "KD": e.Revoke,
		} {
			_, err := call(ctxT(t), req)
			wantError(t, err, tc.want, false)
			if n := fiastest.Count(lock.Received(), op); n != 0 {
				t.Errorf("rooms %q: lock system received %d %s, want none", tc.rooms, n, op)
			}
		}
	}
	// Letters with diacritics have ASCII forms, as in guest names.
	req := request()
	req.Rooms = []string{"Zürich"}
	if _, err := e.Issue(ctxT(t), req); err != nil {
		t.Fatal(err)
	}
	if rn := lastOf(t, lock, "KR").Get("RN"); rn != "Zurich" {
		t.Errorf("RN = %q, want Zurich", rn)
	}
}

func TestNamesAndTimes(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, func(c *fias.Config) { c.DepartureTimeFormat = "HH:MM" })
	req := request()
	req.Guest = keys.Guest{FirstName: "Řehoř", LastName: "Dvořák-Müller|Straße"}
	// 23:30 UTC is already the next day in Prague.
	req.ValidFrom = time.Date(2026, 11, 27, 23, 30, 0, 0, time.UTC)
	req.ValidUntil = time.Date(2026, 11, 29, 9, 45, 0, 0, time.UTC)
	if _, err := e.Issue(ctxT(t), req); err != nil {
		t.Fatal(err)
	}
	kr := lastOf(t, lock, "KR")
	for id, want := range map[string]string{
		"GF": "Rehor", "GN": "Dvorak-MullerStrasse", "GA": "261128", "GD": "261129", "DT": "10:45",
	} {
		if got := kr.Get(id); got != want {
			t.Errorf("KR %s = %q, want %q", id, got, want)
		}
	}
}

func TestConfig(t *testing.T) {
	d, ok := keys.Lookup("fias")
	if !ok {
		t.Fatal(`driver "fias" not registered`)
	}
	def, ok := d.NewConfig().(*fias.Config)
	if !ok {
		t.Fatalf("NewConfig returns %T", d.NewConfig())
	}
	if def.Workstation != "1" || def.EncoderStation != "1" || def.Keepalive.D() != time.Minute || def.DepartureTimeFormat != "HHMM" {
		t.Errorf("defaults = %+v", def)
	}
	if _, err := d.Open(struct{}{}, env(t)); err == nil {
		t.Error("Open accepted a foreign config type")
	}
	for _, tc := range []struct {
		name, wantKey string
		mod           func(*fias.Config)
	}{
		{"no address", "address", func(c *fias.Config) {}},
		{"both", "listen", func(c *fias.Config) { c.Address, c.Listen = "h:1", ":2" }},
		{"bad address", "address", func(c *fias.Config) { c.Address = "lockserver" }},
		{"bad workstation", "workstation", func(c *fias.Config) { c.Address, c.Workstation = "h:1", "1|2" }},
		{"empty encoder station", "encoder_station", func(c *fias.Config) { c.Address, c.EncoderStation = "h:1", "" }},
		{"zero keepalive", "keepalive", func(c *fias.Config) { c.Address, c.Keepalive = "h:1", 0 }},
		{"reconnect range", "reconnect_max", func(c *fias.Config) { c.Address, c.ReconnectMax = "h:1", 1 }},
		{"time zone", "time_zone", func(c *fias.Config) { c.Address, c.TimeZone = "h:1", "Mars/Olympus" }},
		{"departure format", "departure_time_format", func(c *fias.Config) { c.Address, c.DepartureTimeFormat = "h:1", "H" }},
		{"allow_from when dialling", "allow_from", func(c *fias.Config) { c.Address, c.AllowFrom = "h:1", []string{"10.0.0.1"} }},
		{"allow_from not an address", "allow_from", func(c *fias.Config) { c.Listen, c.AllowFrom = ":1", []string{"10.0.0.1", "lockserver"} }},
		{"allow_from bad prefix", "allow_from", func(c *fias.Config) { c.Listen, c.AllowFrom = ":1", []string{"10.0.5.0/33"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fias.DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantKey+":") {
				t.Errorf("Validate = %v, want an error about %s", err, tc.wantKey)
			}
		})
	}
	c := fias.DefaultConfig()
	c.Address = "lock:5010"
	if err := c.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestConfigFromTOML(t *testing.T) {
	d, _ := keys.Lookup("fias")
	cfg := d.NewConfig()
	md, err := toml.Decode(`
address = "10.0.0.5:5010"
workstation = "FO1"
encoder_station = "3"
keepalive = "30s"
always_new_key = true
time_zone = "Europe/Prague"
departure_time_format = "HH:MM"
connect_timeout = "5s"
reconnect_min = "500ms"
reconnect_max = "1m"
`, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("keys the config does not know: %v", u)
	}
	c := cfg.(*fias.Config)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := fias.Config{
		Address: "10.0.0.5:5010", Workstation: "FO1", EncoderStation: "3",
		Keepalive: keys.Duration(30 * time.Second), AlwaysNewKey: true, TimeZone: "Europe/Prague",
		DepartureTimeFormat: "HH:MM", ConnectTimeout: keys.Duration(5 * time.Second),
		ReconnectMin: keys.Duration(500 * time.Millisecond), ReconnectMax: keys.Duration(time.Minute),
		// The serial line settings keep their defaults, unused.
		Settings: fias.DefaultConfig().Settings,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("decoded %+v, want %+v", *c, want)
	}
}

// TestKCFromKeyCutter: an encoder that takes KC from each request serves
// every key coder of the lock system over its one link, and refuses a
// request without a key cutter identifier.
func TestKCFromKeyCutter(t *testing.T) {
	e, lock := start(t, pmsDials, fiastest.Options{}, func(c *fias.Config) { c.KCFromKeyCutter = true })
	for _, kc := range []string{"2", "3"} {
		req := request()
		req.KeyCutterID = kc
		if _, err := e.Issue(ctxT(t), req); err != nil {
			t.Fatalf("Issue for KC %s: %v", kc, err)
		}
		if got := lastOf(t, lock, "KR").Get("KC"); got != kc {
			t.Errorf("KR KC = %q, want %q", got, kc)
		}
	}
	if n := lock.Connects(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	_, err := e.Issue(ctxT(t), request())
	wantError(t, err, "the key cutter has no identifier in Mews; set it to the lock system's key coder (KC)", false)
	if n := fiastest.Count(lock.Received(), "KR"); n != 2 {
		t.Errorf("%d KR sent, want 2", n)
	}
}
