package mews

import (
	"testing"
	"time"
)

func TestWSScheduleDefaults(t *testing.T) {
	w, err := NewWSClient(WSConfig{URL: "wss://ws.mews.com", ClientToken: "ct", AccessToken: "at"})
	if err != nil {
		t.Fatal(err)
	}
	// Randomised: many runs so that an unlucky draw cannot hide a bad bound.
	for run := range 200 {
		s := newWSSchedule(w.cfg)
		if first := s.next(0); first <= 0 || first > time.Second {
			t.Fatalf("run %d: first retry after %s, want (0, 1s]", run, first)
		}
		var last time.Duration
		for range 40 {
			last = s.next(0)
			if last > 60*time.Second {
				t.Fatalf("run %d: retry after %s, want at most 60s", run, last)
			}
		}
		if last < 20*time.Second {
			t.Fatalf("run %d: after 40 failures the pause is %s, want near the 60s cap", run, last)
		}
		if d := s.next(w.cfg.StableAfter - time.Second); d < 20*time.Second {
			t.Fatalf("run %d: a short-lived connection reset the schedule (%s)", run, d)
		}
		if d := s.next(w.cfg.StableAfter); d > time.Second {
			t.Fatalf("run %d: after a stable connection the retry is %s, want at most 1s", run, d)
		}
	}
}

func TestWSScheduleNeverExceedsSmallMax(t *testing.T) {
	s := newWSSchedule(WSConfig{MinBackoff: time.Second, MaxBackoff: time.Second, StableAfter: time.Minute})
	for range 100 {
		if d := s.next(0); d > time.Second {
			t.Fatalf("pause %s exceeds MaxBackoff 1s", d)
		}
	}
}

func TestWSWarnLimiter(t *testing.T) {
	var l wsWarnLimiter
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range wsWarnBurst {
		if ok, _ := l.allow(now); !ok {
			t.Fatalf("warning %d of the burst held back", i+1)
		}
	}
	for range 3 {
		if ok, _ := l.allow(now.Add(time.Second)); ok {
			t.Fatal("warning beyond the burst let through")
		}
	}
	ok, suppressed := l.allow(now.Add(wsWarnWindow))
	if !ok || suppressed != 3 {
		t.Fatalf("after the window: ok=%v suppressed=%d, want true 3", ok, suppressed)
	}
}
