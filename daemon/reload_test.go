package daemon_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

func (h *harness) reload(extra string) error {
	h.t.Helper()
	cfg, _, err := config.Parse("test.toml", []byte(configText(h.srv, h.dir, extra)), func(string) string { return "" })
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return h.d.Reload(ctx, cfg)
}

func (h *harness) encoderOf(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range h.outcomes {
		if o.CommandID == id {
			return o.Encoder
		}
	}
	return ""
}

// TestReloadChangesEncodersWithoutDroppingTheSocket: a new key cutter and a
// new encoder take effect at once, a changed encoder is replaced, and the
// WebSocket stays up throughout.
func TestReloadChangesEncodersWithoutDroppingTheSocket(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	before := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(before)

	if err := h.reload(`
[[encoders]]
name = "desk-1"
driver = "sim"
timeout = "5s"
delay = "5ms"

[[encoders]]
name = "lobby"
driver = "sim"
timeout = "5s"
delay = "5ms"

[[key_cutters]]
identifier = "frontdesk-2"
encoder = "lobby"
`); err != nil {
		t.Fatalf("reload: %v", err)
	}
	a := h.cut(mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 1)
	b := h.cut(mewstest.KeyCutter2, mewstest.ReservationLongStay, 1)
	h.waitFinal(a, b)
	assertState(t, srv, a, mews.CommandProcessed, "")
	assertState(t, srv, b, mews.CommandProcessed, "")
	if got := h.encoderOf(b); got != "lobby" {
		t.Errorf("KeyCutter2's command went to %q, want the new encoder lobby", got)
	}
	// The key cutters changed: Mews asks for a fresh connection.
	h.waitFor("the WebSocket renewed", func(s *mewstest.Server) bool { return len(s.Handshakes()) == 2 && s.Sockets() == 1 })
	if !strings.Contains(h.logs.String(), `"encoders_retired":["desk-1","desk-2"]`) {
		t.Errorf("reload log does not name the retired encoders:\n%s", h.logs.String())
	}
}

// TestReloadWithAnUnusableEncoderKeepsTheRunningConfig: an encoder that
// cannot be opened rejects the whole reload.
func TestReloadWithAnUnusableEncoderKeepsTheRunningConfig(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), "")
	err := h.reload(`
[[encoders]]
name = "desk-1"
driver = "exec"
command = ["/nonexistent/vendor-encoder"]
`)
	if err == nil {
		t.Fatal("reload with a missing encoder program succeeded")
	}
	id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandProcessed, "")
	if got := h.encoderOf(id); got != "desk-1" {
		t.Errorf("command went to %q", got)
	}
}

// TestReloadReplacesAnEncoderOnlyAfterItsQueue: a changed encoder's new
// station waits for the old one to finish its queue, so the encoder never
// has two cards at once; the WebSocket stays up (no key cutter changed).
func TestReloadReplacesAnEncoderOnlyAfterItsQueue(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := start(t, srv, t.TempDir(), slowDesk)
	var ids []string
	for _, r := range []string{mewstest.ReservationArriving, mewstest.ReservationCheckedIn} {
		ids = append(ids, h.cut(mewstest.KeyCutter1, r, 1))
	}
	h.waitLog("both commands queued", func(logs string) bool {
		return logLine(logs, ids[0], "key command queued") && logLine(logs, ids[1], "key command queued")
	})
	if err := h.reload(strings.Replace(slowDesk, `"400ms"`, `"300ms"`, 1)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, r := range []string{mewstest.ReservationLongStay, mewstest.ReservationArriving} {
		ids = append(ids, h.cut(mewstest.KeyCutter1, r, 1))
	}
	h.waitFinal(ids...)

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.outcomes) != len(ids) {
		t.Fatalf("%d encodes for %d commands", len(h.outcomes), len(ids))
	}
	for i, a := range h.outcomes {
		for k, b := range h.outcomes[i+1:] {
			aStart, bStart := h.ended[i].Add(-a.Duration), h.ended[i+1+k].Add(-b.Duration)
			if aStart.Before(h.ended[i+1+k]) && bStart.Before(h.ended[i]) {
				t.Errorf("cards %s and %s were in encoder desk-1 at the same time", a.CommandID, b.CommandID)
			}
		}
	}
	if n := len(srv.Handshakes()); n != 1 {
		t.Errorf("%d WebSocket handshakes, want 1: only a key cutter change renews the connection", n)
	}
}
