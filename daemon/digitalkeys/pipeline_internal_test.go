package digitalkeys

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/daemon/retry"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// testPipeline is a pipeline recording its decisions in a real journal.
func testPipeline(t *testing.T, now time.Time) *Pipeline {
	t.Helper()
	j, err := journal.Open(t.TempDir(), journal.Options{Now: func() time.Time { return now }, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	dk, err := New(nil, Config{Encoder: "mobile", Enc: revoker{}, WriteBack: true,
		Retry: retry.Schedule{Base: time.Minute}, Now: func() time.Time { return now }, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	dk.store = j
	return dk
}

// revoker is an encoder the tests never get as far as calling.
type revoker struct{ keys.Encoder }

func (revoker) Revoke(context.Context, keys.Request) (keys.Result, error) { return keys.Result{}, nil }

// TestDigitalDecisionResetsRetry: a decision that needs no operation ends
// the retries of the failed one before it, but not an owed write-back; an
// old version keeps the retry, later.
func TestDigitalDecisionResetsRetry(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	const id = "r1"
	failed := record{RetryAt: now.Add(-time.Second), Attempts: 3,
		State: State{Seen: now.Add(-time.Hour)}}
	checkedOut := &mews.Reservation{ID: id, State: mews.ReservationProcessed, UpdatedUtc: now.Add(-time.Minute)}

	apply := func(d *Pipeline, rec record, r *mews.Reservation) record {
		t.Helper()
		if err := d.save(id, &rec); err != nil {
			t.Fatal(err)
		}
		p := &plan{r: r, rec: rec, dec: Decide(rec.State, r, d.policy, now), seen: now}
		if p.dec.Action != None {
			t.Fatalf("decided %s, want nothing to do", p.dec.Action)
		}
		d.apply(context.Background(), p, mews.Customer{}, zerolog.Nop())
		got, err := d.load(id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("fresh decision clears the retry", func(t *testing.T) {
		d := testPipeline(t, now)
		got := apply(d, failed, checkedOut)
		if !got.RetryAt.IsZero() || got.Attempts != 0 {
			t.Errorf("record %+v, want no retry", got)
		}
		if _, ok := d.wake[id]; ok {
			t.Errorf("reservation scheduled for %v, want not at all", d.wake[id])
		}
		if raw, _ := d.store.DigitalRecord(id); raw != nil {
			t.Errorf("record %s kept, want it gone: it says nothing", raw)
		}
	})

	t.Run("owed write-back keeps its schedule", func(t *testing.T) {
		d := testPipeline(t, now)
		rec := failed
		rec.Gone = []storedKey{{Token: "token-1", Type: keys.KeyPinCode, Value: "1234"}}
		rec.WriteBackAt, rec.WriteBackAttempts = now.Add(10*time.Minute), 2
		got := apply(d, rec, checkedOut)
		if !got.RetryAt.IsZero() || got.Attempts != 0 {
			t.Errorf("record %+v, want no retry", got)
		}
		if !got.WriteBackAt.Equal(rec.WriteBackAt) || got.WriteBackAttempts != 2 || len(got.Gone) != 1 {
			t.Errorf("record %+v, want the write-back owed as before", got)
		}
		if at := d.owed[id]; !at.Equal(rec.WriteBackAt) {
			t.Errorf("write-back scheduled for %v, want %v", at, rec.WriteBackAt)
		}
		if _, ok := d.wake[id]; ok {
			t.Errorf("reservation scheduled for %v, want not at all", d.wake[id])
		}
	})

	t.Run("an old version keeps the retry, later", func(t *testing.T) {
		d := testPipeline(t, now)
		old := *checkedOut
		old.UpdatedUtc = now.Add(-2 * time.Hour)
		got := apply(d, failed, &old)
		if !got.RetryAt.After(now) || got.Attempts != 4 {
			t.Errorf("record %+v, want a retry after now, attempt 4", got)
		}
		if at := d.wake[id]; !at.Equal(got.RetryAt) {
			t.Errorf("reservation scheduled for %v, want %v", at, got.RetryAt)
		}
	})
}

// TestDigitalUncertainFailureDropsRetry: after a failure that may have made
// a key, nothing retries, not even the retry of an earlier failure.
func TestDigitalUncertainFailureDropsRetry(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	const id = "r1"
	d := testPipeline(t, now)
	r := &mews.Reservation{ID: id, State: mews.ReservationStarted, AssignedResourceID: "room", UpdatedUtc: now}
	rec := record{RetryAt: now.Add(-time.Second), Attempts: 2}
	p := &plan{r: r, rec: rec, dec: Decide(rec.State, r, d.policy, now), seen: now}
	d.failed(id, p, p.dec.Action, errors.New("link lost"), zerolog.Nop())
	got, err := d.load(id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Uncertain || !got.RetryAt.IsZero() || got.Attempts != 0 {
		t.Errorf("record %+v, want an uncertain key and no retry", got)
	}
	if _, ok := d.wake[id]; ok {
		t.Errorf("reservation scheduled for %v, want not at all", d.wake[id])
	}
}
