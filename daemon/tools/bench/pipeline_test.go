package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/daemontest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"

	_ "github.com/mews-keyd/mews-keyd/keys/fias"
	_ "github.com/mews-keyd/mews-keyd/keys/sim"
)

// liftedLimit is the request limit of benchmarks that measure the pipeline
// rather than the rate limiter: far above what they send (the limiter keeps
// one slot per request, so it is not set absurdly high either).
const liftedLimit = 20_000

// waitTimeout bounds every wait; reaching it fails the benchmark.
const waitTimeout = 2 * time.Minute

func hostDescription() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

// mewsSection is the [mews] and [daemon] part of a benchmark config: the
// simulator, and a reconcile poll that never fires during a benchmark.
func mewsSection(srv *mewstest.Server, stateDir string, limit int, window time.Duration) string {
	return fmt.Sprintf(`
%srequest_limit = %d
request_window = %q
reconcile_interval = "1h"

[daemon]
state_dir = %q
`, srv.MewsTOML(), limit, window.String(), stateDir)
}

// simEncoder is one sim encoder that answers at once, and the key cutter
// it serves.
func simEncoder(name, deviceID string) string {
	return fmt.Sprintf(`
[[encoders]]
name = %q
driver = "sim"
timeout = "10s"
delay = "0s"

[[key_cutters]]
device_id = %q
encoder = %q
`, name, deviceID, name)
}

// pipeline is one daemon running in this process.
type pipeline struct {
	srv      *mewstest.Server
	d        *daemontest.Daemon
	outcomes chan daemon.Outcome
}

// startPipeline runs a daemon on config text and waits until it is
// connected and has made its start-up poll. The daemon logs at info level
// into nothing: the log calls of a production daemon are part of its cost.
func startPipeline(b *testing.B, srv *mewstest.Server, text string, outcomes int) *pipeline {
	b.Helper()
	p := &pipeline{srv: srv, outcomes: make(chan daemon.Outcome, outcomes)}
	d, err := daemontest.Start(text, daemon.Deps{
		Logger:  zerolog.New(io.Discard).Level(zerolog.InfoLevel),
		Version: "bench",
		OnEncoded: func(o daemon.Outcome) {
			select {
			case p.outcomes <- o:
			default:
				panic("bench: outcome channel full")
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	p.d = d
	b.Cleanup(p.stop)
	p.wait(b, "connected and polled", func(s *mewstest.Server) bool {
		return s.Sockets() > 0 && s.RequestCount(mews.OpActiveCommands) > 0
	})
	return p
}

func (p *pipeline) stop() {
	if err := p.d.Stop(); err != nil {
		panic(fmt.Sprintf("bench: daemon Run: %v", err))
	}
}

func (p *pipeline) wait(b *testing.B, what string, cond func(*mewstest.Server) bool) {
	b.Helper()
	waitSim(b, p.srv, what, cond)
}

func waitSim(b *testing.B, srv *mewstest.Server, what string, cond func(*mewstest.Server) bool) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Wait(ctx, cond); err != nil {
		b.Fatalf("waiting for %s: %v", what, err)
	}
}

func (p *pipeline) outcome(b *testing.B) daemon.Outcome {
	b.Helper()
	select {
	case o := <-p.outcomes:
		return o
	case <-time.After(waitTimeout):
		b.Fatal("no encoder call")
		return daemon.Outcome{}
	}
}

func final(srv *mewstest.Server, ids ...string) bool {
	for _, id := range ids {
		if c, ok := srv.Command(id); !ok || !c.State.Final() {
			return false
		}
	}
	return true
}

// finals counts the final states in a command's history: exactly one is
// the invariant.
func finals(hist []mews.CommandState) int {
	n := 0
	for _, st := range hist {
		if st.Final() {
			n++
		}
	}
	return n
}

func mustCut(b *testing.B, srv *mewstest.Server, deviceID, reservation string) string {
	b.Helper()
	id, err := srv.CreateKeyCutterCommand(deviceID, reservation, 1)
	if err != nil {
		b.Fatal(err)
	}
	return id
}
