package mewstest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

func TestAPIBasics(t *testing.T) {
	s := newServer(t)

	t.Run("unknown op", func(t *testing.T) {
		a := call(t, s, "commands/nope", nil)
		if a.status != http.StatusNotFound || a.header.Get("Request-Id") == "" || a.body["RequestId"] != a.header.Get("Request-Id") {
			t.Fatalf("status %d, header %q, body %s", a.status, a.header.Get("Request-Id"), a.raw)
		}
	})
	t.Run("bad tokens", func(t *testing.T) {
		for _, tok := range []string{"ClientToken", "AccessToken"} {
			body := map[string]any{"ClientToken": mewstest.ClientToken, "AccessToken": mewstest.AccessToken, "Client": "t"}
			body[tok] = "wrong"
			if a := post(t, s, "devices/getAll", body); a.status != http.StatusUnauthorized || !strings.Contains(a.body["Message"].(string), tok) {
				t.Errorf("wrong %s: status %d, body %s", tok, a.status, a.raw)
			}
		}
	})
	t.Run("client required", func(t *testing.T) {
		a := post(t, s, "devices/getAll", map[string]any{"ClientToken": mewstest.ClientToken, "AccessToken": mewstest.AccessToken})
		if a.status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", a.status)
		}
	})
	t.Run("request log has no tokens", func(t *testing.T) {
		s.ResetRequests()
		a := call(t, s, "commands/getAllActive", map[string]any{"Extra": 1.0})
		reqs := s.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests logged, want 1", len(reqs))
		}
		r := reqs[0]
		if r.Op != "commands/getAllActive" || r.Status != http.StatusOK || r.RequestID != a.header.Get("Request-Id") ||
			r.Body["Client"] != "test 1.0" || r.Body["Extra"] != 1.0 {
			t.Errorf("logged %+v", r)
		}
		if _, ok := r.Body["ClientToken"]; ok {
			t.Error("ClientToken kept in the log")
		}
		if _, ok := r.Body["AccessToken"]; ok {
			t.Error("AccessToken kept in the log")
		}
		if s.RequestCount("commands/getAllActive") != 1 || s.RequestCount("") != 1 || s.RequestCount("devices/getAll") != 0 {
			t.Error("RequestCount disagrees with the log")
		}
	})
}

func TestEventsPushed(t *testing.T) {
	s := newServer(t)
	c := connect(t, s)
	ctx := testCtx(t)
	expect := func(want mews.Event) {
		t.Helper()
		evs := readEvents(t, ctx, c)
		if len(evs) != 1 || evs[0].Type != want.Type || evs[0].ID != want.ID || evs[0].State != want.State {
			t.Fatalf("events %+v, want %+v", evs, want)
		}
	}

	var added struct{ CommandId string }
	mustCall(t, s, "commands/addKeyCutter", map[string]any{
		"KeyCutterId": mewstest.KeyCutter1.ID, "ReservationId": mewstest.ReservationCheckedIn, "KeyCount": 1,
	}, &added)
	id := added.CommandId
	expect(mews.Event{Type: mews.EventDeviceCommand, ID: id, State: "Pending"})
	mustCall(t, s, "commands/getAllByIds", map[string]any{"CommandIds": []string{id}}, nil)
	expect(mews.Event{Type: mews.EventDeviceCommand, ID: id, State: "Received"})
	mustCall(t, s, "commands/update", map[string]any{"CommandId": id, "State": "Processing"}, nil)
	expect(mews.Event{Type: mews.EventDeviceCommand, ID: id, State: "Processing"})
	s.SetCommandState(id, mews.CommandCancelled)
	expect(mews.Event{Type: mews.EventDeviceCommand, ID: id, State: "Cancelled"})

	s.UpdateReservation(mewstest.ReservationArriving, func(r *mews.Reservation) {
		r.State = mews.ReservationStarted
		r.AssignedResourceID = mewstest.RoomID("105")
	})
	evs := readEvents(t, ctx, c)
	res, _ := s.Reservation(mewstest.ReservationArriving)
	if len(evs) != 1 || evs[0].Type != mews.EventReservation || evs[0].State != "Started" ||
		evs[0].AssignedResourceID != mewstest.RoomID("105") || evs[0].StartUtc == nil || !evs[0].StartUtc.Equal(res.ScheduledStartUtc) {
		t.Fatalf("reservation event %+v", evs)
	}

	s.PushEvents(mews.Event{Type: mews.EventResource, ID: mewstest.RoomID("101"), State: "Dirty"},
		mews.Event{Type: mews.EventDeviceCommand, ID: "x", State: "Pending"})
	if evs := readEvents(t, ctx, c); len(evs) != 2 || evs[0].Type != mews.EventResource || evs[1].ID != "x" {
		t.Fatalf("pushed %+v", evs)
	}
}

