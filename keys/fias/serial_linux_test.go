package fias_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/fias"
	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/keys/ptytest"
)

// startSerial connects an encoder to a simulated lock system over a
// serial cable and waits for the link.
func startSerial(t *testing.T, mod func(*fias.Config)) (*fias.Encoder, *fiastest.Lock, *ptytest.Cable) {
	t.Helper()
	c := ptytest.New(t)
	lock := fiastest.Serve(c.Plug(), fiastest.Options{})
	t.Cleanup(func() { lock.Close() })
	cfg := testConfig()
	cfg.Serial = c.Path
	if mod != nil {
		mod(&cfg)
	}
	e := open(t, cfg)
	if err := e.WaitLink(ctxT(t), true); err != nil {
		t.Fatalf("link did not come up over %s: %v", c.Path, err)
	}
	return e, lock, c
}

func TestSerialLinkStartKeyRequestKeepAlive(t *testing.T) {
	e, lock, c := startSerial(t, func(cfg *fias.Config) { cfg.Keepalive = keys.Duration(100 * time.Millisecond) })
	ctx := ctxT(t)
	res, err := e.Issue(ctx, request())
	if err != nil {
		t.Fatalf("Issue over serial: %v", err)
	}
	if len(res.Keys) != 2 || !strings.HasPrefix(res.Keys[0].ID, "SIM") {
		t.Errorf("keys = %+v, want the 2 serials the lock answered", res.Keys)
	}
	// The link start, the request, then a keep-alive LS after a quiet
	// keepalive, answered, on the same port.
	if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "LS") >= 2 }); err != nil {
		t.Fatalf("no keep-alive LS: %v", err)
	}
	if got := types(lock.Received()); len(got) < 3 || got[0] != "LS" || got[1] != "LA" {
		t.Errorf("PMS sent %v, want LS, LA first", got)
	}
	if h := e.Health(ctx); !h.OK {
		t.Errorf("health = %+v after a keep-alive", h)
	}
	if n := lock.Connects(); n != 1 {
		t.Errorf("the port was opened %d times, want 1 (%s)", n, c.Path)
	}
}

// TestSerialPortVanishes: an adapter unplugged mid-request is a link down;
// the request fails cleanly, health says the port is gone, and the link
// comes back when the adapter does.
func TestSerialPortVanishes(t *testing.T) {
	e, lock, c := startSerial(t, nil)
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
	lock.DropLink() // closes the master: the port is gone
	wantError(t, <-done, "link to lock system lost while waiting for its answer", true)
	if err := e.WaitHealth(ctx, func(h keys.Health) bool { return strings.Contains(h.Detail, "cannot open "+c.Path) }); err != nil {
		t.Fatalf("health %+v never said the port cannot be opened: %v", e.Health(ctx), err)
	}

	lock.Attach(c.Plug())
	if err := e.WaitLink(ctx, true); err != nil {
		t.Fatalf("link did not come back when the port did: %v", err)
	}
	if _, err := e.Issue(ctx, request()); err != nil {
		t.Fatalf("request after the port came back: %v", err)
	}
}

// TestSerialPortBusy: a port another program holds keeps the link down,
// and health says so; once the program lets go, the link comes up.
func TestSerialPortBusy(t *testing.T) {
	c := ptytest.New(t)
	lock := fiastest.Serve(c.Plug(), fiastest.Options{})
	t.Cleanup(func() { lock.Close() })
	release := ptytest.Hold(t, c.Path)
	cfg := testConfig()
	cfg.Serial = c.Path
	e := open(t, cfg)
	ctx := ctxT(t)
	want := "lock system link down: cannot open " + c.Path + ": the port is busy"
	if err := e.WaitHealth(ctx, func(h keys.Health) bool { return strings.HasPrefix(h.Detail, want) }); err != nil {
		t.Fatalf("health %+v never said %q: %v", e.Health(ctx), want, err)
	}
	release()
	if err := e.WaitLink(ctx, true); err != nil {
		t.Fatalf("link did not come up once the port was free: %v", err)
	}
}

// TestSerialReloadHandsThePortOver: an encoder opened on a port its
// predecessor still has (a config reload) waits for it, says so, and takes
// the port when the predecessor closes.
func TestSerialReloadHandsThePortOver(t *testing.T) {
	old, _, c := startSerial(t, nil)
	cfg := testConfig()
	cfg.Serial = c.Path
	successor := open(t, cfg)
	ctx := ctxT(t)
	want := "lock system link down: waiting for " + c.Path + ", which another encoder of this daemon has open"
	if err := successor.WaitHealth(ctx, func(h keys.Health) bool { return strings.HasPrefix(h.Detail, want) }); err != nil {
		t.Fatalf("health %+v never said %q: %v", successor.Health(ctx), want, err)
	}
	if h := old.Health(ctx); !h.OK {
		t.Errorf("the old encoder's link went down: %+v", h)
	}
	old.Close()
	if err := successor.WaitLink(ctx, true); err != nil {
		t.Fatalf("the successor's link did not come up: %v", err)
	}
	if _, err := successor.Issue(ctx, request()); err != nil {
		t.Fatalf("Issue on the successor: %v", err)
	}
}

func TestSerialPortMissing(t *testing.T) {
	cfg := testConfig()
	cfg.Serial = filepath.Join(t.TempDir(), "ttyUSB7")
	cfg.ConnectTimeout = keys.Duration(50 * time.Millisecond)
	e := open(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	want := "lock system link down: cannot open " + cfg.Serial + ": no such port"
	if err := e.WaitHealth(ctx, func(h keys.Health) bool { return strings.HasPrefix(h.Detail, want) }); err != nil {
		t.Fatalf("health %+v never said %q: %v", e.Health(ctx), want, err)
	}
	_, err := e.Issue(ctxT(t), request())
	wantError(t, err, "lock system offline", false)
}
