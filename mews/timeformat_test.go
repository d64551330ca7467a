package mews_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// connectorTime is the Connector API's time format for requests.
var connectorTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// TestRequestTimesInWholeSecondsUTC drives every operation with times that
// carry nanoseconds in a zone other than UTC, and checks every time in
// every request body the simulator logged: YYYY-MM-DDThh:mm:ssZ.
func TestRequestTimesInWholeSecondsUTC(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	at := time.Now().In(zone).Add(123456789 * time.Nanosecond)
	later := at.Add(48*time.Hour + 987654321)

	var tokenID string
	ops := []struct {
		name      string
		withTimes bool // the request carries times
		run       func() error
	}{
		{"active commands", false, func() error { _, err := c.ActiveCommands(ctx); return err }},
		{"add key cutter", false, func() error {
			_, err := c.AddKeyCutterCommand(ctx, mews.AddKeyCutterCommand{KeyCutterID: mewstest.KeyCutter1.ID,
				ReservationID: mewstest.ReservationCheckedIn, KeyCount: 1})
			return err
		}},
		{"commands by ids", false, func() error { _, err := c.CommandsByIDs(ctx, []string{"c"}); return err }},
		{"update command", false, func() error {
			cmds, err := c.ActiveCommands(ctx)
			if err != nil || len(cmds) == 0 {
				return err
			}
			return c.UpdateCommand(ctx, mews.CommandUpdate{ID: cmds[0].ID, State: mews.CommandProcessed, Notes: "1 key"})
		}},
		{"devices", false, func() error { _, err := c.Devices(ctx); return err }},
		{"reservations by update time", true, func() error {
			_, err := c.Reservations(ctx, mews.ReservationFilter{UpdatedFrom: at.AddDate(0, -1, 0), UpdatedTo: at})
			return err
		}},
		{"reservations updated until now", true, func() error {
			_, err := c.Reservations(ctx, mews.ReservationFilter{UpdatedFrom: at.AddDate(0, -1, 0)})
			return err
		}},
		{"reservations by start", true, func() error {
			_, err := c.Reservations(ctx, mews.ReservationFilter{ScheduledStartFrom: at, ScheduledStartTo: later})
			return err
		}},
		{"resources", false, func() error { _, err := c.Resources(ctx, []string{mewstest.RoomID("101")}); return err }},
		{"customers", false, func() error { _, err := c.Customers(ctx, []string{mewstest.CustomerNovak.ID}); return err }},
		{"add access tokens", true, func() error {
			added, err := c.AddAccessTokens(ctx, []mews.ResourceAccessToken{{ServiceOrderID: mewstest.ReservationCheckedIn,
				ResourceID: mewstest.RoomID("101"), Type: mews.AccessTokenPinCode, Value: "4711",
				ValidityStartUtc: at, ValidityEndUtc: later}})
			if err == nil {
				tokenID = added[0].ID
			}
			return err
		}},
		{"update access tokens", true, func() error {
			end := later.Add(time.Hour)
			_, err := c.UpdateAccessTokens(ctx, []mews.AccessTokenUpdate{{ID: tokenID, ValidityStartUtc: &at, ValidityEndUtc: &end}})
			return err
		}},
		{"access tokens", false, func() error { _, err := c.AccessTokens(ctx, []string{mewstest.ReservationCheckedIn}); return err }},
		{"delete access tokens", false, func() error { return c.DeleteAccessTokens(ctx, []string{tokenID}) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			srv.ResetRequests()
			if err := lc.note(op.run()); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) == 0 {
				t.Fatal("no request sent")
			}
			times := 0
			for _, r := range reqs {
				walkStrings(r.Body, "", func(path, s string) {
					_, isTime := parseAnyTime(s)
					if !isTime && !strings.Contains(path, "Utc") {
						return
					}
					times++
					if !connectorTime.MatchString(s) {
						t.Errorf("%s: %s = %q, want YYYY-MM-DDThh:mm:ssZ", r.Op, path, s)
					}
				})
			}
			if op.withTimes && times == 0 {
				t.Errorf("no time in %v", reqs[0].Body)
			}
		})
	}
}

// parseAnyTime reads s as a time in any RFC 3339 form.
func parseAnyTime(s string) (time.Time, bool) {
	ts, err := time.Parse(time.RFC3339Nano, s)
	return ts, err == nil
}

// walkStrings calls f for every string in a decoded JSON value, with its
// path ("ResourceAccessTokenUpdates.ValidityEndUtc.Value").
func walkStrings(v any, path string, f func(path, s string)) {
	switch v := v.(type) {
	case string:
		f(path, v)
	case []any:
		for _, e := range v {
			walkStrings(e, path, f)
		}
	case map[string]any:
		for k, e := range v {
			walkStrings(e, strings.TrimPrefix(path+"."+k, "."), f)
		}
	}
}
