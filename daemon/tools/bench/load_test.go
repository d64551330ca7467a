package bench

import (
	"flag"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

var drainWindow = flag.Duration("bench.drain-window", 3*time.Second,
	"request window of the drain benchmark (limit 200 per window; Mews's is 30s, which makes the run take minutes)")

const (
	drainCommands = 1000
	drainEncoders = 10
	mewsLimit     = 200
	mewsWindow    = 30 * time.Second
)

// BenchmarkDrain1000 is SPEC §7's load bar: 1,000 commands pending when the
// daemon starts, spread over 10 encoders (sim, no delay), under Mews's limit
// of 200 requests per window. Mews's own window is 30 s, which would make
// the run last minutes, so the window is scaled down (-bench.drain-window)
// and the theoretical floor is given for both windows: with R requests and
// L per window W, no client can finish before (ceil(R/L)-1)·W.
//
// Checked from the simulator's records: every command final exactly once,
// every encoder called once per command, and the arrival times of all
// requests (refused ones too) never more than the limit in any window.
func BenchmarkDrain1000(b *testing.B) {
	window := *drainWindow
	srv := mewstest.NewServer(mewstest.WithRateLimit(mewsLimit, window))
	b.Cleanup(srv.Close)
	var encoders strings.Builder
	devices := []string{mewstest.KeyCutter1.ID, mewstest.KeyCutter2.ID}
	for i := len(devices); i < drainEncoders; i++ {
		dev := mews.Device{ID: fmt.Sprintf("0000000%d-0000-4000-8000-00000000d%03d", i, i), Type: mews.DeviceKeyCutter,
			Name: fmt.Sprintf("Encoder %d", i+1), Identifier: fmt.Sprintf("encoder-%d", i+1)}
		srv.AddDevice(dev)
		devices = append(devices, dev.ID)
	}
	for i, dev := range devices {
		encoders.WriteString(simEncoder(fmt.Sprintf("desk-%d", i+1), dev))
	}
	reservations := []string{mewstest.ReservationArriving, mewstest.ReservationCheckedIn, mewstest.ReservationLongStay}
	ids := make([]string, drainCommands)
	for i := range ids {
		ids[i] = mustCut(b, srv, devices[i%len(devices)], reservations[i%len(reservations)])
	}
	srv.ResetRequests()

	b.ResetTimer()
	began := time.Now()
	p := startPipeline(b, srv, mewsSection(srv, b.TempDir(), mewsLimit, window)+encoders.String(), 2*drainCommands)
	p.wait(b, "every command final", func(s *mewstest.Server) bool { return final(s, ids...) })
	took := time.Since(began)
	b.StopTimer()
	p.stop()

	calls := map[string]int{}
	for len(p.outcomes) > 0 {
		calls[(<-p.outcomes).CommandID]++
	}
	var twice, notOnce, finalOnce int
	for _, id := range ids {
		switch n := calls[id]; {
		case n > 1:
			twice++
			notOnce++
		case n != 1:
			notOnce++
		}
		if finals(srv.StateHistory(id)) == 1 {
			finalOnce++
		}
	}
	reqs := srv.Requests()
	peak, refused := peakInWindow(reqs, window), 0
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	floor := func(w time.Duration) float64 {
		return (math.Ceil(float64(len(reqs))/mewsLimit) - 1) * w.Seconds()
	}
	report(b, record{
		Samples: drainCommands,
		Metrics: []metric{
			plain("time to drain", took.Seconds(), "drain-s"),
			plain(fmt.Sprintf("floor at %d per %s", mewsLimit, window), floor(window), "floor-s"),
			plain(fmt.Sprintf("floor at Mews's %d per %s", mewsLimit, mewsWindow), floor(mewsWindow), "mews-floor-s"),
			plain("API requests", float64(len(reqs)), "requests"),
			atMost("most requests in any window", float64(peak), "peak-requests/window", mewsLimit),
			exactly("requests refused with 429", float64(refused), "429s", 0),
			exactly("commands with exactly one final state", float64(finalOnce), "final-once", drainCommands),
			exactly("commands encoded twice", float64(twice), "encoded-twice", 0),
			exactly("commands not encoded exactly once", float64(notOnce), "not-encoded-once", 0),
		},
		Notes: []string{fmt.Sprintf("window scaled to %s (Mews: %s); at Mews's limit the same run cannot take less than the mews-floor", window, mewsWindow)},
	})
}

// peakInWindow is the most requests that arrived within any span of
// length window (sliding, both ends included as Mews may count them).
func peakInWindow(reqs []mewstest.Request, window time.Duration) int {
	times := make([]time.Time, len(reqs))
	for i, r := range reqs {
		times[i] = r.Time
	}
	sortTimes(times)
	peak, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= window {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return peak
}

// BenchmarkReconnect is SPEC §7's reconnect bar: the simulator drops the
// socket, two key commands are created while the daemon is out, and the
// time runs until both are final in Mews: reconnect (first backoff step,
// up to 1 s with jitter), catch-up poll, encode, report. The reconnect
// backoff grows until a connection has been stable for a minute, so each
// round is a fresh daemon: it measures the first step, which the bar is
// about.
func BenchmarkReconnect(b *testing.B) {
	srv := mewstest.NewServer(mewstest.WithRateLimit(0, 0))
	b.Cleanup(srv.Close)
	var took []time.Duration
	late := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p := startPipeline(b, srv, mewsSection(srv, b.TempDir(), liftedLimit, time.Second)+simEncoder("desk-1", mewstest.KeyCutter1.ID), 2)
		handshakes := len(srv.Handshakes())
		b.StartTimer()
		dropped := time.Now()
		srv.DropSockets()
		p.wait(b, "socket gone", func(s *mewstest.Server) bool { return s.Sockets() == 0 })
		a := mustCut(b, srv, mewstest.KeyCutter1.ID, mewstest.ReservationArriving)
		c := mustCut(b, srv, mewstest.KeyCutter1.ID, mewstest.ReservationLongStay)
		if len(srv.Handshakes()) != handshakes {
			late++ // reconnected before the commands existed: caught by events, not the poll
		}
		p.wait(b, "commands final", func(s *mewstest.Server) bool { return final(s, a, c) && s.Sockets() > 0 })
		took = append(took, time.Since(dropped))
		b.StopTimer()
		p.stop()
		b.StartTimer()
	}
	b.StopTimer()
	sorted := sortedCopy(took)
	notes := []string{"time from the drop to both commands created during the outage final in Mews"}
	if late > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d rounds reconnected before the commands were created", late, b.N))
	}
	report(b, record{
		Samples: b.N,
		Metrics: []metric{
			plain("p50", percentile(sorted, 0.5), "p50-ms"),
			under("max", ms(sorted[len(sorted)-1]), "max-ms", 2000),
		},
		Notes: notes,
	})
}
