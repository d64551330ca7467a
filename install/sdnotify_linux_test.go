package install

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func readDatagram(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyMessages(t *testing.T) {
	sockets := map[string]string{
		"path":     filepath.Join(t.TempDir(), "notify"),
		"abstract": fmt.Sprintf("@mews-keyd-test-%d", os.Getpid()),
	}
	for name, addr := range sockets {
		t.Run(name, func(t *testing.T) {
			conn := listenNotify(t, addr)
			for _, tt := range []struct {
				send func() error
				want string
			}{
				{Ready, "READY=1"},
				{Watchdog, "WATCHDOG=1"},
				{Stopping, "STOPPING=1"},
				{func() error { return SetStatus("connected to Mews") }, "STATUS=connected to Mews"},
			} {
				if err := tt.send(); err != nil {
					t.Fatal(err)
				}
				if got := readDatagram(t, conn); got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// RELOADING=1 carries the moment on the monotonic clock, as sd_notify(3)
// asks.
func TestNotifyReloading(t *testing.T) {
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	if err := Reloading(); err != nil {
		t.Fatal(err)
	}
	got := readDatagram(t, conn)
	usec, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
	if n, err := strconv.ParseInt(usec, 10, 64); !ok || err != nil || n <= 0 {
		t.Errorf("got %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
}

func TestNotifyWithoutSocketDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
}

// The watchdog is only fed while the daemon says it is healthy: the first
// ping must come after the first healthy answer.
func TestWatchdogLoopPingsOnlyWhenHealthy(t *testing.T) {
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	t.Setenv("WATCHDOG_USEC", "2000")
	t.Setenv("WATCHDOG_PID", "")

	var calls atomic.Int32
	healthy := func() bool { return calls.Add(1) > 3 }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- WatchdogLoop(ctx, healthy) }()

	if got := readDatagram(t, conn); got != "WATCHDOG=1" {
		t.Errorf("got %q", got)
	}
	if n := calls.Load(); n < 4 {
		t.Errorf("pinged after %d health checks; the first 3 were unhealthy", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"30000000", "", 15 * time.Second, true},
		{"30000000", "42", 15 * time.Second, true},
		{"30000000", "7", 0, false},
		{"", "", 0, false},
		{"0", "", 0, false},
		{"abc", "", 0, false},
	}
	for _, tt := range tests {
		got, ok := watchdogInterval(tt.usec, tt.pid, 42)
		if got != tt.want || ok != tt.ok {
			t.Errorf("watchdogInterval(%q, %q) = %v, %v; want %v, %v", tt.usec, tt.pid, got, ok, tt.want, tt.ok)
		}
	}
}

func TestWatchdogLoopWithoutWatchdogReturns(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if err := WatchdogLoop(context.Background(), func() bool { return true }); err != nil {
		t.Fatal(err)
	}
}
