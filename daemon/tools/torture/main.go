// Command torture is mews-keyd's randomized soak: it runs the real binary
// as a subprocess against the Mews simulator, a FIAS lock simulator and a
// Salto interface simulator for a bounded time, while a plan drawn from a
// seed creates key commands and injects faults: socket drops, refused
// reconnects, 429 and 5xx storms, slow and hung API calls, malformed and
// oversize frames, encoder refusals, timeouts and crashes, lock refusals,
// silences and link drops, Salto NAKs, busy periods, slow cards, error
// codes, missing ACKs and answers, dropped connections and damaged
// answers, SIGKILL restarts of the daemon, SIGHUP reloads that replace the
// encoders.
// Then it checks the invariants:
//
//   - every key command ends in exactly one final state in Mews, and
//     commands for other devices are left untouched;
//   - no card is encoded twice: the exec encoder (this program, run as
//     `torture encode`) appends every call to a synced ledger, the FIAS
//     lock records every KR, the Salto interface every CN and CC it took
//     (each Salto command's guest is its own, and Salto prints the name);
//   - no daemon process ever sent more than request_limit requests in any
//     request_window (from the simulator's request log);
//   - no goroutine or file descriptor growth and a bounded RSS in the last
//     daemon process (Linux: /proc and the daemon's /metrics);
//   - the daemon's whole output, at level info, holds neither a token nor
//     guest data (names, e-mails, phones);
//   - the daemon never exits unless killed, and stops cleanly at the end.
//
// Usage:
//
//	go run ./daemon/tools/torture [-seed N] [-duration 60s] [-bin path/to/mews-keyd]
//
// It prints the seed, the fault counts and each invariant, and exits 1 on a
// violation. The plan depends only on the seed and the duration, so the
// same flags replay the same run (timing on a busy machine aside).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "encode" {
		os.Exit(encode())
	}
	os.Exit(runMain())
}

func runMain() int {
	seed := flag.Uint64("seed", 0, "the plan's seed; 0 draws one")
	duration := flag.Duration("duration", 60*time.Second, "how long commands and faults come")
	bin := flag.String("bin", "", "the mews-keyd binary; empty builds it")
	keep := flag.Bool("keep", false, "keep the work directory (logs, ledger, journal)")
	maxRSS := flag.Int("max-rss", 64, "the daemon's RSS bound in MiB")
	flag.Parse()
	if *seed == 0 {
		*seed = rand.Uint64()%1_000_000_000 + 1
	}
	fmt.Printf("torture: seed %d, duration %s\n", *seed, *duration)
	fmt.Printf("reproduce: go run ./daemon/tools/torture -seed %d -duration %s\n", *seed, *duration)

	dir, err := os.MkdirTemp("", "mews-keyd-torture-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "torture:", err)
		return 2
	}
	defer func() {
		if *keep {
			fmt.Println("work directory kept:", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	if *bin == "" {
		*bin = filepath.Join(dir, "mews-keyd")
		if out, err := exec.Command("go", "build", "-o", *bin, "github.com/mews-keyd/mews-keyd").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "torture: go build: %v\n%s", err, out)
			return 2
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "torture:", err)
		return 2
	}
	r, err := newRun(runOptions{seed: *seed, duration: *duration, bin: *bin, self: self, dir: dir, maxRSS: int64(*maxRSS) << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, "torture:", err)
		return 2
	}
	defer r.close()
	ctx, cancel := context.WithTimeout(context.Background(), *duration+5*time.Minute)
	defer cancel()
	res := r.execute(ctx)
	res.print(os.Stdout)
	if !res.ok() {
		if !*keep {
			fmt.Println("rerun with -keep to inspect the daemon's log, the ledger and the journal")
		}
		return 1
	}
	return 0
}

var errNotLinux = errors.New("needs /proc (Linux)")
