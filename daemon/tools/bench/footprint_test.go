package bench

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

const (
	mib = 1 << 20
	// settle is how long after connecting the idle daemon is left before
	// its CPU is counted.
	settle = 2 * time.Second
)

// BenchmarkIdle is SPEC §7's footprint bar: the real binary, connected and
// caught up, with nothing to do for -bench.idle (30 s by default). CPU is
// utime+stime from /proc/<pid>/stat over that time (10 ms ticks), RSS is
// VmRSS at the end. The count starts 2 s after the daemon connected.
// "Zero CPU when idle" is read as below 0.1 % of one core:
// the WebSocket pings cost a few microseconds every so often. It measures
// once, whatever b.N says.
func BenchmarkIdle(b *testing.B) {
	if !procSupported() {
		b.Skip("process accounting is read from /proc: Linux only")
	}
	srv := mewstest.NewServer()
	b.Cleanup(srv.Close)
	p := startProcess(b, processConfig(b, srv, mewsLimit, mewsWindow))
	waitUp(b, srv, p, 0)
	// Start-up work (the first GC cycles, the catch-up poll's answer)
	// spills into the first second; idle is what follows.
	time.Sleep(settle)
	before := mustReadProc(b, p.pid())
	// The wait is the measurement: the daemon must be left alone.
	select {
	case <-time.After(*idleTime):
	case <-p.done:
		b.Fatalf("mews-keyd exited: %v; log in %s", p.err, p.log)
	}
	after := mustReadProc(b, p.pid())
	cpu := after.user + after.system - before.user - before.system
	share := 100 * cpu.Seconds() / idleTime.Seconds()
	report(b, record{
		Metrics: []metric{
			under("RSS after idling", float64(after.rss)/mib, "rss-MiB", 25),
			plain("peak RSS (VmHWM)", float64(after.peakRSS)/mib, "peak-rss-MiB"),
			plain(fmt.Sprintf("CPU over %s", *idleTime), ms(cpu), "idle-cpu-ms"),
			under("CPU share of one core", share, "idle-cpu-%", 0.1),
		},
	})
}

func procSupported() bool {
	_, err := readProc(1)
	return err == nil
}

func mustReadProc(b *testing.B, pid int) procSample {
	b.Helper()
	s, err := readProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkStartup is SPEC §7's start-up bar: from starting the binary to
// the simulator having its WebSocket (the upgrade answered). Each round
// uses a new state dir, so the journal is created too.
func BenchmarkStartup(b *testing.B) {
	srv := mewstest.NewServer()
	b.Cleanup(srv.Close)
	daemonBinary(b) // built before the clock runs
	var took []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		text := mewsSection(srv, filepath.Join(b.TempDir(), "state"), mewsLimit, mewsWindow) + simEncoder("desk-1", mewstest.KeyCutter1.ID)
		upgraded := upgrades(srv)
		b.StartTimer()
		began := time.Now()
		p := startProcess(b, text)
		waitSim(b, srv, "WebSocket upgraded", func(s *mewstest.Server) bool { return upgrades(s) > upgraded })
		took = append(took, time.Since(began))
		b.StopTimer()
		p.stop(b)
		waitSim(b, srv, "socket gone", func(s *mewstest.Server) bool { return s.Sockets() == 0 })
		b.StartTimer()
	}
	b.StopTimer()
	sorted := sortedCopy(took)
	report(b, record{
		Samples: b.N,
		Metrics: []metric{
			under("p50", percentile(sorted, 0.5), "p50-ms", 200),
			under("max", ms(sorted[len(sorted)-1]), "max-ms", 200),
		},
		Notes: []string{"process start to WebSocket upgrade answered; includes exec, config load, journal creation, encoder start, the handshake"},
	})
}

func upgrades(s *mewstest.Server) int {
	n := 0
	for _, h := range s.Handshakes() {
		if h.Status == http.StatusSwitchingProtocols {
			n++
		}
	}
	return n
}

// BenchmarkCPUPerCommand is the daemon's own cost of one key command: the
// real binary's utime+stime (from /proc) over b.N commands run one after
// the other, divided by b.N. It is the whole command, from event to final
// report (three API requests, three fsynced journal writes, the info log
// lines), so it bounds the event-to-encoder overhead from above; waiting
// for I/O costs no CPU and is not in it.
func BenchmarkCPUPerCommand(b *testing.B) {
	if !procSupported() {
		b.Skip("process accounting is read from /proc: Linux only")
	}
	srv := mewstest.NewServer(mewstest.WithRateLimit(0, 0))
	b.Cleanup(srv.Close)
	p := startProcess(b, processConfig(b, srv, liftedLimit, time.Second))
	waitUp(b, srv, p, 0)
	before := mustReadProc(b, p.pid())
	b.ResetTimer()
	for range b.N {
		id := mustCut(b, srv, mewstest.KeyCutter1.ID, mewstest.ReservationArriving)
		waitSim(b, srv, "command final", func(s *mewstest.Server) bool { return final(s, id) })
	}
	b.StopTimer()
	after := mustReadProc(b, p.pid())
	user := after.user - before.user
	system := after.system - before.system
	per := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(b.N) }
	states := map[mews.CommandState]int{}
	for _, c := range srv.Commands() {
		states[c.State]++
	}
	if states[mews.CommandProcessed] != b.N {
		b.Fatalf("commands by state: %v, want %d Processed", states, b.N)
	}
	report(b, record{
		Samples: b.N,
		Metrics: []metric{
			plain("user CPU per command", per(user), "user-µs/cmd"),
			plain("system CPU per command", per(system), "sys-µs/cmd"),
			plain("total CPU per command", per(user+system), "cpu-µs/cmd"),
		},
		Notes: []string{fmt.Sprintf("whole command lifecycle, measured in %s ticks over %d commands", clockTick, b.N)},
	})
}
