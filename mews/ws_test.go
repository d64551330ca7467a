package mews_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// waitFor bounds every wait on the client or the server; generous because
// the race detector on two shared cores is slow.
const waitFor = 10 * time.Second

var wantCookie = "ClientToken=" + mewstest.ClientToken + "; AccessToken=" + mewstest.AccessToken

// logSink collects the client's log lines and fails the test if a token
// ever appears in one.
type logSink struct {
	t     *testing.T
	lines chan string
}

func (s *logSink) Write(p []byte) (int, error) {
	line := string(p)
	for _, tok := range []string{mewstest.ClientToken, mewstest.AccessToken, "wrong-token"} {
		if strings.Contains(line, tok) {
			s.t.Errorf("token in log line: %s", line)
		}
	}
	select {
	case s.lines <- line:
	default: // nobody waits for the rest
	}
	return len(p), nil
}

// waitLog returns the first log line containing all of want.
func (s *logSink) waitLog(t *testing.T, want ...string) string {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case line := <-s.lines:
			if containsAll(line, want) {
				return line
			}
		case <-timeout:
			t.Fatalf("no log line with %q", want)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// recorder turns the handler callbacks into channels the test can wait on.
type recorder struct {
	connects    chan struct{}
	events      chan mews.Event
	disconnects chan error
}

func newRecorder() *recorder {
	return &recorder{
		connects:    make(chan struct{}, 100),
		events:      make(chan mews.Event, 1000),
		disconnects: make(chan error, 100),
	}
}

func (r *recorder) handler() mews.WSHandler {
	return mews.WSHandler{
		OnConnect: func() { r.connects <- struct{}{} },
		OnEvents: func(evs []mews.Event) {
			for _, ev := range evs {
				r.events <- ev
			}
		},
		OnDisconnect: func(err error) { r.disconnects <- err },
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// testConfig is fast enough for tests and slow enough that pings never
// fail by accident under the race detector.
func testConfig(t *testing.T, url string) (mews.WSConfig, *logSink) {
	sink := &logSink{t: t, lines: make(chan string, 100)}
	return mews.WSConfig{
		URL:          url,
		ClientToken:  mewstest.ClientToken,
		AccessToken:  mewstest.AccessToken,
		Logger:       zerolog.New(sink).Level(zerolog.DebugLevel),
		PingInterval: time.Second,
		PingTimeout:  5 * time.Second,
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   100 * time.Millisecond,
		AuthRetry:    time.Hour,
	}, sink
}

func newServer(t *testing.T) *mewstest.Server {
	srv := mewstest.NewServer(mewstest.WithoutFixtures())
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, cfg mews.WSConfig) *mews.WSClient {
	t.Helper()
	w, err := mews.NewWSClient(cfg)
	if err != nil {
		t.Fatalf("NewWSClient: %v", err)
	}
	return w
}

// start runs w until the test ends and checks that Run then returns nil.
func start(t *testing.T, w *mews.WSClient, h mews.WSHandler) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
	return stop
}

// awaitConnect waits for OnConnect and for the server to list the socket,
// so that a push that follows reaches it.
// connected runs a client (returned with its simulator, recorder and log) against a new simulator until it has connected
// once; tune, if not nil, adjusts the client's config first.
func connected(t *testing.T, tune func(*mews.WSConfig)) (*mewstest.Server, *mews.WSClient, *recorder, *logSink) {
	t.Helper()
	srv := newServer(t)
	cfg, sink := testConfig(t, srv.WSURL())
	if tune != nil {
		tune(&cfg)
	}
	w := newClient(t, cfg)
	rec := newRecorder()
	start(t, w, rec.handler())
	awaitConnect(t, srv, rec, 1)
	return srv, w, rec, sink
}

func awaitConnect(t *testing.T, srv *mewstest.Server, rec *recorder, sockets int) {
	t.Helper()
	recv(t, rec.connects, "OnConnect")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := srv.Wait(ctx, func(s *mewstest.Server) bool { return s.Sockets() == sockets }); err != nil {
		t.Fatalf("server never saw %d socket(s): %v", sockets, err)
	}
}

func assertNoDisconnect(t *testing.T, rec *recorder) {
	t.Helper()
	select {
	case err := <-rec.disconnects:
		t.Fatalf("unexpected disconnect: %v", err)
	default:
	}
}

func assertHandshakes(t *testing.T, srv *mewstest.Server, want int) []mewstest.Handshake {
	t.Helper()
	hs := srv.Handshakes()
	if len(hs) != want {
		t.Fatalf("handshakes = %d, want %d", len(hs), want)
	}
	return hs
}

func TestWSCookieAndEventsInOrder(t *testing.T) {
	srv, w, rec, _ := connected(t, nil)

	hs := assertHandshakes(t, srv, 1)
	if hs[0].Cookie != wantCookie {
		t.Errorf("Cookie header differs from the exact form Mews requires (length %d, want %d)", len(hs[0].Cookie), len(wantCookie))
	}
	if st := w.Status(); !st.Connected || st.Since.IsZero() || st.Reconnects != 0 {
		t.Errorf("Status after connect = %+v", st)
	}

	startUtc := time.Date(2025, 3, 1, 14, 0, 0, 0, time.FixedZone("CET", 3600))
	srv.PushEvents(
		mews.Event{Type: mews.EventDeviceCommand, ID: "c1", State: "Pending"},
		mews.Event{Type: mews.EventReservation, ID: "r1", State: "Started", StartUtc: &startUtc, AssignedResourceID: "room-1"},
	)
	srv.PushEvents(mews.Event{Type: mews.EventResource, ID: "res1", State: "Dirty"})

	var got []string
	for range 3 {
		ev := recv(t, rec.events, "event")
		got = append(got, ev.ID)
		if ev.ID == "r1" {
			if ev.StartUtc == nil || !ev.StartUtc.Equal(startUtc) || ev.StartUtc.Location() != time.UTC {
				t.Errorf("StartUtc = %v, want %v in UTC", ev.StartUtc, startUtc)
			}
			if ev.AssignedResourceID != "room-1" || ev.State != "Started" {
				t.Errorf("reservation event = %+v", ev)
			}
		}
	}
	if strings.Join(got, ",") != "c1,r1,res1" {
		t.Errorf("events in order %v, want c1,r1,res1", got)
	}
	if w.Status().LastEvent.IsZero() {
		t.Error("Status.LastEvent not set after events")
	}
}

func TestWSSkipsBadFramesAndKeepsConnection(t *testing.T) {
	srv, w, rec, sink := connected(t, nil)

	srv.PushRaw([]byte(`{"Events":[{"Type":"DeviceCommand","Id":`)) // truncated JSON
	srv.PushRaw([]byte(`not json at all`))
	srv.PushRaw([]byte(`["Events"]`))
	srv.PushRaw([]byte(`{"Something":"else"}`))
	srv.PushRaw([]byte(`{"Events":[{"Type":"Invoice","Id":"x1"}]}`))
	srv.PushRaw([]byte(`{"Events":[{"Type":"DeviceCommand","State":"Pending"}]}`))
	srv.PushBinary([]byte(`{"Events":[{"Type":"DeviceCommand","Id":"bin"}]}`))
	// One bad entry must not cost the good one beside it.
	srv.PushRaw([]byte(`{"Events":[{"Type":"Invoice","Id":"x2"},{"Type":"DeviceCommand","Id":"good1","State":"Pending"}]}`))
	// Over coder/websocket's 32 KiB default, under our 1 MiB limit.
	big := `{"Events":[{"Type":"Resource","Id":"big","State":"Clean"}],"Padding":"` + strings.Repeat("x", 100<<10) + `"}`
	srv.PushRaw([]byte(big))

	for _, want := range []string{"good1", "big"} {
		if ev := recv(t, rec.events, want); ev.ID != want {
			t.Fatalf("got event %q, want %q: a bad frame got through", ev.ID, want)
		}
	}
	sink.waitLog(t, `"level":"warn"`, "frame skipped")
	assertNoDisconnect(t, rec)
	assertHandshakes(t, srv, 1)
	if st := w.Status(); !st.Connected || st.Reconnects != 0 {
		t.Errorf("Status = %+v, want still connected on the first connection", st)
	}
}

// TestWSEventWithBadTimeDelivered: an event is a hint whose Id is what
// matters; a time field that does not parse is dropped, not the event.
func TestWSEventWithBadTimeDelivered(t *testing.T) {
	srv, _, rec, _ := connected(t, nil)

	srv.PushRaw([]byte(`{"Events":[{"Type":"Reservation","Id":"r1","State":"Started","StartUtc":"tomorrow","EndUtc":"2025-03-03T10:00:00Z"},` +
		`{"Type":"PriceUpdate","Id":"p1","StartUtc":17,"EndUtc":"2025-13-45T99:00:00Z"}]}`))
	r := recv(t, rec.events, "reservation event")
	if r.ID != "r1" || r.State != "Started" || r.StartUtc != nil {
		t.Errorf("event = %+v, want r1 Started without StartUtc", r)
	}
	if want := time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC); r.EndUtc == nil || !r.EndUtc.Equal(want) {
		t.Errorf("EndUtc = %v, want %v: a good time beside a bad one is kept", r.EndUtc, want)
	}
	if p := recv(t, rec.events, "price update event"); p.ID != "p1" || p.StartUtc != nil || p.EndUtc != nil {
		t.Errorf("event = %+v, want p1 without times", p)
	}
	assertNoDisconnect(t, rec)
}

func TestWSOversizeFrameReconnects(t *testing.T) {
	srv, _, rec, sink := connected(t, nil)

	srv.PushRaw(bytes.Repeat([]byte("x"), 1<<20+1))
	err := recv(t, rec.disconnects, "OnDisconnect")
	if !errors.Is(err, websocket.ErrMessageTooBig) {
		t.Errorf("disconnect error = %v, want ErrMessageTooBig", err)
	}
	sink.waitLog(t, "larger than 1048576 bytes refused")

	awaitConnect(t, srv, rec, 1)
	srv.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: "after", State: "Pending"})
	if ev := recv(t, rec.events, "event after reconnect"); ev.ID != "after" {
		t.Errorf("event = %q, want after", ev.ID)
	}
	assertHandshakes(t, srv, 2)
}

