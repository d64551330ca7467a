package status

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// daemonHealth is what the daemon would report; a plain value.
type daemonHealth struct{ snap Snapshot }

func (d daemonHealth) Health() Snapshot { return d.snap }

func healthySnapshot() Snapshot {
	return Snapshot{
		Version:   "1.2.3",
		WebSocket: WebSocketHealth{Connected: true, Since: time.Now().Add(-time.Hour), LastEvent: time.Now().Add(-10 * time.Second)},
		Encoders:  []EncoderHealth{{Name: "frontdesk", OK: true}},
		Journal:   JournalHealth{OK: true, OpenCommands: 2},
	}
}

// serve runs a status server on a loopback port until the test ends.
func serve(t *testing.T, src Source, reg *prometheus.Registry) string {
	t.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	srv, err := NewServer("127.0.0.1:0", false, src, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv.Addr()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHealthzOK(t *testing.T) {
	addr := serve(t, daemonHealth{healthySnapshot()}, nil)
	code, body := get(t, "http://"+addr+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, body)
	}
	for _, want := range []string{`"status":"ok"`, `"connected":true`, `"outbox_depth":0`, `"name":"frontdesk"`, `"last_event_age_seconds":1`} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s: %s", want, body)
		}
	}
	snap, err := Fetch(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Status != StatusOK || snap.Version != "1.2.3" || snap.Journal.OpenCommands != 2 {
		t.Errorf("fetched %+v", snap)
	}
}

func TestHealthzDegraded(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(*Snapshot)
		reason string
	}{
		{"websocket down", func(s *Snapshot) { s.WebSocket.Connected = false }, "not connected to Mews"},
		{"encoder down", func(s *Snapshot) { s.Encoders[0] = EncoderHealth{Name: "frontdesk", Detail: "lock system offline"} }, "encoder frontdesk: lock system offline"},
		{"journal failing", func(s *Snapshot) { s.Journal = JournalHealth{Detail: "disk full"} }, "journal: disk full"},
		{"reload rejected", func(s *Snapshot) { s.ReloadRejected = "config.toml:9: typo: unknown table" },
			"configuration reload rejected, the previous configuration runs on: config.toml:9: typo: unknown table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := healthySnapshot()
			tt.break_(&snap)
			addr := serve(t, daemonHealth{snap}, nil)
			if code, body := get(t, "http://"+addr+"/healthz"); code != http.StatusServiceUnavailable {
				t.Fatalf("HTTP %d, want 503: %s", code, body)
			}
			got, err := Fetch(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != StatusDegraded || len(got.Reasons) != 1 || got.Reasons[0] != tt.reason {
				t.Errorf("status %q reasons %q, want degraded [%q]", got.Status, got.Reasons, tt.reason)
			}
		})
	}
}

func TestNewServerRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9466", ":9466", "192.0.2.10:9466", "[::]:9466", "example.com:9466", "9466"} {
		if srv, err := NewServer(addr, false, daemonHealth{}, prometheus.NewRegistry(), zerolog.Nop()); err == nil {
			srv.ln.Close()
			t.Errorf("NewServer(%q) accepted a non-loopback address", addr)
		}
	}
}

func TestMetricsScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Event("DeviceCommand")
	m.CommandFinished("Processed")
	m.ObserveEncode("frontdesk", 1500*time.Millisecond)
	m.APIRequest("commands/getAllByIds", 200)
	m.APIRequest("commands/update", 0)
	m.Reconnect()
	m.SetOutboxDepth(3)

	addr := serve(t, daemonHealth{healthySnapshot()}, reg)
	code, body := get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	for _, want := range []string{
		`mews_keyd_events_total{type="DeviceCommand"} 1`,
		`mews_keyd_commands_total{state="Processed"} 1`,
		`mews_keyd_encode_duration_seconds_bucket{encoder="frontdesk",le="2.5"} 1`,
		`mews_keyd_api_requests_total{op="commands/getAllByIds",status="200"} 1`,
		`mews_keyd_api_requests_total{op="commands/update",status="error"} 1`,
		`mews_keyd_reconnects_total 1`,
		`mews_keyd_outbox_depth 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func TestFetchRejectsOtherServers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"not found", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }},
		{"not json", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<html>router login</html>") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := httptest.NewServer(tt.handler)
			defer other.Close()
			if _, err := Fetch(context.Background(), other.Listener.Addr().String()); err == nil {
				t.Error("Fetch accepted an answer that is not a mews-keyd status")
			}
		})
	}
}

func TestSummary(t *testing.T) {
	snap := healthySnapshot()
	snap.Encoders = append(snap.Encoders, EncoderHealth{Name: "mobile", Detail: "vendor API unreachable", Queue: 3})
	snap.OutboxDepth = 4
	snap.complete(time.Now())
	got := Summary(snap)
	for _, want := range []string{
		"status:    degraded",
		"- encoder mobile: vendor API unreachable",
		"mews:      connected since ",
		", last event 10s ago",
		"encoder:   frontdesk ok",
		"encoder:   mobile FAILING: vendor API unreachable, 3 card(s) queued",
		"journal:   ok, 2 open command(s)",
		"outbox:    4 update(s) waiting for Mews",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}
