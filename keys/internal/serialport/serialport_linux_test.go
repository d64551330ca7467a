package serialport_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/internal/serialport"
	"github.com/mews-keyd/mews-keyd/keys/ptytest"
)

// ptyPair returns the master end of a pseudo-terminal pair and the path
// of the other end, which stands in for a serial port.
func ptyPair(t *testing.T) (*os.File, string) {
	c := ptytest.New(t)
	return c.Plug(), c.Path
}

func config(path string) serialport.Settings {
	c := serialport.Defaults()
	c.Serial = path
	return c
}

func TestOpenCarriesBytesBothWays(t *testing.T) {
	master, path := ptyPair(t)
	p, err := serialport.Open(t.Context(), config(path))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(master, got); err != nil || string(got) != "ping" {
		t.Fatalf("master read %q, %v; want ping", got, err)
	}
	if _, err := master.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(p, got); err != nil || string(got) != "pong" {
		t.Fatalf("port read %q, %v; want pong", got, err)
	}
}

func TestReadDeadline(t *testing.T) {
	_, path := ptyPair(t)
	p, err := serialport.Open(t.Context(), config(path))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestCloseEndsAWaitingRead(t *testing.T) {
	_, path := ptyPair(t)
	p, err := serialport.Open(t.Context(), config(path))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := p.Read(make([]byte, 1))
		done <- err
	}()
	p.Close()
	if err := <-done; err == nil {
		t.Fatal("read on a closed port succeeded")
	}
}

func TestVanishedPortFailsTheRead(t *testing.T) {
	master, path := ptyPair(t)
	p, err := serialport.Open(t.Context(), config(path))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	master.Close() // the adapter is unplugged
	if _, err := p.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a vanished port succeeded")
	}
}

func TestBusyPortSaysSo(t *testing.T) {
	_, path := ptyPair(t)
	release := ptytest.Hold(t, path)
	_, err := serialport.Open(t.Context(), config(path))
	if err == nil || !strings.Contains(err.Error(), "busy") || !strings.Contains(err.Error(), path) {
		t.Fatalf("open of a port another program has: %v; want it to say %s is busy", err, path)
	}
	release()
	p, err := serialport.Open(t.Context(), config(path))
	if err != nil {
		t.Fatalf("open after the other program closed it: %v", err)
	}
	p.Close()
}

// TestOpenWaitsForThisProcess: a port open in this process is waited for,
// not refused: an encoder and its successor share it during a reload.
func TestOpenWaitsForThisProcess(t *testing.T) {
	_, path := ptyPair(t)
	first, err := serialport.Open(t.Context(), config(path))
	if err != nil {
		t.Fatal(err)
	}
	if !serialport.Held(path) {
		t.Error("Held = false for an open port")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := serialport.Open(ctx, config(path)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second open = %v, want it to wait until its context ends", err)
	}
	got := make(chan error, 1)
	go func() {
		p, err := serialport.Open(t.Context(), config(path))
		if err == nil {
			p.Close()
		}
		got <- err
	}()
	first.Close()
	first.Close() // a second Close gives the turn back only once
	if err := <-got; err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	if serialport.Held(path) {
		t.Error("Held = true after every opener closed")
	}
}

func TestMissingPortSaysSo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyUSB9")
	_, err := serialport.Open(t.Context(), config(path))
	if err == nil || !strings.Contains(err.Error(), "no such port") || !strings.Contains(err.Error(), path) {
		t.Fatalf("open: %v; want it to say there is no such port", err)
	}
}

func TestPermissionDeniedNamesTheGroupAndTheUnit(t *testing.T) {
	// Root opens any file, so the error is made as open(2) returns it.
	err := &serialport.OpenError{Port: "/dev/ttyUSB0", Err: &fs.PathError{Op: "open", Path: "/dev/ttyUSB0", Err: syscall.EACCES}}
	for _, want := range []string{"/dev/ttyUSB0", "permission denied", "dialout", "PrivateDevices=no", "DeviceAllow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

func TestPermissionDeniedOnARealFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root opens files without permission; TestPermissionDeniedNamesTheGroupAndTheUnit covers the words")
	}
	path := filepath.Join(t.TempDir(), "ttyS0")
	if err := os.WriteFile(path, nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err := serialport.Open(t.Context(), config(path))
	if err == nil || !strings.Contains(err.Error(), "dialout") {
		t.Fatalf("open: %v; want it to name the dialout group", err)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	c := serialport.Settings{Baud: 0, DataBits: 9, Parity: "mark", StopBits: 3}
	errs := c.Validate()
	var all []string
	for _, e := range errs {
		all = append(all, e.Error())
	}
	for _, key := range []string{"baud:", "data_bits:", "parity:", "stop_bits:"} {
		if !strings.Contains(strings.Join(all, "\n"), key) {
			t.Errorf("no error for %s in %q", key, all)
		}
	}
	d := serialport.Defaults()
	if errs := d.Validate(); len(errs) != 0 {
		t.Errorf("defaults: %v", errs)
	}
}
