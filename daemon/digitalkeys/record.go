package digitalkeys

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
)

// record is the journal entry of one reservation: the main guest's key
// (State, keySet) and their companions'.
type record struct {
	State
	keySet
	Number string `json:"number,omitempty"`
	// RoomName is the lock the key opens (a room's name in Mews), BedName
	// the bed Grant.Room is when it is one.
	RoomName string `json:"room_name,omitempty"`
	BedName  string `json:"bed,omitempty"`
	// Guest is the customer the main guest's key was made for.
	Guest string `json:"guest,omitempty"`
	// Companions are the keys of the guests travelling with the main
	// guest, by companionship id: an entry while one may exist.
	Companions map[string]*companionRecord `json:"companions,omitempty"`
	// CompanionAttempts counts failed companion operations in a row, for
	// the backoff of their retries.
	CompanionAttempts int `json:"companion_attempts,omitempty"`
	// RetryAt is set after a failure that certainly changed nothing;
	// Attempts counts such failures in a row, for their backoff. Both
	// belong to the failed decision: the next decision that needs no
	// operation, and every success, clears them.
	RetryAt  time.Time `json:"retry_at"`
	Attempts int       `json:"attempts,omitempty"`
	// Gone are keys Mews must stop showing. See writeback.go.
	Gone              []storedKey `json:"gone,omitempty"`
	WriteBackAt       time.Time   `json:"write_back_at"`
	WriteBackAttempts int         `json:"write_back_attempts,omitempty"`
}

// keySet is one person's keys: the encoder's answer, and what Mews shows
// of them. ValidityOwed says their tokens still carry old dates.
type keySet struct {
	Keys         []storedKey `json:"keys,omitempty"`
	ValidityOwed bool        `json:"validity_owed,omitempty"`
}

// companionRecord is a companion's key.
type companionRecord struct {
	Companion
	keySet
	Customer string `json:"customer"`
	RoomName string `json:"room_name,omitempty"`
	BedName  string `json:"bed,omitempty"`
}

// storedKey is a key as the encoder returned it, with the id of its record
// in Mews (resourceAccessTokens) once written back.
type storedKey struct {
	ID    string       `json:"id,omitempty"`
	Type  keys.KeyType `json:"type"`
	Value string       `json:"value"`
	Token string       `json:"token,omitempty"`
	// Sent: an add of this key may have reached Mews, so look before
	// adding it again.
	Sent bool `json:"sent,omitempty"`
	// Room is the resource id it was recorded for, to recognise it; Bed
	// says that resource is a bed; Companionship whose key it is (empty:
	// the main guest's).
	Room          string `json:"room,omitempty"`
	Bed           bool   `json:"bed,omitempty"`
	Companionship string `json:"companionship,omitempty"`
}

// worthKeeping: anything else says no more than a missing entry does.
func (r *record) worthKeeping() bool {
	return r.Status != NotIssued || r.Pending != "" || !r.WakeAt.IsZero() ||
		!r.RetryAt.IsZero() || len(r.Keys) > 0 || len(r.Gone) > 0 || r.ValidityOwed || len(r.Companions) > 0
}

// interrupted returns the operation, on the main guest's key or a
// companion's, that a crash interrupted, if any.
func (r *record) interrupted() Action {
	if r.Pending != "" {
		return r.Pending
	}
	for _, c := range r.Companions {
		if c.Pending != "" {
			return c.Pending
		}
	}
	return ""
}

func (dk *Pipeline) schedule(id string, rec *record) {
	if dk.owesWriteBack(rec) {
		dk.owed[id] = rec.WriteBackAt
	} else {
		delete(dk.owed, id)
	}
	at := rec.WakeAt
	if !rec.RetryAt.IsZero() && (at.IsZero() || rec.RetryAt.Before(at)) {
		at = rec.RetryAt
	}
	if at.IsZero() {
		delete(dk.wake, id)
		return
	}
	dk.wake[id] = at
}

func (dk *Pipeline) load(id string) (record, error) {
	var rec record
	raw, err := dk.store.DigitalRecord(id)
	if err != nil || raw == nil {
		return rec, err
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, fmt.Errorf("digital key record of %s: %w", id, err)
	}
	return rec, nil
}

// save writes the record (or removes it when it says nothing) and
// schedules its next look. It is on disk when it returns nil.
func (dk *Pipeline) save(id string, rec *record) error {
	dk.schedule(id, rec)
	if !rec.worthKeeping() {
		return dk.store.DeleteDigitalRecord(id)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("digital key record of %s: %w", id, err)
	}
	return dk.store.PutDigitalRecord(id, raw)
}

// retryLater schedules another look after a failure that changed nothing.
func (dk *Pipeline) retryLater(id string, rec record) {
	rec.Attempts++
	rec.RetryAt = dk.now().Add(dk.retry.After(rec.Attempts))
	if err := dk.save(id, &rec); err != nil {
		dk.log.Error().Err(err).Str(fieldReservation, id).Msg("recording the digital key retry")
	}
}