func TestWSReconnectsAfterDrop(t *testing.T) {
	srv := newServer(t)
	cfg, _ := testConfig(t, srv.WSURL())
	// The production schedule: the spec wants a reconnect within 2 s.
	cfg.MinBackoff, cfg.MaxBackoff = 0, 0
	w := newClient(t, cfg)
	rec := newRecorder()
	start(t, w, rec.handler())
	awaitConnect(t, srv, rec, 1)

	dropped := time.Now()
	srv.DropSockets()
	if err := recv(t, rec.disconnects, "OnDisconnect"); err == nil {
		t.Error("OnDisconnect(nil) after a drop, want the cause")
	}
	awaitConnect(t, srv, rec, 1)
	if d := time.Since(dropped); d > 2*time.Second {
		t.Errorf("reconnected after %s, want under 2s", d)
	}
	srv.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: "after-drop", State: "Pending"})
	if ev := recv(t, rec.events, "event after reconnect"); ev.ID != "after-drop" {
		t.Errorf("event = %q, want after-drop", ev.ID)
	}
	if st := w.Status(); !st.Connected || st.Reconnects != 1 {
		t.Errorf("Status = %+v, want connected with 1 reconnect", st)
	}
	for _, h := range assertHandshakes(t, srv, 2) {
		if h.Cookie != wantCookie {
			t.Error("reconnect handshake sent a different Cookie header")
		}
	}
}

