//go:build !windows

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// lineWatch is the daemon's log output; tests wait for a line to appear.
type lineWatch struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLineWatch() *lineWatch { return &lineWatch{changed: make(chan struct{})} }

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return n, err
}

// waitFor blocks until the output contains every part, in one line.
func (w *lineWatch) waitFor(t *testing.T, parts ...string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		w.mu.Lock()
		text, changed := w.buf.String(), w.changed
		w.mu.Unlock()
		for _, line := range strings.Split(text, "\n") {
			if containsAll(line, parts) {
				return
			}
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no log line with %q; log:\n%s", parts, text)
		}
	}
}

const runConfig = `
%s
[daemon]
state_dir = %q

[log]
format = "json"

[[encoders]]
name = "desk-1"
driver = "sim"
delay = "5ms"

[[key_cutters]]
device_id = %q
encoder = "desk-1"
%s`

// TestRunReloadsOnSIGHUP runs the real command line and sends it SIGHUP:
// a broken file is rejected with its line, a good one adds a key cutter,
// and the WebSocket is never dropped.
func TestRunReloadsOnSIGHUP(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	write := func(extra string) {
		text := fmt.Sprintf(runConfig, srv.MewsTOML(),
			filepath.Join(dir, "state"), mewstest.KeyCutter1.ID, extra)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	logs := newLineWatch()
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() { code <- NewMain(logs, logs).Run(ctx, []string{"run", "--config", path}) }()
	defer func() {
		cancel()
		if c := <-code; c != exitOK {
			t.Errorf("run exited %d", c)
		}
	}()
	logs.waitFor(t, "connected to Mews")

	write("\n[[key_cutters]]\nidentifier = \"frontdesk-2\"\nencoder = \"desk-1\"\ncolour = \"blue\"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "new configuration rejected", "config.toml:27: key_cutters[1].colour: unknown key")

	write("\n[[key_cutters]]\nidentifier = \"frontdesk-2\"\nencoder = \"desk-1\"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "configuration reloaded")

	id, err := srv.CreateKeyCutterCommand(mewstest.KeyCutter2.ID, mewstest.ReservationArriving, 1)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := srv.Wait(wctx, func(s *mewstest.Server) bool { c, _ := s.Command(id); return c.State.Final() }); err != nil {
		t.Fatalf("command on the added key cutter: %v", err)
	}
	if c, _ := srv.Command(id); c.State != mews.CommandProcessed {
		t.Errorf("command on the added key cutter ended %s", c.State)
	}
	// A key cutter was added: the WebSocket is renewed once, as Mews asks.
	if err := srv.Wait(wctx, func(s *mewstest.Server) bool { return len(s.Handshakes()) == 2 && s.Sockets() == 1 }); err != nil {
		t.Errorf("%d handshakes after adding a key cutter, want 2: %v", len(srv.Handshakes()), err)
	}
}
