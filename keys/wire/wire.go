// Package wire is the JSON protocol that the exec and http drivers speak with
// vendor software (SPEC §6): one request object in, one answer object out.
// The field names are a published contract; never rename one.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
)

// Operation names the key operation a request asks for.
type Operation string

// Operations.
const (
	Issue  Operation = "issue"
	Update Operation = "update"
	Revoke Operation = "revoke"
)

// Request is the object a vendor program or server receives.
type Request struct {
	Operation         Operation `json:"operation"`
	IdempotencyKey    string    `json:"idempotency_key"`
	Kind              keys.Kind `json:"kind"`
	NewKey            bool      `json:"new_key"`
	ReservationID     string    `json:"reservation_id"`
	ReservationNumber string    `json:"reservation_number"`
	Rooms             []string  `json:"rooms"`
	LockIDs           []string  `json:"lock_ids"`
	KeyCount          int       `json:"key_count"`
	// Times are RFC 3339 in UTC; empty when the request has none.
	ValidFrom  string `json:"valid_from"`
	ValidUntil string `json:"valid_until"`
	Guest      Guest  `json:"guest"`
	Encoder    string `json:"encoder"`
	// Additions to the SPEC's object, for vendors configured per device in
	// Mews.
	APIURL        string `json:"api_url,omitempty"`
	KeyCutterData string `json:"key_cutter_data,omitempty"`
	// Additions for digital keys, present only when they say something: a
	// companion's own key (see keys.Request) and a bed's key.
	Companion             bool   `json:"companion,omitempty"`
	CompanionshipID       string `json:"companionship_id,omitempty"`
	MainReservationNumber string `json:"main_reservation_number,omitempty"`
	Bed                   string `json:"bed,omitempty"`
}

// Guest is the key holder.
type Guest struct {
	FirstName           string `json:"first_name"`
	LastName            string `json:"last_name"`
	NormalizedFirstName string `json:"normalized_first_name"`
	NormalizedLastName  string `json:"normalized_last_name"`
	Email               string `json:"email"`
	Phone               string `json:"phone"`
}

// Answer is the object the vendor sends back. OK is a pointer so that an
// answer without "ok" is told apart from a refusal.
type Answer struct {
	OK    *bool  `json:"ok"`
	Note  string `json:"note,omitempty"`
	Keys  []Key  `json:"keys,omitempty"`
	Error string `json:"error,omitempty"`
}

// Key is one credential in an answer.
type Key struct {
	ID    string       `json:"id"`
	Type  keys.KeyType `json:"type"`
	Value string       `json:"value"`
}

// NewRequest converts a driver request to its wire form.
func NewRequest(op Operation, r keys.Request) Request {
	return Request{
		Operation:         op,
		IdempotencyKey:    r.IdempotencyKey,
		Kind:              r.Kind,
		NewKey:            r.NewKey,
		ReservationID:     r.ReservationID,
		ReservationNumber: r.ReservationNumber,
		Rooms:             nonNil(r.Rooms),
		LockIDs:           nonNil(r.LockIDs),
		KeyCount:          r.KeyCount,
		ValidFrom:         formatTime(r.ValidFrom),
		ValidUntil:        formatTime(r.ValidUntil),
		Guest: Guest{
			FirstName:           r.Guest.FirstName,
			LastName:            r.Guest.LastName,
			NormalizedFirstName: r.Guest.NormalizedFirstName,
			NormalizedLastName:  r.Guest.NormalizedLastName,
			Email:               r.Guest.Email,
			Phone:               r.Guest.Phone,
		},
		Encoder:               r.Encoder,
		APIURL:                r.APIURL,
		KeyCutterData:         r.CutterData,
		Companion:             r.Companion,
		CompanionshipID:       r.CompanionshipID,
		MainReservationNumber: r.MainReservationNumber,
		Bed:                   r.Bed,
	}
}

// Vendors index into arrays without checking for null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ErrNoValidAnswer is wrapped by ParseAnswer when the bytes are not an
// answer object.
var ErrNoValidAnswer = errors.New("no valid answer")

// ParseAnswer reads b as exactly one answer object. An answer with ok:true
// becomes a Result; ok:false becomes a *keys.Error carrying the vendor's
// message with MaybeCut false, because the vendor said it did nothing.
// Anything else wraps ErrNoValidAnswer.
func ParseAnswer(b []byte) (keys.Result, error) {
	var a Answer
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&a); err != nil {
		return keys.Result{}, fmt.Errorf("%w: %v", ErrNoValidAnswer, err)
	}
	if dec.More() {
		return keys.Result{}, fmt.Errorf("%w: more than one JSON value", ErrNoValidAnswer)
	}
	if a.OK == nil {
		return keys.Result{}, fmt.Errorf("%w: \"ok\" missing", ErrNoValidAnswer)
	}
	if !*a.OK {
		msg := a.Error
		if msg == "" {
			msg = "encoder refused without giving a reason"
		}
		return keys.Result{}, &keys.Error{Msg: msg}
	}
	res := keys.Result{Note: a.Note}
	for i, k := range a.Keys {
		switch k.Type {
		case keys.KeyRfidTag, keys.KeyPinCode, keys.KeyMobile:
		default:
			return keys.Result{}, fmt.Errorf("%w: keys[%d]: unknown type %q", ErrNoValidAnswer, i, k.Type)
		}
		res.Keys = append(res.Keys, keys.Key{ID: k.ID, Type: k.Type, Value: k.Value})
	}
	return res, nil
}

// Success builds the answer for a result; fake vendors in tests use it.
func Success(res keys.Result) Answer {
	ok := true
	a := Answer{OK: &ok, Note: res.Note}
	for _, k := range res.Keys {
		a.Keys = append(a.Keys, Key{ID: k.ID, Type: k.Type, Value: k.Value})
	}
	return a
}

// Failure builds a refusal with a message for the receptionist.
func Failure(msg string) Answer {
	ok := false
	return Answer{OK: &ok, Error: msg}
}