func TestWSRetriesRefusedUpgrade(t *testing.T) {
	srv := newServer(t)
	srv.RefuseUpgrades(2, http.StatusServiceUnavailable)
	cfg, sink := testConfig(t, srv.WSURL())
	w := newClient(t, cfg)
	rec := newRecorder()
	start(t, w, rec.handler())

	sink.waitLog(t, "connection attempt failed", "503")
	// AuthRetry is an hour: connecting at all proves 503 is retried on the
	// fast schedule.
	awaitConnect(t, srv, rec, 1)
	hs := assertHandshakes(t, srv, 3)
	for i, want := range []int{503, 503, 101} {
		if hs[i].Status != want {
			t.Errorf("handshake %d status = %d, want %d", i, hs[i].Status, want)
		}
	}
	assertNoDisconnect(t, rec)
}

func TestWSUnauthorizedRetriesSlowly(t *testing.T) {
	srv := newServer(t)
	srv.RefuseUpgrades(1, http.StatusUnauthorized)
	cfg, sink := testConfig(t, srv.WSURL())
	cfg.AuthRetry = 300 * time.Millisecond
	w := newClient(t, cfg)
	rec := newRecorder()
	start(t, w, rec.handler())

	line := sink.waitLog(t, `"level":"error"`, "refused the WebSocket tokens")
	if !strings.Contains(line, "401") {
		t.Errorf("auth log line lacks the status: %s", line)
	}
	awaitConnect(t, srv, rec, 1)
	hs := assertHandshakes(t, srv, 2)
	if gap := hs[1].Time.Sub(hs[0].Time); gap < cfg.AuthRetry {
		t.Errorf("retried %s after a 401, want at least AuthRetry %s", gap, cfg.AuthRetry)
	}
}

