package mews_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// TestWSReconnectOnRequest: Reconnect closes the live connection and opens
// a new one at once, without the backoff a failure costs.
func TestWSReconnectOnRequest(t *testing.T) {
	srv := newServer(t)
	cfg, logs := testConfig(t, srv.WSURL())
	// A failure would wait a minute: only an immediate renewal passes.
	cfg.MinBackoff, cfg.MaxBackoff = time.Minute, time.Minute
	w := newClient(t, cfg)
	rec := newRecorder()
	start(t, w, rec.handler())
	awaitConnect(t, srv, rec, 1)

	w.Reconnect()
	if err := recv(t, rec.disconnects, "OnDisconnect"); !errors.Is(err, mews.ErrReconnectRequested) {
		t.Errorf("OnDisconnect(%v), want ErrReconnectRequested", err)
	}
	awaitConnect(t, srv, rec, 1)
	logs.waitLog(t, "reconnecting as asked")
	assertHandshakes(t, srv, 2)
	srv.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: "after-renewal", State: "Pending"})
	if ev := recv(t, rec.events, "event after renewal"); ev.ID != "after-renewal" {
		t.Errorf("event = %q, want after-renewal", ev.ID)
	}
}
