package salto_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/ptytest"
	"github.com/mews-keyd/mews-keyd/keys/salto"
	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
)

// startSerial opens an encoder on a serial cable to a fresh simulated
// interface, and returns the cable and the master end the interface
// serves, whose Close unplugs the cable.
func startSerial(t *testing.T) (*salto.Encoder, *saltotest.Interface, *ptytest.Cable, *os.File) {
	t.Helper()
	c := ptytest.New(t)
	master := c.Plug()
	sim := saltotest.Serve(master, saltotest.Options{})
	t.Cleanup(func() { sim.Close() })
	cfg := testConfig()
	cfg.Serial = c.Path
	e, err := salto.New(cfg, env(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e, sim, c, master
}

func TestSerialIssueWithNAKAndResend(t *testing.T) {
	e, sim, _, _ := startSerial(t)
	sim.SetNAK(1)
	res, err := e.Issue(ctxT(t), request())
	if err != nil {
		t.Fatalf("Issue over serial: %v", err)
	}
	if res.Note == "" {
		t.Errorf("no note in %+v", res)
	}
	recs := sim.Received()
	if len(recs) != 2 || !recs[0].Refused || recs[1].Refused || sim.ENQs() != 1 {
		t.Fatalf("received %d messages, %d ENQs; want the message, NAK, ENQ, the message again", len(recs), sim.ENQs())
	}
	if recs[1].Command() != "CN" {
		t.Errorf("command = %q, want CN", recs[1].Command())
	}
	if h := e.Health(ctxT(t)); !h.OK || h.Detail != "Salto interface ready" {
		t.Errorf("Health over serial = %+v", h)
	}
}

// TestSerialPortVanishesMidRequest: a cable pulled while the request waits
// for Salto's ACK fails that request at once, saying no key was made; the
// next request, with the cable back, goes through.
func TestSerialPortVanishesMidRequest(t *testing.T) {
	e, sim, c, master := startSerial(t)
	sim.SetMode(saltotest.ModeNoAck)
	ctx := ctxT(t)
	done := make(chan error, 1)
	go func() {
		_, err := e.Issue(ctx, request())
		done <- err
	}()
	if err := sim.Wait(ctx, func(rs []saltotest.Record) bool { return len(rs) == 1 }); err != nil {
		t.Fatal(err)
	}
	master.Close()
	err := <-done
	if err == nil || keys.MaybeCut(err) || !strings.HasSuffix(keys.Message(err), "no key was made") {
		t.Fatalf("Issue = %v, want a failure that says no key was made", err)
	}
	sim.SetMode(saltotest.ModeOK)
	sim.Attach(c.Plug())
	if _, err := e.Issue(ctx, request()); err != nil {
		t.Fatalf("Issue with the cable back: %v", err)
	}
}

func TestSerialPortBusy(t *testing.T) {
	e, _, c, _ := startSerial(t)
	ptytest.Hold(t, c.Path)
	want := "cannot open " + c.Path + ": the port is busy"
	if h := e.Health(ctxT(t)); h.OK || !strings.Contains(h.Detail, want) {
		t.Errorf("Health = %+v, want it to say %q", h, want)
	}
	_, err := e.Issue(ctxT(t), request())
	if err == nil || !strings.Contains(keys.Message(err), want) || keys.MaybeCut(err) {
		t.Errorf("Issue = %v, want %q and no card made", err, want)
	}
}

func TestSerialPortMissing(t *testing.T) {
	cfg := testConfig()
	cfg.Serial = filepath.Join(t.TempDir(), "ttyUSB3")
	e, err := salto.New(cfg, env(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	want := "cannot open " + cfg.Serial + ": no such port"
	if h := e.Health(ctxT(t)); h.OK || !strings.Contains(h.Detail, want) {
		t.Errorf("Health = %+v, want it to say %q", h, want)
	}
}

// TestSerialPortSharedByTwoEncoders: two encoders of one daemon on the same
// port, as an encoder and its successor are while a config reload drains
// the old one, take the port in turn rather than refuse each other.
func TestSerialPortSharedByTwoEncoders(t *testing.T) {
	first, sim, c, _ := startSerial(t)
	cfg := testConfig()
	cfg.Serial = c.Path
	second, err := salto.New(cfg, env(t))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// The first request holds the port while Salto waits for the card.
	sim.SetDelay(300 * time.Millisecond)
	ctx := ctxT(t)
	done := make(chan error, 2)
	go func() {
		_, err := first.Issue(ctx, request())
		done <- err
	}()
	if err := sim.Wait(ctx, func(rs []saltotest.Record) bool { return len(rs) == 1 }); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := second.Issue(ctx, request())
		done <- err
	}()
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("Issue: %v", err)
		}
	}
	if n, peak := len(sim.Received()), sim.Peak(); n != 2 || peak != 1 {
		t.Errorf("Salto received %d messages, %d at once; want 2, one at a time", n, peak)
	}
}
