package mewstest_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

func TestCommandStateMachine(t *testing.T) {
	const (
		P   = mews.CommandPending
		R   = mews.CommandReceived
		Pr  = mews.CommandProcessing
		Ok  = mews.CommandProcessed
		Can = mews.CommandCancelled
		Err = mews.CommandError
	)
	tests := []struct {
		name   string
		from   mews.CommandState
		to     mews.CommandState
		extra  map[string]any
		status int
	}{
		{"pending to processing", P, Pr, nil, http.StatusOK},
		{"pending to processed with notes", P, Ok, map[string]any{"Notes": "2 keys for room 101"}, http.StatusOK},
		{"received to processing", R, Pr, nil, http.StatusOK},
		{"received to cancelled with notes", R, Can, map[string]any{"Notes": "too old"}, http.StatusOK},
		{"received to error", R, Err, nil, http.StatusOK},
		{"processing progress", Pr, Pr, map[string]any{"Progress": 0.5}, http.StatusOK},
		{"processing to processed", Pr, Ok, map[string]any{"Notes": "done"}, http.StatusOK},
		{"processing to cancelled", Pr, Can, nil, http.StatusOK},
		{"processing to error", Pr, Err, map[string]any{"Notes": "no card presented within 60s"}, http.StatusOK},
		{"processed is final", Ok, Pr, nil, http.StatusForbidden},
		{"cancelled is final", Can, Err, nil, http.StatusForbidden},
		{"error is final", Err, Ok, nil, http.StatusForbidden},
		{"client cannot set received", P, R, nil, http.StatusBadRequest},
		{"client cannot set pending", Pr, P, nil, http.StatusBadRequest},
		{"notes only with final states", Pr, Pr, map[string]any{"Notes": "x"}, http.StatusBadRequest},
		{"progress only with processing", Pr, Ok, map[string]any{"Progress": 1}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			id := s.CreateCommand(mews.Command{Device: mewstest.KeyCutter1, Data: []byte(`{}`)})
			if tt.from != mews.CommandPending {
				s.SetCommandState(id, tt.from)
			}
			body := map[string]any{"CommandId": id, "State": tt.to}
			for k, v := range tt.extra {
				body[k] = v
			}
			a := call(t, s, "commands/update", body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.raw)
			}
			cmd, _ := s.Command(id)
			if tt.status != http.StatusOK {
				if cmd.State != tt.from {
					t.Errorf("state %s after a refused update, want %s", cmd.State, tt.from)
				}
				if a.body["Message"] == "" || a.body["RequestId"] != a.header.Get("Request-Id") {
					t.Errorf("error body %s, Request-Id %q", a.raw, a.header.Get("Request-Id"))
				}
				return
			}
			if cmd.State != tt.to {
				t.Errorf("state %s, want %s", cmd.State, tt.to)
			}
			if hist := s.StateHistory(id); hist[len(hist)-1] != tt.to {
				t.Errorf("history %v does not end in %s", hist, tt.to)
			}
			if notes, _ := tt.extra["Notes"].(string); s.CommandNotes(id) != notes {
				t.Errorf("notes %q, want %q", s.CommandNotes(id), notes)
			}
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		s := newServer(t)
		a := call(t, s, "commands/update", map[string]any{"CommandId": "nope", "State": "Processing"})
		if a.status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", a.status)
		}
	})
}

func TestFetchMarksReceived(t *testing.T) {
	for _, op := range []string{"commands/getAllActive", "commands/getAllByIds"} {
		t.Run(op, func(t *testing.T) {
			s := newServer(t)
			id := newCommand(t, s)
			var got struct{ Commands []mews.Command }
			mustCall(t, s, op, map[string]any{"CommandIds": []string{id}}, &got)
			if len(got.Commands) != 1 || got.Commands[0].ID != id || got.Commands[0].State != mews.CommandPending {
				t.Fatalf("commands %+v, want the one Pending command", got.Commands)
			}
			if hist := s.StateHistory(id); !slices.Equal(hist, []mews.CommandState{mews.CommandPending, mews.CommandReceived}) {
				t.Fatalf("history %v, want Pending, Received", hist)
			}
			// A second read finds it Received and changes nothing.
			mustCall(t, s, op, map[string]any{"CommandIds": []string{id}}, &got)
			if got.Commands[0].State != mews.CommandReceived || len(s.StateHistory(id)) != 2 {
				t.Fatalf("second read: %+v, history %v", got.Commands, s.StateHistory(id))
			}
		})
	}
}

