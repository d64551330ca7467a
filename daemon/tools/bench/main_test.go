// Package bench measures mews-keyd against the quality bars of SPEC §7 on
// the loopback simulators: `make bench` runs it. Each benchmark reports its
// figures with b.ReportMetric (so benchstat can compare runs) and records
// them; after the run the records are written as JSON (-bench.json) and
// printed as a table next to the bar they answer.
//
// The whole-pipeline benchmarks need one iteration per key command, so the
// sample behind a percentile is b.N commands: run with -benchtime 3s or
// more for a meaningful p99.
package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/daemon"
)

var (
	jsonOut  = flag.String("bench.json", "", "write the results as JSON to this file")
	idleTime = flag.Duration("bench.idle", 30*time.Second, "how long the idle footprint benchmark watches the daemon")
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The daemons these benchmarks run in this process get the garbage
	// collector the binary gives itself.
	daemon.TuneGC()
	code := m.Run()
	if code == 0 && results.any() {
		results.print(os.Stdout)
		if *jsonOut != "" {
			if err := results.write(*jsonOut); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				code = 1
			}
		}
	}
	removeBinaries()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// metric is one measured figure, with the bar it is held against when
// SPEC §7 sets one.
type metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Bar is the SPEC limit in Unit, Pass whether the value meets it.
	Bar  *float64 `json:"bar,omitempty"`
	Rel  string   `json:"relation,omitempty"` // "<", "<=", ">=" or "="
	Pass *bool    `json:"pass,omitempty"`
}

// record is what one benchmark measured in its final run (b.N settled).
type record struct {
	Benchmark string   `json:"benchmark"`
	Samples   int      `json:"samples"`
	Metrics   []metric `json:"metrics"`
	Notes     []string `json:"notes,omitempty"`
}

type recorder struct {
	mu    sync.Mutex
	order []string
	byKey map[string]*record
	when  time.Time
}

var results = &recorder{byKey: map[string]*record{}, when: time.Now()}

// report records r for b, replacing what an earlier run of the same
// benchmark (a smaller b.N) recorded, and reports each metric to the
// testing package too.
func report(b *testing.B, r record) {
	b.Helper()
	r.Benchmark = b.Name()
	for _, m := range r.Metrics {
		b.ReportMetric(m.Value, m.Unit)
	}
	results.mu.Lock()
	defer results.mu.Unlock()
	if _, ok := results.byKey[r.Benchmark]; !ok {
		results.order = append(results.order, r.Benchmark)
	}
	results.byKey[r.Benchmark] = &r
}

// under is a metric that must stay below bar.
func under(name string, value float64, unit string, bar float64) metric {
	pass := value < bar
	return metric{Name: name, Value: value, Unit: unit, Bar: &bar, Rel: "<", Pass: &pass}
}

// atMost is a metric that must not exceed bar.
func atMost(name string, value float64, unit string, bar float64) metric {
	pass := value <= bar
	return metric{Name: name, Value: value, Unit: unit, Bar: &bar, Rel: "<=", Pass: &pass}
}

// atLeast is a metric that must reach bar.
func atLeast(name string, value float64, unit string, bar float64) metric {
	pass := value >= bar
	return metric{Name: name, Value: value, Unit: unit, Bar: &bar, Rel: ">=", Pass: &pass}
}

// exactly is a metric that must equal want.
func exactly(name string, value float64, unit string, want float64) metric {
	pass := value == want
	return metric{Name: name, Value: value, Unit: unit, Bar: &want, Rel: "=", Pass: &pass}
}

func plain(name string, value float64, unit string) metric {
	return metric{Name: name, Value: value, Unit: unit}
}

func (r *recorder) any() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order) > 0
}

func (r *recorder) write(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := struct {
		When    time.Time `json:"when"`
		Host    string    `json:"host"`
		Results []*record `json:"results"`
	}{When: r.when.UTC(), Host: hostDescription()}
	for _, k := range r.order {
		out.Results = append(out.Results, r.byKey[k])
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// print writes the human table: one line per metric, with the SPEC bar
// and whether it is met.
func (r *recorder) print(f *os.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(f, "\nmews-keyd benchmarks (%s)\n\n", hostDescription())
	tw := tabwriter.NewWriter(f, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tmetric\tvalue\tSPEC §7 bar\t")
	for _, k := range r.order {
		rec := r.byKey[k]
		name := strings.TrimPrefix(rec.Benchmark, "Benchmark")
		if rec.Samples > 0 {
			name += fmt.Sprintf(" (n=%d)", rec.Samples)
		}
		for _, m := range rec.Metrics {
			bar := ""
			if m.Bar != nil {
				verdict := "met"
				if !*m.Pass {
					verdict = "NOT MET"
				}
				bar = fmt.Sprintf("%s %s: %s", m.Rel, number(*m.Bar), verdict)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t\n", name, m.Name, number(m.Value), m.Unit, bar)
			name = ""
		}
	}
	tw.Flush()
	var notes []string
	for _, k := range r.order {
		for _, n := range r.byKey[k].Notes {
			notes = append(notes, strings.TrimPrefix(k, "Benchmark")+": "+n)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(f, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintln(f, "  "+n)
		}
	}
	fmt.Fprintln(f)
}

func number(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e9:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// percentile returns the p-th percentile (0..1) of sorted durations, by the
// nearest-rank method, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sortedCopy(ds []time.Duration) []time.Duration {
	out := slices.Clone(ds)
	slices.Sort(out)
	return out
}

func sortTimes(ts []time.Time) {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
}
