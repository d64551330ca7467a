package mews_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// TestLimiterWindow: 20 callers, 100 requests, 10 per 100ms. Whatever
// instant between grant and release Mews counts a request at, no window may
// hold more than the limit, so both ends are checked.
func TestLimiterWindow(t *testing.T) {
	const limit, window, callers, each = 10, 100 * time.Millisecond, 20, 5
	l, err := mews.NewLimiter(limit, window)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var granted, released []time.Time
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				release, err := l.Wait(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				g := time.Now()
				// A request takes a while, on the wire and at Mews.
				time.Sleep(rand.N(5 * time.Millisecond))
				r := time.Now()
				release()
				mu.Lock()
				granted, released = append(granted, g), append(released, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for name, times := range map[string][]time.Time{"grant": granted, "release": released} {
		if len(times) != callers*each {
			t.Fatalf("%d %ss, want %d", len(times), name, callers*each)
		}
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		for i := 0; i+limit < len(times); i++ {
			if d := times[i+limit].Sub(times[i]); d < window {
				t.Errorf("by %s time, %d requests within %s", name, limit+1, d)
			}
		}
	}
}

// TestLimiterReleaseWakes: with every slot in flight, a waiter gets one as
// soon as the window after a release has passed.
func TestLimiterReleaseWakes(t *testing.T) {
	const window = 50 * time.Millisecond
	l, err := mews.NewLimiter(1, window)
	if err != nil {
		t.Fatal(err)
	}
	release, err := l.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time)
	go func() {
		r, err := l.Wait(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- time.Now()
		r()
	}()
	released := time.Now()
	release()
	release() // a second call must not free a second slot
	if at := <-got; at.Sub(released) < window {
		t.Errorf("second request granted %s after the first was released, want ≥ %s", at.Sub(released), window)
	}
	ctx, cancel := context.WithTimeout(context.Background(), window/2)
	defer cancel()
	if _, err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with the only slot just used: err = %v, want DeadlineExceeded", err)
	}
}

func TestLimiterPause(t *testing.T) {
	l, err := mews.NewLimiter(100, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	l.Pause(150 * time.Millisecond)
	l.Pause(10 * time.Millisecond) // a shorter pause does not cut the longer one
	release, err := l.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	if d := time.Since(paused); d < 150*time.Millisecond {
		t.Errorf("granted %s into a 150ms pause", d)
	}
}

func TestLimiterCancel(t *testing.T) {
	l, err := mews.NewLimiter(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := l.Wait(ctx)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want Canceled", err)
	}
}

func TestNewLimiterRefuses(t *testing.T) {
	for _, tc := range []struct {
		limit  int
		window time.Duration
	}{{0, time.Second}, {-1, time.Second}, {10, 0}} {
		if _, err := mews.NewLimiter(tc.limit, tc.window); err == nil {
			t.Errorf("NewLimiter(%d, %s) accepted", tc.limit, tc.window)
		}
	}
}

// TestLimiterPauseCapped: however long a pause Mews asks for, callers are
// held back for at most MaxPause, and PausedUntil tells a watchdog that the
// wait is a requested pause, not a hang.
func TestLimiterPauseCapped(t *testing.T) {
	l, err := mews.NewLimiter(100, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if until := l.PausedUntil(); until.After(time.Now()) {
		t.Errorf("PausedUntil = %s before any pause", until)
	}
	before := time.Now()
	l.Pause(time.Hour)
	after := time.Now()
	if until := l.PausedUntil(); until.Before(before.Add(mews.MaxPause)) || until.After(after.Add(mews.MaxPause)) {
		t.Errorf("paused until %s from now, want %s", until.Sub(after), mews.MaxPause)
	}
}

// tryWait asks for a slot with a context that has already ended: Wait
// grants a slot that is free at once, and refuses rather than waits.
func tryWait(ctx context.Context, l *mews.Limiter) bool {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := l.Wait(ctx)
	return err == nil
}

// TestLimiterNormalBeforeLow: with the budget short, a front-desk caller
// queued after nine digital-key callers still gets the first slot that
// comes free, although the digital-key callers could have taken it.
func TestLimiterNormalBeforeLow(t *testing.T) {
	const limit, reserve, lows = 10, 2, 9
	l, err := mews.NewLimiter(limit, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan bool, lows+1)
	mews.SetQueuedHook(l, func(low bool) { queued <- low })
	ctx := context.Background()
	var inFlight []func()
	for range limit {
		release, err := l.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inFlight = append(inFlight, release)
	}

	granted := make(chan string, lows+1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wait := func(ctx context.Context, name string) {
		wg.Go(func() {
			release, err := l.Wait(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			granted <- name
			release()
		})
	}
	for range lows {
		wait(mews.WithLowPriority(ctx), "low")
	}
	for range lows {
		<-queued
	}
	wait(ctx, "normal")
	<-queued
	// One slot more than the reserve comes free: a low-priority caller
	// could take it, but the normal one is waiting.
	for _, release := range inFlight[:reserve+1] {
		release()
	}
	if first := <-granted; first != "normal" {
		t.Errorf("first grant went to a %s-priority caller, want the normal one", first)
	}
	for _, release := range inFlight[reserve+1:] {
		release()
	}
	for range lows {
		<-granted
	}
}

// TestLimiterLowPriorityReserve: digital-key callers leave the last
// ceil(limit/5) free slots to the front desk, but are not held back while
// more are free.
func TestLimiterLowPriorityReserve(t *testing.T) {
	for _, tc := range []struct{ limit, reserve int }{{10, 2}, {200, 40}, {7, 2}, {2, 1}, {1, 0}} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			l, err := mews.NewLimiter(tc.limit, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			low := mews.WithLowPriority(context.Background())
			for i := range tc.limit - tc.reserve {
				if !tryWait(low, l) {
					t.Fatalf("low-priority request %d waited with %d of %d slots free", i+1, tc.limit-i, tc.limit)
				}
			}
			if tryWait(low, l) {
				t.Fatalf("a low-priority request took one of the last %d slots", tc.reserve)
			}
			for i := range tc.reserve {
				if !tryWait(context.Background(), l) {
					t.Fatalf("normal request %d refused with %d slots in reserve", i+1, tc.reserve-i)
				}
			}
			if tryWait(context.Background(), l) {
				t.Errorf("granted more than %d requests", tc.limit)
			}
		})
	}
}
