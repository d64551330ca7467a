package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/internal/testaddr"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// Under systemd, stderr is the journal stream named by JOURNAL_STREAM. The
// error that stops the daemon before its logger exists (here: no config
// file) must be filed at priority 3, or `journalctl -p warning` hides why
// the service is down. A file stands in for the stream.
func TestFatalErrorIsAnErrorInTheJournal(t *testing.T) {
	dir := t.TempDir()
	stream, err := os.Create(filepath.Join(dir, "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	fi, err := stream.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))

	code := NewMain(io.Discard, stream).Run(context.Background(), []string{"run", "--config", filepath.Join(dir, "missing.toml")})
	if code != exitConfig {
		t.Errorf("exit %d, want %d", code, exitConfig)
	}
	got, err := os.ReadFile(stream.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "<3>mews-keyd: ") || !strings.Contains(string(got), "missing.toml") {
		t.Errorf("the journal got %q, want the reason at priority 3", got)
	}
}

// notifications reads what the daemon tells systemd, through a socket
// standing in for NOTIFY_SOCKET.
type notifications struct {
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifications {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return &notifications{conn: conn}
}

// next returns the next message; the daemon sends each one as it happens.
func (n *notifications) next(t *testing.T) string {
	t.Helper()
	n.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	k, err := n.conn.Read(buf)
	if err != nil {
		t.Fatalf("no message for systemd: %v", err)
	}
	return string(buf[:k])
}

// systemd 252 cannot wait for the outcome of `systemctl reload`: a rejected
// file must show at priority 3 (error), in `systemctl status` and in
// /healthz until a good reload, and the daemon tells systemd when it is
// reloading (RELOADING=1, then READY=1).
func TestRejectedReloadIsVisible(t *testing.T) {
	notify := listenNotify(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	statusAddr := testaddr.Free(t)
	write := func(extra string) {
		text := fmt.Sprintf(runConfig, srv.MewsTOML(), filepath.Join(dir, "state"), mewstest.KeyCutter1.ID, extra)
		text = strings.Replace(text, "[daemon]\n", fmt.Sprintf("[daemon]\nstatus_listen = %q\n", statusAddr), 1)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	healthz := func() string {
		resp, err := http.Get("http://" + statusAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(body)
	}
	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
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
	if m := notify.next(t); m != "READY=1" {
		t.Fatalf("first message %q, want READY=1", m)
	}

	write("\n[typo]\nlevel = \"debug\"\n")
	hup()
	if m := notify.next(t); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("message %q, want RELOADING=1 with MONOTONIC_USEC", m)
	}
	if m := notify.next(t); !strings.HasPrefix(m, "STATUS=configuration reload rejected") || !strings.Contains(m, "typo: unknown table") {
		t.Errorf("message %q, want a status naming the rejected file's error", m)
	}
	if m := notify.next(t); m != "READY=1" {
		t.Errorf("message %q, want READY=1: the old configuration runs on", m)
	}
	logs.waitFor(t, `"level":"error"`, "new configuration rejected", "typo: unknown table")
	if h := healthz(); !strings.Contains(h, "configuration reload rejected") || !strings.Contains(h, "typo: unknown table") {
		t.Errorf("/healthz does not show the rejected reload: %s", h)
	}

	write("")
	hup()
	for _, want := range []string{"RELOADING=1", "STATUS=", "READY=1"} {
		if m := notify.next(t); !strings.HasPrefix(m, want) || (want == "STATUS=" && m != want) {
			t.Errorf("message %q, want %q", m, want)
		}
	}
	logs.waitFor(t, "configuration reloaded")
	if h := healthz(); strings.Contains(h, "rejected") {
		t.Errorf("/healthz still shows a rejected reload after a good one: %s", h)
	}
}
