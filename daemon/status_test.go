package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/daemontest"
	"github.com/mews-keyd/mews-keyd/daemon/status"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestHealthAndMetricsOfARunningDaemon scrapes /healthz and /metrics of a
// daemon connected to the simulator, before and after a key is cut, and
// while Mews is unreachable.
func TestHealthAndMetricsOfARunningDaemon(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	text := fmt.Sprintf(`
%s
[daemon]
state_dir = %q
status_listen = "127.0.0.1:0"
%s
[[key_cutters]]
device_id = %q
encoder = "desk-1"
`, srv.MewsTOML(), t.TempDir(), encoders, mewstest.KeyCutter1.ID)
	encoded := make(chan daemon.Outcome, 1)
	d, err := daemontest.Start(text, daemon.Deps{Logger: zerolog.Nop(), Version: "9.9.9",
		OnEncoded: func(o daemon.Outcome) { encoded <- o }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	ctx := context.Background()
	// The catch-up poll follows the daemon's own view of being connected.
	wait(t, srv, func(s *mewstest.Server) bool {
		return s.RequestCount(mews.OpActiveCommands) > 0 && d.StatusAddr() != ""
	})
	addr := d.StatusAddr()

	snap := fetchHealth(t, addr, ctx)
	if snap.Status != status.StatusOK || !snap.WebSocket.Connected || snap.Version != "9.9.9" || len(snap.Encoders) != 2 {
		t.Errorf("healthy daemon reports %+v", snap)
	}

	id, err := srv.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationArriving, 1)
	if err != nil {
		t.Fatal(err)
	}
	<-encoded
	wait(t, srv, func(s *mewstest.Server) bool { c, _ := s.Command(id); return c.State.Final() })
	// The counters move just after Mews answers; scrape until they show
	// the command, as a monitoring system would.
	want := []string{
		`mews_keyd_events_total{type="DeviceCommand"}`,
		`mews_keyd_encode_duration_seconds_count{encoder="desk-1"} 1`,
		`mews_keyd_api_requests_total{op="commands/update",status="200"} 2`,
		`mews_keyd_commands_total{state="Processed"} 1`,
		`go_goroutines`,
	}
	poll(t, ctx, "metrics of the cut key", func() bool {
		metrics := get(t, "http://"+addr+"/metrics")
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				return false
			}
		}
		return true
	})

	// Mews goes away: the daemon says it is degraded and why.
	srv.RefuseUpgrades(1000, 503)
	srv.DropSockets()
	poll(t, ctx, "degraded health", func() bool {
		snap = fetchHealth(t, addr, ctx)
		return snap.Status == status.StatusDegraded
	})
	if !strings.Contains(strings.Join(snap.Reasons, ";"), "not connected to Mews") {
		t.Errorf("degraded reasons %v", snap.Reasons)
	}
}

func fetchHealth(t *testing.T, addr string, ctx context.Context) status.Snapshot {
	t.Helper()
	snap, err := status.Fetch(ctx, addr)
	if err != nil {
		t.Fatalf("fetch /healthz: %v", err)
	}
	return snap
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wait(t *testing.T, srv *mewstest.Server, cond func(*mewstest.Server) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Wait(ctx, cond); err != nil {
		t.Fatalf("wait: %v", err)
	}
}

// poll retries cond against an HTTP endpoint until it holds: the endpoint is
// observed from outside, like a monitoring system, with no event to wait on.
func poll(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
