package daemon

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/keys"
)

func firstKeyDaemon(t *testing.T, now time.Time) *Daemon {
	t.Helper()
	j, err := journal.Open(t.TempDir(), journal.Options{History: time.Hour, Now: func() time.Time { return now }, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return &Daemon{journal: j, now: func() time.Time { return now }, log: zerolog.Nop(),
		cfg: &config.Config{Daemon: config.Daemon{History: keys.Duration(7 * 24 * time.Hour)}}}
}

// TestFirstKeyRecordsOutliveTheStayOnly: the record that makes later cards
// duplicates (KT=D) is kept while the stay lasts and forgotten once it
// ended longer ago than the journal history.
func TestFirstKeyRecordsOutliveTheStayOnly(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d := firstKeyDaemon(t, now)
	room := []string{"101"}

	if !d.isFirstKey("staying", room) {
		t.Fatal("a reservation without cards is not first")
	}
	d.rememberFirstKey("staying", room, now.Add(48*time.Hour))
	d.rememberFirstKey("left-yesterday", room, now.Add(-24*time.Hour))
	d.rememberFirstKey("left-long-ago", room, now.Add(-30*24*time.Hour))
	if d.isFirstKey("staying", room) || d.isFirstKey("left-yesterday", room) {
		t.Fatal("a reservation with a card is still first")
	}
	n, err := d.forgetFinishedStays()
	if err != nil || n != 1 {
		t.Fatalf("forgot %d (%v), want only the stay that ended 30 days ago", n, err)
	}
	if !d.isFirstKey("left-long-ago", room) || d.isFirstKey("staying", room) || d.isFirstKey("left-yesterday", room) {
		t.Error("wrong records forgotten")
	}
}

// TestFirstKeyPerRoomSet: the rooms are a set (order and repeats do not
// matter), and a card for another set is first again.
func TestFirstKeyPerRoomSet(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d := firstKeyDaemon(t, now)
	d.rememberFirstKey("r", []string{"102", "101"}, now.Add(time.Hour))
	for _, c := range []struct {
		rooms []string
		first bool
	}{
		{[]string{"101", "102"}, false},
		{[]string{"102", "101", "102"}, false},
		{[]string{"101"}, true},
		{[]string{"101", "102", "103"}, true},
		{nil, true},
	} {
		if got := d.isFirstKey("r", c.rooms); got != c.first {
			t.Errorf("rooms %v: first %v, want %v", c.rooms, got, c.first)
		}
	}
	d.rememberFirstKey("r", nil, now.Add(time.Hour))
	if d.isFirstKey("r", []string{}) || !d.isFirstKey("r", []string{"101"}) {
		t.Error("a card without rooms counts for any rooms")
	}
	d.rememberFirstKey("r", []string{"103"}, now.Add(time.Hour))
	if d.isFirstKey("r", []string{"103"}) || !d.isFirstKey("r", []string{"101", "102"}) {
		t.Error("the last new card's rooms are not what counts")
	}
}

// TestFirstKeyOldRecords: a record written before room sets were kept (the
// stay's end alone) makes every card a duplicate, whatever the rooms: an
// upgrade never invalidates cards a guest holds. Compaction still reads
// its end; an unreadable record counts the same and is compacted.
func TestFirstKeyOldRecords(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d := firstKeyDaemon(t, now)
	for key, v := range map[string]string{
		"staying":       now.Add(48 * time.Hour).Format(time.RFC3339),
		"left-long-ago": now.Add(-30 * 24 * time.Hour).Format(time.RFC3339),
		"garbled":       "{not a record",
	} {
		if err := d.journal.SetMeta(firstKeyMetaPrefix+key, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"staying", "left-long-ago", "garbled"} {
		for _, rooms := range [][]string{{"101"}, {"205", "206"}} {
			if d.isFirstKey(id, rooms) {
				t.Errorf("%s, rooms %v: first, want a duplicate", id, rooms)
			}
		}
	}
	n, err := d.forgetFinishedStays()
	if err != nil || n != 2 {
		t.Fatalf("forgot %d (%v), want the ended stay and the unreadable record", n, err)
	}
	if d.isFirstKey("staying", []string{"101"}) || !d.isFirstKey("garbled", []string{"101"}) {
		t.Error("wrong records forgotten")
	}
	// A record written anew has the room set.
	d.rememberFirstKey("staying", []string{"101"}, now.Add(48*time.Hour))
	if !d.isFirstKey("staying", []string{"102"}) {
		t.Error("a rewritten record still matches any rooms")
	}
}
