package journal_test

import (
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
)

// isFirst is the daemon's question: is a card for rooms a new one?
func isFirst(t *testing.T, j *journal.Journal, id string, rooms []string) bool {
	t.Helper()
	k, ok, err := j.FirstKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return !ok || !k.For(rooms)
}

// TestFirstKeyRecordsOutliveTheStayOnly: the record that makes later cards
// duplicates (KT=D) is kept while the stay lasts and forgotten once it
// ended before the cutoff.
func TestFirstKeyRecordsOutliveTheStayOnly(t *testing.T) {
	c := newClock()
	j := openJournal(t, t.TempDir(), c)
	now, room := c.Now(), []string{"101"}
	if !isFirst(t, j, "staying", room) {
		t.Fatal("a reservation without cards is not first")
	}
	must(t, j.PutFirstKey("staying", room, now.Add(48*time.Hour)))
	must(t, j.PutFirstKey("left-yesterday", room, now.Add(-24*time.Hour)))
	must(t, j.PutFirstKey("left-long-ago", room, now.Add(-30*24*time.Hour)))
	if isFirst(t, j, "staying", room) || isFirst(t, j, "left-yesterday", room) {
		t.Fatal("a reservation with a card is still first")
	}
	n, err := j.ForgetFirstKeys(now.Add(-7 * 24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("forgot %d (%v), want only the stay that ended 30 days ago", n, err)
	}
	if !isFirst(t, j, "left-long-ago", room) || isFirst(t, j, "staying", room) || isFirst(t, j, "left-yesterday", room) {
		t.Error("wrong records forgotten")
	}
}

// TestFirstKeyPerRoomSet: the rooms are a set (order and repeats do not
// matter), and a card for another set is first again.
func TestFirstKeyPerRoomSet(t *testing.T) {
	c := newClock()
	j := openJournal(t, t.TempDir(), c)
	end := c.Now().Add(time.Hour)
	must(t, j.PutFirstKey("r", []string{"102", "101"}, end))
	for _, tc := range []struct {
		rooms []string
		first bool
	}{
		{[]string{"101", "102"}, false},
		{[]string{"102", "101", "102"}, false},
		{[]string{"101"}, true},
		{[]string{"101", "102", "103"}, true},
		{nil, true},
	} {
		if got := isFirst(t, j, "r", tc.rooms); got != tc.first {
			t.Errorf("rooms %v: first %v, want %v", tc.rooms, got, tc.first)
		}
	}
	must(t, j.PutFirstKey("r", nil, end))
	if isFirst(t, j, "r", []string{}) || !isFirst(t, j, "r", []string{"101"}) {
		t.Error("a card without rooms is a room set of its own")
	}
	must(t, j.PutFirstKey("r", []string{"103"}, end))
	if isFirst(t, j, "r", []string{"103"}) || !isFirst(t, j, "r", []string{"101", "102"}) {
		t.Error("the last new card's rooms are not what counts")
	}
}

// TestFirstKeyOldRecords: a record written before room sets were kept (the
// stay's end alone) makes every card a duplicate, whatever the rooms: an
// upgrade never invalidates cards a guest holds. Compaction still reads
// its end; an unreadable record counts the same and is compacted.
func TestFirstKeyOldRecords(t *testing.T) {
	c := newClock()
	j := openJournal(t, t.TempDir(), c)
	now := c.Now()
	for id, v := range map[string]string{
		"staying":       now.Add(48 * time.Hour).Format(time.RFC3339),
		"left-long-ago": now.Add(-30 * 24 * time.Hour).Format(time.RFC3339),
		"garbled":       "{not a record",
	} {
		must(t, journal.PutLegacyFirstKey(j, id, v))
	}
	for _, id := range []string{"staying", "left-long-ago", "garbled"} {
		for _, rooms := range [][]string{{"101"}, {"205", "206"}} {
			if isFirst(t, j, id, rooms) {
				t.Errorf("%s, rooms %v: first, want a duplicate", id, rooms)
			}
		}
	}
	n, err := j.ForgetFirstKeys(now.Add(-7 * 24 * time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("forgot %d (%v), want the ended stay and the unreadable record", n, err)
	}
	if isFirst(t, j, "staying", []string{"101"}) || !isFirst(t, j, "garbled", []string{"101"}) {
		t.Error("wrong records forgotten")
	}
	must(t, j.PutFirstKey("staying", []string{"101"}, now.Add(48*time.Hour)))
	if !isFirst(t, j, "staying", []string{"102"}) {
		t.Error("a rewritten record still matches any rooms")
	}
}
