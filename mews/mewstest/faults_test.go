package mewstest_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

func TestFailNext(t *testing.T) {
	s := newServer(t)
	s.FailNext("commands/getAllActive", 2, http.StatusServiceUnavailable, "")
	if a := call(t, s, "devices/getAll", nil); a.status != http.StatusOK {
		t.Fatalf("other op: status %d, want 200", a.status)
	}
	for i := range 2 {
		a := call(t, s, "commands/getAllActive", nil)
		if a.status != http.StatusServiceUnavailable || a.body["Message"] == "" || a.body["RequestId"] != a.header.Get("Request-Id") {
			t.Fatalf("call %d: status %d, body %s", i, a.status, a.raw)
		}
		if a.header.Get("Retry-After") != "" {
			t.Fatalf("call %d: Retry-After set without being asked for", i)
		}
	}
	if a := call(t, s, "commands/getAllActive", nil); a.status != http.StatusOK {
		t.Fatalf("after the failures: status %d, want 200", a.status)
	}

	s.FailNext("", 1, http.StatusTooManyRequests, "7")
	a := call(t, s, "resources/getAll", nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "7" {
		t.Fatalf("any op: status %d, Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if got := s.Requests(); got[len(got)-1].Status != http.StatusTooManyRequests {
		t.Fatalf("logged status %d", got[len(got)-1].Status)
	}
}

func TestSetLatency(t *testing.T) {
	s := newServer(t)
	const d = 250 * time.Millisecond
	s.SetLatency("devices/getAll", d)
	start := time.Now()
	call(t, s, "devices/getAll", nil)
	if took := time.Since(start); took < d {
		t.Fatalf("answered in %v, want at least %v", took, d)
	}
	s.SetLatency("devices/getAll", 0)
	start = time.Now()
	call(t, s, "devices/getAll", nil)
	if took := time.Since(start); took >= d {
		t.Fatalf("latency still applied after removal: %v", took)
	}
}

func TestHangNext(t *testing.T) {
	s := newServer(t)
	s.HangNext("commands/getAllActive", 1)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/api/connector/v1/commands/getAllActive",
			jsonBody(map[string]any{"ClientToken": mewstest.ClientToken, "AccessToken": mewstest.AccessToken, "Client": "t"}))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if err := s.Wait(testCtx(t), func(s *mewstest.Server) bool { return s.RequestCount("commands/getAllActive") == 1 }); err != nil {
		t.Fatal(err)
	}
	if r := s.Requests()[0]; r.Status != 0 {
		t.Fatalf("hung request logged with status %d, want 0", r.Status)
	}
	select {
	case err := <-done:
		t.Fatalf("hung request answered: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want context.Canceled", err)
	}
	if a := call(t, s, "commands/getAllActive", nil); a.status != http.StatusOK {
		t.Fatalf("next call: status %d, want 200", a.status)
	}
	if n := s.RequestCount("commands/getAllActive"); n != 2 {
		t.Fatalf("%d calls logged, want the hung one and the next", n)
	}
}

func TestRefuseUpgrades(t *testing.T) {
	s := newServer(t)
	s.RefuseUpgrades(2, http.StatusServiceUnavailable)
	ctx := testCtx(t)
	for i := range 2 {
		c, resp, err := dial(ctx, s, cookie)
		if err == nil {
			c.CloseNow()
			t.Fatalf("dial %d accepted", i)
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("dial %d: %v, want 503", i, resp)
		}
	}
	connect(t, s)
	var statuses []int
	for _, h := range s.Handshakes() {
		statuses = append(statuses, h.Status)
	}
	if !slices.Equal(statuses, []int{503, 503, 101}) {
		t.Fatalf("handshake statuses %v", statuses)
	}
}

func TestDuplicateEvents(t *testing.T) {
	s := newServer(t)
	c := connect(t, s)
	ctx := testCtx(t)
	s.SetDuplicateEvents(true)
	ev := mews.Event{Type: mews.EventDeviceCommand, ID: "dup", State: "Pending"}
	s.PushEvents(ev)
	for i := range 2 {
		if evs := readEvents(t, ctx, c); len(evs) != 1 || evs[0].ID != "dup" {
			t.Fatalf("copy %d: %+v", i, evs)
		}
	}
	s.SetDuplicateEvents(false)
	s.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: "single", State: "Pending"})
	s.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: "next", State: "Pending"})
	for _, want := range []string{"single", "next"} {
		if evs := readEvents(t, ctx, c); len(evs) != 1 || evs[0].ID != want {
			t.Fatalf("got %+v, want %s", evs, want)
		}
	}
}

func TestPushRawAndBinary(t *testing.T) {
	s := newServer(t)
	c := connect(t, s)
	ctx := testCtx(t)
	s.PushRaw([]byte("not json"))
	s.PushBinary([]byte{0xff, 0x00})
	for _, want := range []struct {
		typ  websocket.MessageType
		data string
	}{{websocket.MessageText, "not json"}, {websocket.MessageBinary, "\xff\x00"}} {
		typ, data, err := c.Read(ctx)
		if err != nil || typ != want.typ || string(data) != want.data {
			t.Fatalf("read %v %q %v, want %v %q", typ, data, err, want.typ, want.data)
		}
	}
}

func TestSilent(t *testing.T) {
	s := newServer(t)
	c := connect(t, s)
	ctx := testCtx(t)

	// Pongs reach Ping only while someone reads.
	frames := make(chan []byte, 10)
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			frames <- data
		}
	})
	defer reader.Wait()
	defer c.CloseNow()

	ping := func() error {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		return c.Ping(pctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("ping before silence: %v", err)
	}
	s.SetSilent(true)
	if err := ping(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping while silent: %v, want no pong", err)
	}
	s.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: "lost", State: "Pending"})
	s.SetSilent(false)
	if err := ping(); err != nil {
		t.Fatalf("ping after silence: %v", err)
	}
	s.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: "after", State: "Pending"})
	evs, _, err := mews.DecodeFrame(<-frames)
	if err != nil || len(evs) != 1 || evs[0].ID != "after" {
		t.Fatalf("first frame after silence %+v %v, want the event pushed after it (the silent one is lost)", evs, err)
	}
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := newServer(t, mewstest.WithRateLimit(3, 30*time.Second), mewstest.WithClock(clock.Now))
	for i := range 3 {
		if a := call(t, s, "devices/getAll", nil); a.status != http.StatusOK {
			t.Fatalf("call %d: status %d", i, a.status)
		}
		clock.Advance(5 * time.Second)
	}
	// The oldest call (t=0) leaves the window at t=30; it is t=15 now.
	a := call(t, s, "commands/getAllActive", nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "15" || a.body["RequestId"] == "" {
		t.Fatalf("over the limit: status %d, Retry-After %q, body %s", a.status, a.header.Get("Retry-After"), a.raw)
	}
	// Refused calls do not count: after the oldest leaves, one slot is free.
	clock.Advance(15 * time.Second)
	if a := call(t, s, "devices/getAll", nil); a.status != http.StatusOK {
		t.Fatalf("after the window moved: status %d", a.status)
	}
	if a := call(t, s, "devices/getAll", nil); a.status != http.StatusTooManyRequests {
		t.Fatalf("window full again: status %d", a.status)
	}
	// Bad tokens are refused before the limit and never reach it.
	body := map[string]any{"ClientToken": "x", "AccessToken": mewstest.AccessToken, "Client": "t"}
	if a := post(t, s, "devices/getAll", body); a.status != http.StatusUnauthorized {
		t.Fatalf("bad token over the limit: status %d, want 401", a.status)
	}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
