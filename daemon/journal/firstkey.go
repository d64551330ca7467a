package journal

import (
	"encoding/json"
	"slices"
	"time"
)

// The first card of a reservation for a set of rooms replaces whatever
// cards those rooms had (FIAS KT=N); later ones for the same rooms are
// duplicates. Mews gives no flag, so the journal remembers, per
// reservation, the rooms of its last new card and the stay's end, so
// compaction can forget it once the guest is long gone.
const firstKeyPrefix = "first-key/"

// FirstKey is what the journal remembers of a reservation's last new card.
type FirstKey struct {
	// Rooms is the sorted set of lock ids; never nil once written. Nil
	// means a record from before room sets were kept, or an unreadable
	// one: it matches any rooms, so that an upgrade never makes a card
	// new (KT=N) that could invalidate the cards a guest already holds.
	Rooms []string  `json:"rooms"`
	End   time.Time `json:"end"`
}

// For reports whether a card for lockIDs is for the rooms of this record.
func (k FirstKey) For(lockIDs []string) bool {
	return k.Rooms == nil || slices.Equal(k.Rooms, RoomSet(lockIDs))
}

// RoomSet is lock ids as a set: sorted, without repeats, never nil.
func RoomSet(lockIDs []string) []string {
	rooms := append([]string{}, lockIDs...)
	slices.Sort(rooms)
	return slices.Compact(rooms)
}

// decodeFirstKey reads a record; an old one holds just the stay's end, and
// an unreadable one has a zero end, so compaction drops it.
func decodeFirstKey(v []byte) FirstKey {
	var k FirstKey
	if json.Unmarshal(v, &k) == nil && k.Rooms != nil {
		return k
	}
	end, _ := time.Parse(time.RFC3339, string(v))
	return FirstKey{End: end}
}

// FirstKey returns the reservation's record; ok is false when it has none.
func (j *Journal) FirstKey(reservationID string) (k FirstKey, ok bool, err error) {
	v, err := j.getMeta(firstKeyPrefix + reservationID)
	if err != nil || v == nil {
		return FirstKey{}, false, err
	}
	return decodeFirstKey(v), true, nil
}

// PutFirstKey records a new card for the reservation's rooms.
func (j *Journal) PutFirstKey(reservationID string, lockIDs []string, end time.Time) error {
	v, err := json.Marshal(FirstKey{Rooms: RoomSet(lockIDs), End: end.UTC()})
	if err != nil {
		return err
	}
	return j.setMeta(firstKeyPrefix+reservationID, v)
}

// ForgetFirstKeys drops the records of stays that ended before cutoff: no
// card will be cut for them again. It returns how many it dropped.
func (j *Journal) ForgetFirstKeys(cutoff time.Time) (int, error) {
	recs, err := j.metaWithPrefix(firstKeyPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for key, v := range recs {
		if decodeFirstKey(v).End.After(cutoff) {
			continue
		}
		if err := j.deleteMeta(key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
