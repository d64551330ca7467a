package mews_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// Tokens of FuzzAPIResponse's client. A server answer may echo them (the
// seeds do); no error may show them.
const (
	fuzzClientToken = "C0FFEE00C0FFEE00C0FFEE00C0FFEE00-FUZZCLIENT"
	fuzzAccessToken = "ACCE55ACCE55ACCE55ACCE55ACCE5500-FUZZACCESS"
)

// fuzzStatuses are the answers a fuzz input picks from by its status byte.
var fuzzStatuses = []int{200, 200, 200, 200, 400, 401, 403, 404, 408, 429, 500, 502, 503}

// FuzzAPIResponse feeds any answer body, under any status, to the real
// client over loopback HTTP, through the operations mews-keyd uses. The
// client must not panic or hang; an error must not show a token even when
// Mews's message echoes one; and on success every time comes back in UTC,
// and key cutter data decodes or fails cleanly. Seeds beyond these live in
// testdata/fuzz/FuzzAPIResponse.
func FuzzAPIResponse(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte(`{"Commands":[{"Id":"c1","State":"Pending","CreatedUtc":"2026-01-02T03:04:05+02:00","Device":{"Id":"d","Type":"KeyCutter"},"Data":{"KeyCount":2,"LockIds":["101"],"StartUtc":"2026-01-02T14:00:00+01:00","EndUtc":"2026-01-04T10:00:00Z","LastName":"Novák"}}]}`))
	f.Add(uint8(1), uint8(0), []byte(`{"Commands":[{"Id":"c1","Device":{"Type":"KeyCutter"},"Data":"not an object"}]}`))
	f.Add(uint8(2), uint8(4), []byte(`{"Message":"Invalid AccessToken `+fuzzAccessToken+`.","RequestId":"r1"}`))
	f.Add(uint8(3), uint8(0), []byte(`{"Reservations":[{"Id":"r","ScheduledStartUtc":"2026-01-02T14:00:00+05:00"}],"Cursor":"r"}`))
	f.Add(uint8(4), uint8(5), []byte(`{"Message":"ClientToken `+fuzzClientToken+` unknown"}`))
	f.Add(uint8(5), uint8(0), []byte(`{"ResourceAccessTokens":[{"Id":"t","ValidityStartUtc":"2026-01-02T00:00:00-07:00"}]}`))
	f.Add(uint8(6), uint8(0), []byte(`{"CommandId":""}`))
	f.Add(uint8(7), uint8(9), []byte(`{"Message":"Too many requests."}`))

	var (
		mu     sync.Mutex
		status int
		body   []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st, b := status, body
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		w.Write(b)
	}))
	f.Cleanup(srv.Close)
	c, err := mews.NewClient(mews.ClientConfig{
		APIURL: srv.URL, ClientToken: fuzzClientToken, AccessToken: fuzzAccessToken,
		RequestLimit: 1 << 20, RequestWindow: time.Second,
		// One attempt: a retry would only repeat the same answer.
		MaxElapsed: time.Nanosecond, PageSize: 2,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.Close)

	f.Fuzz(func(t *testing.T, op, statusIndex uint8, answer []byte) {
		mu.Lock()
		status, body = fuzzStatuses[int(statusIndex)%len(fuzzStatuses)], answer
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var (
			times []time.Time
			cmds  []mews.Command
			err   error
		)
		switch op % 8 {
		case 0:
			cmds, err = c.ActiveCommands(ctx)
		case 1:
			cmds, err = c.CommandsByIDs(ctx, []string{"c1", "c2"})
		case 2:
			err = c.UpdateCommand(ctx, mews.CommandUpdate{ID: "c1", State: mews.CommandProcessed, Notes: "1 key"})
		case 3:
			var rs []mews.Reservation
			rs, err = c.Reservations(ctx, mews.ReservationFilter{IDs: []string{"r"}})
			for _, r := range rs {
				times = append(times, r.ScheduledStartUtc, r.ScheduledEndUtc, r.CreatedUtc, r.UpdatedUtc)
			}
		case 4:
			_, err = c.Customers(ctx, []string{"g"})
		case 5:
			var ts []mews.ResourceAccessToken
			ts, err = c.AccessTokens(ctx, []string{"so"})
			for _, tok := range ts {
				times = append(times, tok.ValidityStartUtc, tok.ValidityEndUtc)
			}
		case 6:
			_, err = c.AddKeyCutterCommand(ctx, mews.AddKeyCutterCommand{KeyCutterID: "d", ReservationID: "r", KeyCount: 1})
		case 7:
			_, err = c.Devices(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the call hung: %v", err)
			}
			if msg := err.Error(); strings.Contains(msg, fuzzClientToken) || strings.Contains(msg, fuzzAccessToken) {
				t.Fatalf("error shows a token: %s", msg)
			}
			return
		}
		for _, cmd := range cmds {
			times = append(times, cmd.CreatedUtc)
			if data, err := cmd.KeyCutter(); err == nil {
				times = append(times, data.StartUtc, data.EndUtc)
			}
		}
		for _, ts := range times {
			if ts.Location() != time.UTC {
				t.Fatalf("time %v not in UTC", ts)
			}
		}
	})
}
