package mews

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Limiter keeps the requests made with one access token under Mews's limit
// of limit requests per window.
//
// A token bucket with burst=limit would allow up to twice the limit within
// one window (a full bucket plus what refills during the window), so this is
// a sliding window of slots instead. There are limit slots; a request holds
// one from the moment Wait grants it until window after the request
// finished. Mews counts a request at some instant between our grant and our
// release, so the requests Mews counts in any window of that length can
// never exceed the limit — whatever the latency, and without relying on
// Mews's and our clocks agreeing beyond their order of events.
type Limiter struct {
	window time.Duration

	mu sync.Mutex
	// idle holds, for each slot not in flight, when it may be reused. Slots
	// are released in time order, so idle is sorted and its head is the
	// next slot to become free.
	idle        []time.Time
	pausedUntil time.Time
	changed     chan struct{} // closed and replaced when a slot is released
}

// NewLimiter returns a limiter allowing limit requests in any window.
func NewLimiter(limit int, window time.Duration) (*Limiter, error) {
	if limit <= 0 || window <= 0 {
		return nil, fmt.Errorf("rate limit %d per %s: both must be positive", limit, window)
	}
	return &Limiter{
		window:  window,
		idle:    make([]time.Time, limit), // zero times: all free now
		changed: make(chan struct{}),
	}, nil
}

// Wait blocks until a request may be sent, or ctx ends. The caller must call
// release once the request is finished (answered or failed); the slot stays
// taken for window after that.
func (l *Limiter) Wait(ctx context.Context) (release func(), err error) {
	for {
		l.mu.Lock()
		now := time.Now()
		at, haveIdle := l.pausedUntil, len(l.idle) > 0
		if haveIdle && l.idle[0].After(at) {
			at = l.idle[0]
		}
		if haveIdle && !at.After(now) {
			l.idle = l.idle[1:]
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(l.release) }, nil
		}
		changed := l.changed
		l.mu.Unlock()

		// With every slot in flight only a release can help; otherwise the
		// head slot (or the pause) ends at a known time.
		var timer *time.Timer
		var expired <-chan time.Time
		if haveIdle || at.After(now) {
			timer = time.NewTimer(at.Sub(now))
			expired = timer.C
		}
		select {
		case <-ctx.Done():
			stop(timer)
			return nil, ctx.Err()
		case <-changed:
		case <-expired:
		}
		stop(timer)
	}
}

func stop(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (l *Limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.idle = append(l.idle, time.Now().Add(l.window))
	l.broadcast()
}

// Pause holds back every caller of Wait for d, at most MaxPause, e.g.
// after Mews answered 429 with Retry-After: the limit is per access token,
// so one request being refused means all of them would be.
func (l *Limiter) Pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(min(d, MaxPause)); until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	l.broadcast()
}

// PausedUntil returns when the current pause ends; a time not after now
// means no pause. A caller held in Wait until then is obeying Mews, not
// stuck.
func (l *Limiter) PausedUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pausedUntil
}

func (l *Limiter) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}
