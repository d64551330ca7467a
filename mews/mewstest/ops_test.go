package mewstest_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// pageAll follows cursors until a short page or a null cursor and returns
// the ids in order and the number of calls.
func pageAll(t *testing.T, s *mewstest.Server, op, field string, count int, body map[string]any) ([]string, int) {
	t.Helper()
	var ids []string
	var cursor *string
	for calls := 1; ; calls++ {
		b := map[string]any{"Limitation": map[string]any{"Count": count, "Cursor": cursor}}
		for k, v := range body {
			b[k] = v
		}
		var got map[string]any
		mustCall(t, s, op, b, &got)
		items, _ := got[field].([]any)
		for _, it := range items {
			ids = append(ids, it.(map[string]any)["Id"].(string))
		}
		c, _ := got["Cursor"].(string)
		if len(items) < count || c == "" {
			return ids, calls
		}
		cursor = &c
		if calls > 100 {
			t.Fatal("pagination never ends")
		}
	}
}

func TestPagination(t *testing.T) {
	s := newServer(t)
	allRes := []string{mewstest.ReservationCheckedIn, mewstest.ReservationArriving, mewstest.ReservationUnassigned,
		mewstest.ReservationDeparted, mewstest.ReservationCanceled, mewstest.ReservationLongStay}
	ids, calls := pageAll(t, s, "reservations/getAll/2023-06-06", "Reservations", 4, nil)
	if !slices.Equal(ids, allRes) || calls != 2 {
		t.Errorf("reservations %v in %d calls, want all 6 in 2", ids, calls)
	}
	ids, calls = pageAll(t, s, "resources/getAll", "Resources", 5, map[string]any{"Extent": map[string]any{"Resources": true}})
	if len(ids) != 12 || ids[0] != mewstest.RoomID("101") || ids[11] != mewstest.RoomID("112") || calls != 3 {
		t.Errorf("resources %v in %d calls, want 12 in 3", ids, calls)
	}
	// An exact multiple ends on an empty page with a null cursor.
	ids, calls = pageAll(t, s, "reservations/getAll/2023-06-06", "Reservations", 3, nil)
	if len(ids) != 6 || calls != 3 {
		t.Errorf("reservations %v in %d calls, want 6 in 3", ids, calls)
	}

	for name, lim := range map[string]any{
		"missing":        nil,
		"count 0":        map[string]any{"Count": 0},
		"count too big":  map[string]any{"Count": 1001},
		"unknown cursor": map[string]any{"Count": 1, "Cursor": "nope"},
	} {
		body := map[string]any{}
		if lim != nil {
			body["Limitation"] = lim
		}
		if a := call(t, s, "reservations/getAll/2023-06-06", body); a.status != http.StatusBadRequest {
			t.Errorf("limitation %s: status %d, want 400", name, a.status)
		}
	}
}

func TestActiveCursorSurvivesProcessing(t *testing.T) {
	s := newServer(t, mewstest.WithoutFixtures())
	a := s.CreateCommand(mews.Command{Device: mewstest.KeyCutter1, Data: []byte(`{}`)})
	b := s.CreateCommand(mews.Command{Device: mewstest.KeyCutter1, Data: []byte(`{}`)})
	var got struct {
		Commands []mews.Command
		Cursor   *string
	}
	mustCall(t, s, "commands/getAllActive", map[string]any{"Limitation": map[string]any{"Count": 1}}, &got)
	if len(got.Commands) != 1 || got.Commands[0].ID != a || got.Cursor == nil || *got.Cursor != a {
		t.Fatalf("first page %+v", got)
	}
	// The client works on the first page before asking for the next one.
	mustCall(t, s, "commands/update", map[string]any{"CommandId": a, "State": "Processing"}, nil)
	mustCall(t, s, "commands/getAllActive", map[string]any{"Limitation": map[string]any{"Count": 1, "Cursor": a}}, &got)
	if len(got.Commands) != 1 || got.Commands[0].ID != b {
		t.Fatalf("second page %+v, want %s", got.Commands, b)
	}
}

