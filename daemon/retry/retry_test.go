package retry

import (
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		s        Schedule
		failures int
		want     time.Duration
	}{
		{Schedule{}, 1, time.Second},
		{Schedule{}, 2, 2 * time.Second},
		{Schedule{}, 5, 16 * time.Second},
		{Schedule{}, 9, 256 * time.Second},
		{Schedule{}, 10, 5 * time.Minute},
		{Schedule{}, 1000, 5 * time.Minute},
		{Schedule{Base: 50 * time.Millisecond}, 3, 200 * time.Millisecond},
		{Schedule{Base: 50 * time.Millisecond}, 100, 15 * time.Second},
	} {
		if got := tc.s.After(tc.failures); got != tc.want {
			t.Errorf("%+v.After(%d) = %s, want %s", tc.s, tc.failures, got, tc.want)
		}
	}
}
