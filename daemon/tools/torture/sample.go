package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sample is the daemon's resource use at one moment.
type sample struct {
	proc       int
	at         time.Time
	age        time.Duration // since the process started
	fds        int
	rss        int64
	goroutines int
}

// sample records the current daemon's resources twice a second.
func (r *run) sample(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.takeSample()
		}
	}
}

func (r *run) takeSample() {
	p := r.current()
	if !p.alive() {
		return
	}
	fds, rss, err := procUsage(p.cmd.Process.Pid)
	if err != nil {
		return // not Linux, or the process just died
	}
	g, err := goroutines(r.status)
	if err != nil {
		return // not listening yet
	}
	s := sample{proc: p.n, at: time.Now(), age: time.Since(p.started), fds: fds, rss: rss, goroutines: g}
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

var metricsClient = &http.Client{Timeout: 2 * time.Second}

// goroutines reads go_goroutines from the daemon's /metrics.
func goroutines(addr string) (int, error) {
	resp, err := metricsClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int(f), err
		}
	}
	return 0, errNoGoroutines
}

var errNoGoroutines = errors.New("no go_goroutines in /metrics")
