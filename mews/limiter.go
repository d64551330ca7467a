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
//
// Requests made with a WithLowPriority context come second: they leave the
// last ceil(limit/5) free slots (never all of them) to the others and never
// go ahead of one that is waiting, so a key command at the front desk is
// not held up by digital-key work when the budget runs short.
type Limiter struct {
	window  time.Duration
	reserve int // free slots a low-priority request leaves to the others

	mu sync.Mutex
	// idle holds, for each slot not in flight, when it may be reused. Slots
	// are released in time order, so idle is sorted and its head is the
	// next slot to become free.
	idle        []time.Time
	pausedUntil time.Time
	waiting     int           // normal-priority callers blocked in Wait
	changed     chan struct{} // closed and replaced when a slot is released, or no normal caller waits any more

	queued func(low bool) // tests: called when a caller starts to wait
}

// NewLimiter returns a limiter allowing limit requests in any window.
func NewLimiter(limit int, window time.Duration) (*Limiter, error) {
	if limit <= 0 || window <= 0 {
		return nil, fmt.Errorf("rate limit %d per %s: both must be positive", limit, window)
	}
	return &Limiter{
		window: window,
		// At least one slot stays open to low priority, or a limit of 1
		// would stop it for good.
		reserve: min((limit+4)/5, limit-1),
		idle:    make([]time.Time, limit), // zero times: all free now
		changed: make(chan struct{}),
	}, nil
}

type priorityKey struct{}

// WithLowPriority marks the requests made with the returned context as able
// to wait (e.g. digital keys, which guests use later) for the requests that
// cannot (key commands, with a receptionist and a guest at the desk): see
// Limiter.
func WithLowPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

func isLowPriority(ctx context.Context) bool {
	low, _ := ctx.Value(priorityKey{}).(bool)
	return low
}

// Wait blocks until a request may be sent, or ctx ends. The caller must call
// release once the request is finished (answered or failed); the slot stays
// taken for window after that.
func (l *Limiter) Wait(ctx context.Context) (release func(), err error) {
	low := isLowPriority(ctx)
	keep := 0 // free slots that must remain after this grant
	if low {
		keep = l.reserve
	}
	queued := false
	for {
		l.mu.Lock()
		now := time.Now()
		// The slot that frees last among those this request needs free.
		at, enough := l.pausedUntil, len(l.idle) > keep
		if enough && l.idle[keep].After(at) {
			at = l.idle[keep]
		}
		yield := low && l.waiting > 0
		if enough && !yield && !at.After(now) {
			l.idle = l.idle[1:]
			if queued && !low {
				l.leaveLocked()
			}
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(l.release) }, nil
		}
		if !queued && !low {
			l.waiting++
		}
		changed := l.changed
		l.mu.Unlock()
		if !queued && l.queued != nil {
			l.queued(low)
		}
		queued = true

		// With too few slots idle, or a normal caller waiting, only a
		// change can help; otherwise the needed slot (or the pause) ends
		// at a known time.
		var timer *time.Timer
		var expired <-chan time.Time
		if !yield && (enough || at.After(now)) {
			timer = time.NewTimer(at.Sub(now))
			expired = timer.C
		}
		select {
		case <-ctx.Done():
			stop(timer)
			if !low {
				l.mu.Lock()
				l.leaveLocked()
				l.mu.Unlock()
			}
			return nil, ctx.Err()
		case <-changed:
		case <-expired:
		}
		stop(timer)
	}
}

// leaveLocked records that a normal caller stopped waiting; the last one
// to go lets low-priority callers try again.
func (l *Limiter) leaveLocked() {
	l.waiting--
	if l.waiting == 0 {
		l.broadcast()
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
