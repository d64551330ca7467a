package mews

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// wsSchedule is the reconnect schedule: exponential with jitter, capped,
// and reset once a connection proved stable so that a hiccup after hours
// of service is retried at once rather than after the last long pause.
type wsSchedule struct {
	exp         *backoff.ExponentialBackOff
	max         time.Duration
	stableAfter time.Duration
}

func newWSSchedule(cfg WSConfig) *wsSchedule {
	return &wsSchedule{
		exp: backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(cfg.MinBackoff),
			backoff.WithRandomizationFactor(wsJitter),
			backoff.WithMultiplier(wsMultiplier),
			backoff.WithMaxInterval(time.Duration(float64(cfg.MaxBackoff)/(1+wsJitter))),
			backoff.WithMaxElapsedTime(0),
		),
		max:         cfg.MaxBackoff,
		stableAfter: cfg.StableAfter,
	}
}

// next returns the pause before the next attempt; connectedFor is how long
// the previous attempt stayed connected (0 if it never connected).
func (s *wsSchedule) next(connectedFor time.Duration) time.Duration {
	if connectedFor >= s.stableAfter {
		s.exp.Reset()
	}
	return min(s.exp.NextBackOff(), s.max)
}

// wsWarnLimiter lets a few warnings through per minute so that a peer
// sending garbage in a loop cannot flood the log; the next warning that
// passes says how many were held back. Used by the reading goroutine only.
type wsWarnLimiter struct {
	windowStart time.Time
	inWindow    int
	suppressed  int
}

const (
	wsWarnBurst  = 5
	wsWarnWindow = time.Minute
)

func (l *wsWarnLimiter) allow(now time.Time) (ok bool, suppressed int) {
	if now.Sub(l.windowStart) >= wsWarnWindow {
		l.windowStart, l.inWindow = now, 0
	}
	if l.inWindow >= wsWarnBurst {
		l.suppressed++
		return false, 0
	}
	l.inWindow++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
