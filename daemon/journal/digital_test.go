package journal_test

import (
	"fmt"
	"testing"
	"time"
)

// TestDigitalRecords: one record per reservation, stored as given, listed
// by reservation id; the watermark and first-key records are not among
// them, and no record is visible as a command.
func TestDigitalRecords(t *testing.T) {
	c := newClock()
	j := openJournal(t, t.TempDir(), c)
	if v, err := j.DigitalRecord("missing"); err != nil || v != nil {
		t.Fatalf("DigitalRecord(missing) = %q, %v", v, err)
	}
	must(t, j.PutDigitalRecord("a", []byte("0")))
	must(t, j.PutDigitalRecord("a", []byte("1")))
	must(t, j.PutDigitalRecord("b", []byte("2")))
	must(t, j.PutFirstKey("a", []string{"101"}, c.Now()))
	must(t, j.SetDigitalWatermark(c.Now()))
	all, err := j.DigitalRecords()
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(all); s != "map[a:[49] b:[50]]" {
		t.Errorf("DigitalRecords = %s", s)
	}
	must(t, j.DeleteDigitalRecord("a"))
	must(t, j.DeleteDigitalRecord("a"))
	if v, _ := j.DigitalRecord("a"); v != nil {
		t.Errorf("deleted record = %q", v)
	}
	if _, ok, _ := j.Get("b"); ok {
		t.Error("a digital record is visible as a command")
	}
}

// TestDigitalWatermark: zero before the first catch-up, then what was set,
// to the nanosecond (Mews's UpdatedUtc may carry fractions).
func TestDigitalWatermark(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	if w, err := j.DigitalWatermark(); err != nil || !w.IsZero() {
		t.Fatalf("watermark before any = %v, %v", w, err)
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	must(t, j.SetDigitalWatermark(at))
	if w, err := j.DigitalWatermark(); err != nil || !w.Equal(at) {
		t.Errorf("watermark = %v, %v; want %v", w, err, at)
	}
}