func TestWSWrongTokensReported(t *testing.T) {
	srv := newServer(t)
	cfg, sink := testConfig(t, srv.WSURL())
	cfg.AccessToken = "wrong-token"
	w := newClient(t, cfg)

	err := w.CheckHandshake(context.Background())
	if !errors.Is(err, mews.ErrHandshakeUnauthorized) {
		t.Fatalf("CheckHandshake = %v, want ErrHandshakeUnauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("error reveals the token: %v", err)
	}

	rec := newRecorder()
	start(t, w, rec.handler())
	sink.waitLog(t, "refused the WebSocket tokens")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := srv.Wait(ctx, func(s *mewstest.Server) bool { return len(s.Handshakes()) >= 2 }); err != nil {
		t.Fatal(err)
	}
	if st := w.Status(); st.Connected || !strings.Contains(st.LastError, "refused") {
		t.Errorf("Status = %+v, want disconnected with the refusal", st)
	}
}

func TestWSCheckHandshake(t *testing.T) {
	srv := newServer(t)
	cfg, _ := testConfig(t, srv.WSURL())
	if err := newClient(t, cfg).CheckHandshake(context.Background()); err != nil {
		t.Fatalf("CheckHandshake: %v", err)
	}
	assertHandshakes(t, srv, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := srv.Wait(ctx, func(s *mewstest.Server) bool { return s.Sockets() == 0 }); err != nil {
		t.Fatal("CheckHandshake left the socket open")
	}
}

func TestWSDetectsDeadPeer(t *testing.T) {
	const interval, timeout = 50 * time.Millisecond, 200 * time.Millisecond
	srv, _, rec, _ := connected(t, func(cfg *mews.WSConfig) { cfg.PingInterval, cfg.PingTimeout = interval, timeout })

	silenced := time.Now()
	srv.SetSilent(true)
	err := recv(t, rec.disconnects, "OnDisconnect of a dead peer")
	if !errors.Is(err, mews.ErrWSUnresponsive) {
		t.Errorf("disconnect error = %v, want ErrWSUnresponsive", err)
	}
	// Scheduling slack on top of the bound; a client without pings would
	// wait forever.
	if d, limit := time.Since(silenced), interval+timeout+time.Second; d > limit {
		t.Errorf("dead peer noticed after %s, want within %s", d, limit)
	}

	srv.SetSilent(false)
	recv(t, rec.connects, "OnConnect after the peer came back")
}

// TestWSClosesNormallyOnCancel uses a bare server that reports the close
// status it receives, which the simulator does not expose.
func TestWSClosesNormallyOnCancel(t *testing.T) {
	closed := make(chan websocket.StatusCode, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(rw, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		for {
			if _, _, err := conn.Read(r.Context()); err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
		}
	}))
	defer hs.Close()

	cfg, _ := testConfig(t, "ws://"+strings.TrimPrefix(hs.URL, "http://"))
	w := newClient(t, cfg)
	rec := newRecorder()
	stop := start(t, w, rec.handler())
	recv(t, rec.connects, "OnConnect")

	began := time.Now()
	if err := stop(); err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Run took %s to return after cancel", d)
	}
	if code := recv(t, closed, "close status at the server"); code != websocket.StatusNormalClosure {
		t.Errorf("server saw close status %v, want %v", code, websocket.StatusNormalClosure)
	}
	if err := recv(t, rec.disconnects, "OnDisconnect"); !errors.Is(err, context.Canceled) {
		t.Errorf("OnDisconnect(%v), want context.Canceled", err)
	}
	if w.Status().Connected {
		t.Error("Status still connected after Run returned")
	}
}