func TestGetAllActiveSkipsFinished(t *testing.T) {
	s := newServer(t)
	done := newCommand(t, s)
	s.SetCommandState(done, mews.CommandProcessed)
	working := newCommand(t, s)
	s.SetCommandState(working, mews.CommandProcessing)
	active := newCommand(t, s)
	var got struct{ Commands []mews.Command }
	mustCall(t, s, "commands/getAllActive", nil, &got)
	if len(got.Commands) != 1 || got.Commands[0].ID != active {
		t.Fatalf("active commands %+v, want only %s", got.Commands, active)
	}
}

func TestAddKeyCutter(t *testing.T) {
	s := newServer(t)
	var got struct{ CommandId string }
	mustCall(t, s, "commands/addKeyCutter", map[string]any{
		"KeyCutterId": mewstest.KeyCutter2.ID, "ReservationId": mewstest.ReservationArriving, "KeyCount": 3,
	}, &got)
	cmd, ok := s.Command(got.CommandId)
	if !ok || cmd.State != mews.CommandPending || cmd.Device != mewstest.KeyCutter2 {
		t.Fatalf("command %+v", cmd)
	}
	data, err := cmd.KeyCutter()
	if err != nil {
		t.Fatal(err)
	}
	res, _ := s.Reservation(mewstest.ReservationArriving)
	want := mews.KeyCutterData{
		KeyCutterID: "frontdesk-2", KeyCount: 3, LockIDs: []string{"102"},
		StartUtc: res.ScheduledStartUtc, EndUtc: res.ScheduledEndUtc,
		FirstName: "Zoë", LastName: "Ångström", NormalizedFirstName: "Zoe", NormalizedLastName: "Angstrom",
		Telephone: mewstest.CustomerAngstrom.Phone, Email: mewstest.CustomerAngstrom.Email,
		ReservationID: mewstest.ReservationArriving, ReservationNumber: "1002",
	}
	if !equalJSON(t, *data, want) {
		t.Errorf("data %+v,\nwant %+v", *data, want)
	}

	for name, body := range map[string]map[string]any{
		"printer is not a key cutter": {"KeyCutterId": mewstest.Printer1.ID, "ReservationId": mewstest.ReservationArriving, "KeyCount": 1},
		"unknown reservation":         {"KeyCutterId": mewstest.KeyCutter1.ID, "ReservationId": "nope", "KeyCount": 1},
		"no keys":                     {"KeyCutterId": mewstest.KeyCutter1.ID, "ReservationId": mewstest.ReservationArriving, "KeyCount": 0},
	} {
		if a := call(t, s, "commands/addKeyCutter", body); a.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, a.status)
		}
	}
	unassigned, err := s.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationUnassigned, 1)
	if err != nil {
		t.Fatalf("no room: %v", err)
	}
	cmd, _ = s.Command(unassigned)
	if data, err := cmd.KeyCutter(); err != nil || data.LockIDs == nil || len(data.LockIDs) != 0 {
		t.Errorf("no room: data %+v %v, want empty LockIds", data, err)
	}
}

// TestKeyCutterSettings: a key cutter's settings in Mews ride on each of
// its commands, the ones created after a change with the new settings.
func TestKeyCutterSettings(t *testing.T) {
	s := newServer(t)
	cut := func() *mews.KeyCutterData {
		t.Helper()
		id, err := s.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationArriving, 1)
		if err != nil {
			t.Fatal(err)
		}
		cmd, _ := s.Command(id)
		data, err := cmd.KeyCutter()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if d := cut(); d.APIURL != "" || d.KeyCutterData != "" {
		t.Errorf("no settings: ApiUrl %q, KeyCutterData %q", d.APIURL, d.KeyCutterData)
	}
	s.SetKeyCutterSettings(mewstest.KeyCutter1.ID, mewstest.KeyCutterSettings{APIURL: "http://10.0.0.5:8090", Data: `{"Type":"FiasProtocol"}`})
	if d := cut(); d.APIURL != "http://10.0.0.5:8090" || d.KeyCutterData != `{"Type":"FiasProtocol"}` || d.KeyCutterID != "frontdesk-1" {
		t.Errorf("settings: %+v", d)
	}
}
