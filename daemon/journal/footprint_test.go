package journal_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
)

// runCommands takes n realistic card commands through every step, as the
// pipeline does (four transactions each).
func runCommands(t testing.TB, j *journal.Journal, prefix string, n int) {
	t.Helper()
	for i := range n {
		id := uuid(prefix, i)
		if _, _, err := j.Accept(id, "frontdesk", "3c0c7a9e-1b2d-4f6a-8e5c-7d9b0a1c2e3f"); err != nil {
			t.Fatal(err)
		}
		if err := j.StartEncode(id); err != nil {
			t.Fatal(err)
		}
		res := journal.Result{OK: true, Note: "2 keys for room 101", Keys: []journal.Key{
			{ID: "key-1", Type: "RfidTag", Value: "04A2B3C4D5E6F7"},
			{ID: "key-2", Type: "RfidTag", Value: "04A2B3C4D5E6F8"},
		}}
		if err := j.FinishEncode(id, res, "Processed", res.Note); err != nil {
			t.Fatal(err)
		}
		if err := j.MarkReported(id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFootprint measures the file after 10,000 commands, after compacting
// them away, and after another 10,000 (freed pages are reused: the file
// follows the busiest History window, not the total ever written).
func TestFootprint(t *testing.T) {
	n := 10_000
	if raceEnabled {
		n = 1_000
	}
	c := newClock()
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{Now: c.Now, History: time.Hour, UnsafeNoSync: true})
	must(t, err)
	defer func() { _ = j.Close() }()

	start := time.Now()
	runCommands(t, j, "a", n)
	took := time.Since(start)
	first := j.Stats()
	if first.Steps[journal.StepReported] != n || first.Open != 0 {
		t.Fatalf("Stats = %+v", first)
	}
	t.Logf("%d commands x 4 steps: file %.1f MiB (%d bytes/command), %v without fsync",
		n, mib(first.FileBytes), first.FileBytes/int64(n), took)

	// Reopening verifies every entry and page: part of start-up time.
	must(t, j.Close())
	start = time.Now()
	j, err = journal.Open(dir, journal.Options{Now: c.Now, History: time.Hour, UnsafeNoSync: true})
	must(t, err)
	t.Logf("reopen with %d entries (verify included): %v", n, time.Since(start))

	c.Advance(2 * time.Hour)
	removed, err := j.Compact()
	must(t, err)
	if removed != n {
		t.Fatalf("Compact removed %d, want %d", removed, n)
	}
	compacted := j.Stats()
	t.Logf("after Compact: file %.1f MiB (bbolt keeps freed pages for reuse)", mib(compacted.FileBytes))

	runCommands(t, j, "b", n)
	second := j.Stats()
	t.Logf("after another %d commands: file %.1f MiB", n, mib(second.FileBytes))
	if second.FileBytes > first.FileBytes*3/2 {
		t.Errorf("file grew from %d to %d bytes although the first %d commands were compacted", first.FileBytes, second.FileBytes, n)
	}
	if first.FileBytes > int64(n)*3<<10 {
		t.Errorf("%d commands take %d bytes", n, first.FileBytes)
	}
	if fi, err := os.Stat(filepath.Join(dir, journal.FileName)); err != nil || fi.Size() != second.FileBytes {
		t.Errorf("Stats.FileBytes = %d, file %v (%v)", second.FileBytes, fi, err)
	}
}

// uuid makes a command id shaped like Mews's random UUIDs; random rather
// than sequential keys matter for how full bbolt's pages are.
func uuid(prefix string, i int) string {
	h := sha256.Sum256(fmt.Append(nil, prefix, i))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// BenchmarkStartEncode measures the fsynced transaction that sits between
// a command and its encoder.
func BenchmarkStartEncode(b *testing.B) {
	j, err := journal.Open(b.TempDir(), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		id := fmt.Sprint("cmd-", i)
		if _, _, err := j.Accept(id, "frontdesk", "dev-1"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := j.StartEncode(id); err != nil {
			b.Fatal(err)
		}
	}
}
