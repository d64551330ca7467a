package ptytest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Cable is a serial cable to a simulated lock system. Its Path is a
// symbolic link like the ones udev makes for USB adapters, so that an
// adapter plugged in again gets a new device behind the same name.
type Cable struct {
	t    testing.TB
	Path string
}

// New returns a cable with nothing plugged in: Path does not exist yet.
func New(t testing.TB) *Cable {
	return &Cable{t: t, Path: filepath.Join(t.TempDir(), "ttyUSB0")}
}

// Plug makes a new pseudo-terminal pair the device behind Path and returns
// its master end, whose Close is the cable pulled out: the driver's reads
// fail. The test holds the other end open until it ends, so that the
// master does not see a hangup each time the driver closes the port.
func (c *Cable) Plug() *os.File {
	c.t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		c.t.Fatalf("pty: %v", err)
	}
	c.t.Cleanup(func() { tty.Close() })
	tmp := c.Path + ".new"
	if err := os.Symlink(tty.Name(), tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, c.Path); err != nil {
		c.t.Fatal(err)
	}
	m := pollable(c.t, master)
	c.t.Cleanup(func() { m.Close() })
	return m
}

// pollable returns f as a file the runtime polls: pty.Open leaves the
// master in blocking mode, where Close waits for a Read under way to end
// and so never pulls the cable while the simulator reads.
func pollable(t testing.TB, f *os.File) *os.File {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "ptmx")
}

// Hold has the port at path open and locked, as another program would
// (picocom, a second mews-keyd), until the returned release is called or
// the test ends.
func Hold(t testing.TB, path string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return func() { f.Close() }
}