func TestWSRunOnlyOnce(t *testing.T) {
	_, w, _, _ := connected(t, nil)
	if err := w.Run(context.Background(), mews.WSHandler{}); err == nil {
		t.Error("a second concurrent Run was accepted")
	}
}

func TestNewWSClientRejects(t *testing.T) {
	good := mews.WSConfig{URL: "wss://ws.mews.com", ClientToken: "ct", AccessToken: "at"}
	if _, err := mews.NewWSClient(good); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	tests := []struct {
		name   string
		modify func(*mews.WSConfig)
	}{
		{"plain ws to a remote host", func(c *mews.WSConfig) { c.URL = "ws://ws.mews.com" }},
		{"https scheme", func(c *mews.WSConfig) { c.URL = "https://ws.mews.com" }},
		{"no host", func(c *mews.WSConfig) { c.URL = "wss://" }},
		{"empty client token", func(c *mews.WSConfig) { c.ClientToken = "" }},
		{"empty access token", func(c *mews.WSConfig) { c.AccessToken = "" }},
		{"cookie separator in token", func(c *mews.WSConfig) { c.AccessToken = "secret-part;Evil=1" }},
		{"space in token", func(c *mews.WSConfig) { c.ClientToken = "secret part" }},
		{"backoff bounds reversed", func(c *mews.WSConfig) { c.MinBackoff, c.MaxBackoff = time.Minute, time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.modify(&cfg)
			_, err := mews.NewWSClient(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error reveals the token: %v", err)
			}
		})
	}
}

func ExampleWSClient_Run() {
	srv := mewstest.NewServer(mewstest.WithoutFixtures())
	defer srv.Close()
	ws, err := mews.NewWSClient(mews.WSConfig{
		URL:         srv.WSURL(), // production: mews.Production.WS
		ClientToken: mewstest.ClientToken,
		AccessToken: mewstest.AccessToken,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	go func() {
		// Play Mews: a receptionist presses "cut key" once we are connected.
		_ = srv.Wait(ctx, func(s *mewstest.Server) bool { return s.Sockets() == 1 })
		srv.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: "c1", State: "Pending"})
	}()
	events := make(chan mews.Event, 64)
	go func() {
		ev := <-events
		fmt.Println(ev.Type, ev.ID, ev.State)
		cancel()
	}()

	err = ws.Run(ctx, mews.WSHandler{
		OnConnect: func() { fmt.Println("connected: catch up with commands/getAllActive") },
		// Callbacks run on the reading goroutine: hand events off, never block.
		OnEvents: func(evs []mews.Event) {
			for _, ev := range evs {
				events <- ev
			}
		},
	})
	fmt.Println("Run returned", err)
	// Output:
	// connected: catch up with commands/getAllActive
	// DeviceCommand c1 Pending
	// Run returned <nil>
}
