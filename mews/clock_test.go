package mews_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestServerClock: a PC clock 30 minutes behind Mews's. Commands carry the
// time of the answer that delivered them by Mews's clock, and ClockSkew
// reports the difference, so command age never depends on the PC clock.
func TestServerClock(t *testing.T) {
	const offset = 30 * time.Minute
	lc := newAPILeakCheck(t)
	srv := apiServer(t, mewstest.WithClock(func() time.Time { return time.Now().Add(offset) }))
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)

	if skew, known := c.ClockSkew(); known {
		t.Errorf("ClockSkew before any answer = %s, known; want unknown", skew)
	}
	id, err := c.AddKeyCutterCommand(ctx, mews.AddKeyCutterCommand{
		KeyCutterID: mewstest.KeyCutter1.ID, ReservationID: mewstest.ReservationCheckedIn, KeyCount: 1})
	if lc.note(err) != nil {
		t.Fatal(err)
	}
	// Date has whole seconds: Mews's time is in [Date, Date+1s).
	inWindow := func(t *testing.T, name string, got, from, to time.Time) {
		t.Helper()
		if got.Before(from.Add(-time.Second)) || got.After(to) {
			t.Errorf("%s = %s, want between %s and %s", name, got, from.Add(-time.Second), to)
		}
	}
	for name, get := range map[string]func() ([]mews.Command, error){
		"active": func() ([]mews.Command, error) { return c.ActiveCommands(ctx) },
		"by ids": func() ([]mews.Command, error) { return c.CommandsByIDs(ctx, []string{id}) },
	} {
		t.Run(name, func(t *testing.T) {
			before := time.Now()
			cmds, err := get()
			after := time.Now()
			if lc.note(err) != nil {
				t.Fatal(err)
			}
			if len(cmds) != 1 {
				t.Fatalf("got %d commands, want 1", len(cmds))
			}
			inWindow(t, "ServerTime", cmds[0].ServerTime, before.Add(offset), after.Add(offset))
			if age := cmds[0].ServerTime.Sub(cmds[0].CreatedUtc); age < -time.Second || age > after.Sub(before)+time.Second {
				t.Errorf("age by Mews's clock = %s, want about 0", age)
			}
			skew, known := c.ClockSkew()
			if !known || skew < offset-2*time.Second || skew > offset+2*time.Second {
				t.Errorf("ClockSkew = %s, %v; want about %s", skew, known, offset)
			}
		})
	}
}

// TestServerClockWithoutDate: an answer without a usable Date header gives
// commands a zero ServerTime and leaves the skew unknown.
func TestServerClockWithoutDate(t *testing.T) {
	for name, date := range map[string][]string{"absent": nil, "unreadable": {"yesterday"}} {
		t.Run(name, func(t *testing.T) {
			lc := newAPILeakCheck(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Date"] = date // nil stops net/http from adding one
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"Commands":[{"Id":"c1","State":"Pending","CreatedUtc":"2026-01-02T03:04:05Z","Device":{"Id":"d","Type":"KeyCutter"}}]}`))
			}))
			defer srv.Close()
			c, err := mews.NewClient(mews.ClientConfig{APIURL: srv.URL, ClientToken: wireClientToken, AccessToken: wireAccessToken, Logger: lc.logger()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cmds, err := c.ActiveCommands(apiContext(t))
			if lc.note(err) != nil {
				t.Fatal(err)
			}
			if len(cmds) != 1 || !cmds[0].ServerTime.IsZero() {
				t.Errorf("commands = %+v, want one with a zero ServerTime", cmds)
			}
			if skew, known := c.ClockSkew(); known {
				t.Errorf("ClockSkew = %s, known; want unknown", skew)
			}
		})
	}
}
