//go:build !linux

package bench

import (
	"errors"
	"time"
)

const clockTick = 10 * time.Millisecond

type procSample struct {
	user, system time.Duration
	rss, peakRSS int64
}

func readProc(int) (procSample, error) {
	return procSample{}, errors.New("process accounting is read from /proc: Linux only")
}