func TestReservationFilters(t *testing.T) {
	s := newServer(t)
	s.UpdateReservation(mewstest.ReservationArriving, func(r *mews.Reservation) { r.State = mews.ReservationStarted })
	now := time.Now().UTC()
	lim := map[string]any{"Count": 100}
	tests := []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"by ids", map[string]any{"ReservationIds": []string{mewstest.ReservationDeparted, "unknown"}},
			[]string{mewstest.ReservationDeparted}},
		{"by states", map[string]any{"States": []string{"Started"}},
			[]string{mewstest.ReservationCheckedIn, mewstest.ReservationArriving, mewstest.ReservationLongStay}},
		{"by room", map[string]any{"AssignedResourceIds": []string{mewstest.RoomID("112")}},
			[]string{mewstest.ReservationLongStay}},
		{"updated recently", map[string]any{"UpdatedUtc": map[string]any{"StartUtc": now.Add(-time.Minute), "EndUtc": now.Add(time.Minute)}},
			[]string{mewstest.ReservationArriving}},
		{"filters combine", map[string]any{"States": []string{"Started"}, "AssignedResourceIds": []string{mewstest.RoomID("101")}},
			[]string{mewstest.ReservationCheckedIn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"Limitation": lim}
			for k, v := range tt.filter {
				body[k] = v
			}
			var got struct{ Reservations []mews.Reservation }
			mustCall(t, s, "reservations/getAll/2023-06-06", body, &got)
			var ids []string
			for _, r := range got.Reservations {
				ids = append(ids, r.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}

	for name, iv := range map[string]map[string]any{
		"longer than 3 months": {"StartUtc": now.AddDate(0, -4, 0), "EndUtc": now},
		"backwards":            {"StartUtc": now, "EndUtc": now.Add(-time.Hour)},
		"open ended":           {"StartUtc": now},
	} {
		if a := call(t, s, "reservations/getAll/2023-06-06", map[string]any{"UpdatedUtc": iv, "Limitation": lim}); a.status != http.StatusBadRequest {
			t.Errorf("UpdatedUtc %s: status %d, want 400", name, a.status)
		}
	}
}

func TestResourcesCustomersDevices(t *testing.T) {
	s := newServer(t)
	s.AddResource(mews.Resource{ID: "closed-room", Name: "113", IsActive: false})
	lim := map[string]any{"Count": 100}

	var res struct{ Resources []mews.Resource }
	mustCall(t, s, "resources/getAll", map[string]any{"Names": []string{"101", "113"}, "Extent": map[string]any{"Resources": true}, "Limitation": lim}, &res)
	if len(res.Resources) != 1 || res.Resources[0].Name != "101" {
		t.Errorf("active resources %+v", res.Resources)
	}
	mustCall(t, s, "resources/getAll", map[string]any{"ResourceIds": []string{"closed-room"}, "Extent": map[string]any{"Resources": true, "Inactive": true}, "Limitation": lim}, &res)
	if len(res.Resources) != 1 || res.Resources[0].ID != "closed-room" {
		t.Errorf("inactive resources %+v", res.Resources)
	}
	if a := call(t, s, "resources/getAll", map[string]any{"Limitation": lim}); a.status != http.StatusBadRequest {
		t.Errorf("no Extent: status %d, want 400", a.status)
	}

	var cust struct{ Customers []mews.Customer }
	mustCall(t, s, "customers/getAll", map[string]any{"CustomerIds": []string{mewstest.CustomerAngstrom.ID}, "Extent": map[string]any{"Customers": true}, "Limitation": lim}, &cust)
	if len(cust.Customers) != 1 || cust.Customers[0] != mewstest.CustomerAngstrom {
		t.Errorf("customers %+v", cust.Customers)
	}
	if a := call(t, s, "customers/getAll", map[string]any{"Extent": map[string]any{"Customers": true}, "Limitation": lim}); a.status != http.StatusBadRequest {
		t.Errorf("no filter: status %d, want 400", a.status)
	}

	var dev struct{ Devices []mews.Device }
	mustCall(t, s, "devices/getAll", nil, &dev)
	if !slices.Equal(dev.Devices, []mews.Device{mewstest.KeyCutter1, mewstest.KeyCutter2, mewstest.Printer1}) {
		t.Errorf("devices %+v", dev.Devices)
	}
}

func TestResourceAccessTokens(t *testing.T) {
	s := newServer(t)
	res, _ := s.Reservation(mewstest.ReservationCheckedIn)
	lim := map[string]any{"Count": 100}
	param := func(value string) map[string]any {
		return map[string]any{
			"ServiceOrderId": res.ID, "ResourceId": res.AssignedResourceID, "Type": "PinCode", "Value": value,
			"ValidityStartUtc": res.ScheduledStartUtc, "ValidityEndUtc": res.ScheduledEndUtc,
			"Permissions": map[string]any{"Room": map[string]any{"Value": true}},
		}
	}
	type token struct {
		mews.ResourceAccessToken
		IsActive   bool
		CreatedUtc time.Time
	}
	var added struct{ ResourceAccessTokens []token }
	mustCall(t, s, "resourceAccessTokens/add", map[string]any{"ResourceAccessTokenParameters": []any{param("1234#"), param("5678#")}}, &added)
	if len(added.ResourceAccessTokens) != 2 {
		t.Fatalf("added %+v", added)
	}
	first := added.ResourceAccessTokens[0]
	if first.ID == "" || !first.IsActive || first.Value != "1234#" || first.Permissions == nil || !first.Permissions.Room ||
		first.Permissions.Bed || !first.ValidityEndUtc.Equal(res.ScheduledEndUtc) || first.CreatedUtc.IsZero() {
		t.Errorf("added token %+v", first)
	}

	newEnd := res.ScheduledEndUtc.Add(24 * time.Hour)
	var updated struct{ ResourceAccessTokens []token }
	mustCall(t, s, "resourceAccessTokens/update", map[string]any{"ResourceAccessTokenUpdates": []any{map[string]any{
		"ResourceAccessTokenId": first.ID, "ValidityEndUtc": map[string]any{"Value": newEnd},
		"Permissions": map[string]any{"Floor": map[string]any{"Value": true}},
	}}}, &updated)
	if u := updated.ResourceAccessTokens; len(u) != 1 || !u[0].ValidityEndUtc.Equal(newEnd) || !u[0].Permissions.Room || !u[0].Permissions.Floor {
		t.Errorf("updated %+v", updated)
	}

	mustCall(t, s, "resourceAccessTokens/delete", map[string]any{"Ids": []string{first.ID}}, nil)
	var got struct{ ResourceAccessTokens []token }
	mustCall(t, s, "resourceAccessTokens/getAll", map[string]any{"ServiceOrderIds": []string{res.ID}, "Limitation": lim}, &got)
	if len(got.ResourceAccessTokens) != 1 || got.ResourceAccessTokens[0].Value != "5678#" {
		t.Errorf("active tokens %+v", got.ResourceAccessTokens)
	}
	mustCall(t, s, "resourceAccessTokens/getAll", map[string]any{"ResourceAccessTokenIds": []string{first.ID}, "ActivityStates": []string{"Deleted"}, "Limitation": lim}, &got)
	if len(got.ResourceAccessTokens) != 1 || got.ResourceAccessTokens[0].IsActive {
		t.Errorf("deleted tokens %+v", got.ResourceAccessTokens)
	}

	if a := call(t, s, "resourceAccessTokens/add", map[string]any{"ResourceAccessTokenParameters": []any{param("9"), map[string]any{"ServiceOrderId": "nope"}}}); a.status != http.StatusBadRequest {
		t.Errorf("bad add: status %d, want 400", a.status)
	}
	if a := call(t, s, "resourceAccessTokens/getAll", map[string]any{"Limitation": lim}); a.status != http.StatusBadRequest {
		t.Errorf("getAll without filter: status %d, want 400", a.status)
	}
	toks := s.AccessTokens()
	if len(toks) != 2 || toks[0].IsActive || !toks[1].IsActive {
		t.Errorf("store %+v: want the deleted and the active token, nothing from the refused add", toks)
	}
}

func TestCompanionships(t *testing.T) {
	s := newServer(t)
	lim := map[string]any{"Count": 100}
	res := mewstest.ReservationCheckedIn
	before, _ := s.Reservation(res)
	id := s.AddCompanion(res, mewstest.CustomerGarcia.ID)
	if after, _ := s.Reservation(res); !after.UpdatedUtc.After(before.UpdatedUtc) {
		t.Errorf("adding a companion left the reservation at version %v", after.UpdatedUtc)
	}
	var got struct {
		Companionships []map[string]any
		Customers      []any
		Cursor         *string
	}
	mustCall(t, s, "companionships/getAll", map[string]any{"ReservationIds": []string{res}, "Limitation": lim}, &got)
	if len(got.Companionships) != 1 || got.Companionships[0]["Id"] != id || got.Companionships[0]["CustomerId"] != mewstest.CustomerGarcia.ID ||
		got.Companionships[0]["ReservationId"] != res || got.Companionships[0]["ReservationGroupId"] == nil || got.Cursor == nil || *got.Cursor != id {
		t.Errorf("companionships %+v", got)
	}
	mustCall(t, s, "companionships/getAll", map[string]any{"CustomerIds": []string{mewstest.CustomerNovak.ID}, "Limitation": lim}, &got)
	if len(got.Companionships) != 0 {
		t.Errorf("companionships of another customer %+v", got.Companionships)
	}
	if a := call(t, s, "companionships/getAll", map[string]any{"Limitation": lim}); a.status != http.StatusBadRequest {
		t.Errorf("no filter: status %d, want 400", a.status)
	}
	if a := call(t, s, "companionships/getAll", map[string]any{"ReservationIds": []string{res}}); a.status != http.StatusBadRequest {
		t.Errorf("no Limitation: status %d, want 400", a.status)
	}
	s.RemoveCompanion(id)
	mustCall(t, s, "companionships/getAll", map[string]any{"ReservationIds": []string{res}, "Limitation": lim}, &got)
	if len(got.Companionships) != 0 {
		t.Errorf("companionships after the removal %+v", got.Companionships)
	}
}

// TestAddedTokensAnsweredOutOfOrder: Mews does not document that its
// answer to resourceAccessTokens/add keeps the request's order, and the
// simulator can answer in reverse.
func TestAddedTokensAnsweredOutOfOrder(t *testing.T) {
	s := newServer(t)
	s.ReverseAddedTokens(true)
	res, _ := s.Reservation(mewstest.ReservationCheckedIn)
	param := func(value string) map[string]any {
		return map[string]any{"ServiceOrderId": res.ID, "Type": "PinCode", "Value": value,
			"ValidityStartUtc": res.ScheduledStartUtc, "ValidityEndUtc": res.ScheduledEndUtc}
	}
	var added struct{ ResourceAccessTokens []mews.ResourceAccessToken }
	mustCall(t, s, "resourceAccessTokens/add", map[string]any{"ResourceAccessTokenParameters": []any{param("1"), param("2"), param("3")}}, &added)
	var values []string
	for _, tok := range added.ResourceAccessTokens {
		values = append(values, tok.Value)
	}
	if !slices.Equal(values, []string{"3", "2", "1"}) {
		t.Errorf("answered %v, want the reverse of the request", values)
	}
}
