package wire_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

// The object below is the SPEC §6 example with values filled in; vendors
// program against these exact names.
func TestRequestFieldNames(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	req := keys.Request{
		IdempotencyKey:    "cmd-1",
		Encoder:           "frontdesk",
		Kind:              keys.KindCard,
		NewKey:            true,
		ReservationID:     "res-1",
		ReservationNumber: "1234",
		Rooms:             []string{"0101"},
		LockIDs:           []string{"101"},
		KeyCount:          2,
		ValidFrom:         time.Date(2025, 3, 1, 15, 0, 0, 0, cet),
		ValidUntil:        time.Date(2025, 3, 3, 11, 0, 0, 0, time.UTC),
		Guest: keys.Guest{
			FirstName: "Jörg", LastName: "Müller",
			NormalizedFirstName: "Jorg", NormalizedLastName: "Muller",
			Email: "j@example.com", Phone: "+420 1",
		},
	}
	got, err := json.Marshal(wire.NewRequest(wire.Issue, req))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"operation":"issue","idempotency_key":"cmd-1","kind":"card","new_key":true,` +
		`"reservation_id":"res-1","reservation_number":"1234","rooms":["0101"],"lock_ids":["101"],` +
		`"key_count":2,"valid_from":"2025-03-01T14:00:00Z","valid_until":"2025-03-03T11:00:00Z",` +
		`"guest":{"first_name":"Jörg","last_name":"Müller","normalized_first_name":"Jorg",` +
		`"normalized_last_name":"Muller","email":"j@example.com","phone":"+420 1"},"encoder":"frontdesk"}`
	if string(got) != want {
		t.Errorf("request JSON\n got %s\nwant %s", got, want)
	}
}

// TestRequestDigitalAdditions: a companion's key and a bed's key say so;
// the SPEC's object is unchanged around them, and requests that are
// neither carry none of the additions.
func TestRequestDigitalAdditions(t *testing.T) {
	req := keys.Request{IdempotencyKey: "res-1/issue/v1", Encoder: "mobile", Kind: keys.KindDigital, NewKey: true,
		ReservationID: "res-1", ReservationNumber: "1234", Rooms: []string{"0101"}, LockIDs: []string{"D1"}, KeyCount: 1,
		Guest:     keys.Guest{LastName: "Nowak", Email: "n@example.com"},
		Companion: true, CompanionshipID: "comp-1", MainReservationNumber: "1234", Bed: "D1-A"}
	got, err := json.Marshal(wire.NewRequest(wire.Issue, req))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"operation":"issue","idempotency_key":"res-1/issue/v1","kind":"digital","new_key":true,` +
		`"reservation_id":"res-1","reservation_number":"1234","rooms":["0101"],"lock_ids":["D1"],` +
		`"key_count":1,"valid_from":"","valid_until":"",` +
		`"guest":{"first_name":"","last_name":"Nowak","normalized_first_name":"",` +
		`"normalized_last_name":"","email":"n@example.com","phone":""},"encoder":"mobile",` +
		`"companion":true,"companionship_id":"comp-1","main_reservation_number":"1234","bed":"D1-A"}`
	if string(got) != want {
		t.Errorf("request JSON\n got %s\nwant %s", got, want)
	}
	req.Companion, req.CompanionshipID, req.MainReservationNumber, req.Bed = false, "", "", ""
	plain, err := json.Marshal(wire.NewRequest(wire.Issue, req))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(plain, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"companion", "companionship_id", "main_reservation_number", "bed"} {
		if _, ok := m[f]; ok {
			t.Errorf("%s present in the main guest's key for a room: %s", f, plain)
		}
	}
}

func TestRequestEmptyListsAreArrays(t *testing.T) {
	got, err := json.Marshal(wire.NewRequest(wire.Revoke, keys.Request{ReservationID: "r"}))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rooms", "lock_ids"} {
		if _, ok := m[f].([]any); !ok {
			t.Errorf("%s = %v, want an empty array", f, m[f])
		}
	}
	if m["valid_from"] != "" {
		t.Errorf("valid_from = %v, want empty for a zero time", m["valid_from"])
	}
	if _, ok := m["api_url"]; ok {
		t.Error("api_url present although empty")
	}
}

func TestParseAnswer(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    keys.Result
		refusal string // Msg of the *keys.Error, if a refusal
		invalid bool
	}{
		{name: "success", in: `{"ok":true,"note":"2 keys","keys":[{"id":"1","type":"RfidTag","value":"A1"},{"id":"2","type":"PinCode","value":"1234"}]}`,
			want: keys.Result{Note: "2 keys", Keys: []keys.Key{{ID: "1", Type: keys.KeyRfidTag, Value: "A1"}, {ID: "2", Type: keys.KeyPinCode, Value: "1234"}}}},
		{name: "success without keys", in: "\n {\"ok\":true}\n", want: keys.Result{}},
		{name: "unknown fields ignored", in: `{"ok":true,"vendor_extra":{"x":1}}`, want: keys.Result{}},
		{name: "refusal", in: `{"ok":false,"error":"no card presented"}`, refusal: "no card presented"},
		{name: "refusal without reason", in: `{"ok":false}`, refusal: "encoder refused without giving a reason"},
		{name: "ok missing", in: `{"error":"x"}`, invalid: true},
		{name: "ok not a bool", in: `{"ok":"yes"}`, invalid: true},
		{name: "empty", in: ``, invalid: true},
		{name: "not JSON", in: `Card written.`, invalid: true},
		{name: "two objects", in: `{"ok":true}{"ok":false}`, invalid: true},
		{name: "array", in: `[{"ok":true}]`, invalid: true},
		{name: "unknown key type", in: `{"ok":true,"keys":[{"type":"Magic","value":"1"}]}`, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := wire.ParseAnswer([]byte(tt.in))
			switch {
			case tt.invalid:
				if !errors.Is(err, wire.ErrNoValidAnswer) {
					t.Fatalf("err = %v, want ErrNoValidAnswer", err)
				}
			case tt.refusal != "":
				var ke *keys.Error
				if !errors.As(err, &ke) || ke.Msg != tt.refusal || ke.MaybeCut {
					t.Fatalf("err = %#v, want refusal %q with MaybeCut false", err, tt.refusal)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if res.Note != tt.want.Note || len(res.Keys) != len(tt.want.Keys) {
					t.Fatalf("result = %+v, want %+v", res, tt.want)
				}
				for i := range res.Keys {
					if res.Keys[i] != tt.want.Keys[i] {
						t.Errorf("key %d = %+v, want %+v", i, res.Keys[i], tt.want.Keys[i])
					}
				}
			}
		})
	}
}

func TestAnswerRoundTrip(t *testing.T) {
	res := keys.Result{Note: "n", Keys: []keys.Key{{ID: "k", Type: keys.KeyMobile, Value: "v"}}}
	for _, a := range []wire.Answer{wire.Success(res), wire.Failure("lock system offline")} {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wire.ParseAnswer(b)
		if *a.OK {
			if err != nil || got.Keys[0] != res.Keys[0] {
				t.Errorf("%s: got %+v, %v", b, got, err)
			}
		} else if keys.Message(err) != "lock system offline" {
			t.Errorf("%s: err = %v", b, err)
		}
	}
}
