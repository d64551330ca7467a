// Package retry is the one retry schedule of the daemon's pipelines: the
// outbox's reports, and the digital keys' fetches, retries and write-backs.
package retry

import "time"

// Production values: the wait doubles from one second up to five minutes.
const (
	DefaultBase = time.Second
	// steps bounds the wait at this many times the base.
	steps = 300
)

// Schedule is the wait after consecutive failures: Base after the first,
// doubling after each next one, up to 300 times Base. Its zero value is
// the production schedule; tests shorten Base.
type Schedule struct {
	Base time.Duration
}

// After returns the wait after the given number of consecutive failures.
func (s Schedule) After(failures int) time.Duration {
	base := s.Base
	if base <= 0 {
		base = DefaultBase
	}
	b, limit := base, base*steps
	for i := 1; i < failures && b < limit; i++ {
		b *= 2
	}
	return min(b, limit)
}