func TestHandshakeCookie(t *testing.T) {
	tests := []struct {
		name   string
		cookie string
		ok     bool
	}{
		{"exact", cookie, true},
		{"either order", "AccessToken=" + mewstest.AccessToken + "; ClientToken=" + mewstest.ClientToken, true},
		{"spaces around =", "ClientToken = " + mewstest.ClientToken + "; AccessToken = " + mewstest.AccessToken, false},
		{"space after =", "ClientToken= " + mewstest.ClientToken + "; AccessToken=" + mewstest.AccessToken, false},
		{"no space after ;", "ClientToken=" + mewstest.ClientToken + ";AccessToken=" + mewstest.AccessToken, false},
		{"missing access token", "ClientToken=" + mewstest.ClientToken, false},
		{"extra cookie", cookie + "; Other=1", false},
		{"wrong token", "ClientToken=" + mewstest.ClientToken + "; AccessToken=wrong", false},
		{"none", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			ctx := testCtx(t)
			c, resp, err := dial(ctx, s, tt.cookie)
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				c.CloseNow()
			} else {
				if err == nil {
					c.CloseNow()
					t.Fatal("accepted")
				}
				if resp == nil || resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("refused with %v, want 401", resp)
				}
			}
			hs := s.Handshakes()
			want := http.StatusUnauthorized
			if tt.ok {
				want = http.StatusSwitchingProtocols
			}
			if len(hs) != 1 || hs[0].Cookie != tt.cookie || hs[0].Status != want {
				t.Fatalf("handshakes %+v", hs)
			}
		})
	}
}

func TestDropSockets(t *testing.T) {
	s := newServer(t)
	c := connect(t, s)
	ctx := testCtx(t)
	read := make(chan error, 1)
	go func() {
		_, _, err := c.Read(ctx)
		read <- err
	}()
	s.DropSockets()
	err := <-read
	if err == nil || websocket.CloseStatus(err) != -1 {
		t.Fatalf("read error %v, want a dropped connection without a close frame", err)
	}
	if err := s.Wait(ctx, func(s *mewstest.Server) bool { return s.Sockets() == 0 }); err != nil {
		t.Fatalf("socket still counted: %v", err)
	}
}

func TestWaitWakesOnChange(t *testing.T) {
	s := newServer(t)
	id := newCommand(t, s)
	ctx := testCtx(t)
	woke := make(chan error, 1)
	waiting := make(chan struct{})
	go func() {
		first := true
		woke <- s.Wait(ctx, func(s *mewstest.Server) bool {
			if first {
				first = false
				close(waiting)
			}
			c, _ := s.Command(id)
			return c.State == mews.CommandProcessed
		})
	}()
	<-waiting
	select {
	case err := <-woke:
		t.Fatalf("Wait returned before the change: %v", err)
	default:
	}
	mustCall(t, s, "commands/update", map[string]any{"CommandId": id, "State": "Processed"}, nil)
	if err := <-woke; err != nil {
		t.Fatalf("Wait: %v", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Wait(cancelled, func(*mewstest.Server) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	s := mewstest.NewServer()
	c, _, err := dial(testCtx(t), s, cookie)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	s.HangNext("devices/getAll", 1)
	hung := make(chan struct{})
	go func() {
		defer close(hung)
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/connector/v1/devices/getAll",
			strings.NewReader(`{"ClientToken":"`+mewstest.ClientToken+`","AccessToken":"`+mewstest.AccessToken+`","Client":"t"}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if err := s.Wait(testCtx(t), func(s *mewstest.Server) bool { return s.RequestCount("devices/getAll") == 1 }); err != nil {
		t.Fatal(err)
	}
	s.Close() // must not wait for the hung request or the socket
	<-hung
	if _, _, err := c.Read(testCtx(t)); err == nil {
		t.Fatal("socket survived Close")
	}
}
