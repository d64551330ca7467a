package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// Tolerances of the last daemon's growth from its early state to the end.
const (
	goroutineSlack = 10
	fdSlack        = 5
	// baselineAge is how long a process runs before its resources count as
	// its early state: start-up allocations are not growth.
	baselineAge = 2 * time.Second
)

// invariant is one checked property.
type invariant struct {
	name   string
	pass   bool
	skip   bool
	detail string
}

type result struct {
	seed       uint64
	duration   time.Duration
	counts     map[string]int
	outcomes   map[string]int
	processes  int
	invariants []invariant
}

func (res *result) ok() bool {
	for _, inv := range res.invariants {
		if !inv.pass && !inv.skip {
			return false
		}
	}
	return true
}

func (res *result) add(name string, pass bool, format string, args ...any) {
	res.invariants = append(res.invariants, invariant{name: name, pass: pass, detail: fmt.Sprintf(format, args...)})
}

func (res *result) skip(name, why string) {
	res.invariants = append(res.invariants, invariant{name: name, skip: true, detail: why})
}

func (res *result) print(w io.Writer) {
	fmt.Fprintf(w, "\ntorture summary: seed %d, duration %s, %d daemon processes\n\nfaults injected:\n", res.seed, res.duration, res.processes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range faultOrder {
		fmt.Fprintf(tw, "  %s\t%d\t\n", f, res.counts[f])
	}
	tw.Flush()
	fmt.Fprintf(w, "\ncommands by final state:\n")
	var states []string
	for s := range res.outcomes {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Fprintf(tw, "  %s\t%d\t\n", s, res.outcomes[s])
	}
	tw.Flush()
	fmt.Fprintf(w, "\ninvariants:\n")
	for _, inv := range res.invariants {
		verdict := "PASS"
		switch {
		case inv.skip:
			verdict = "SKIP"
		case !inv.pass:
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", verdict, inv.name, inv.detail)
	}
	if res.ok() {
		fmt.Fprintf(w, "\nresult: PASS (seed %d)\n", res.seed)
	} else {
		fmt.Fprintf(w, "\nresult: FAIL (seed %d)\n", res.seed)
	}
}

// check evaluates every invariant on what the run left behind.
func (r *run) check() *result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &result{seed: r.opts.seed, duration: r.opts.duration, counts: r.counts, outcomes: map[string]int{}, processes: len(r.procs)}
	res.add("run without incidents", len(r.problems) == 0, "%s", orNone(r.problems))
	r.checkStates(res)
	r.checkCards(res)
	r.checkRate(res)
	r.checkGrowth(res)
	r.checkLog(res)
	return res
}

func orNone(problems []string) string {
	if len(problems) == 0 {
		return "none"
	}
	return strings.Join(problems, "; ")
}

// checkStates: every command of ours has exactly one final state, and it is
// the current one; other devices' commands were never touched.
func (r *run) checkStates(res *result) {
	var bad, foreignBad []string
	ours, foreign := 0, 0
	for _, c := range r.created {
		cmd, _ := r.srv.Command(c.id)
		hist := r.srv.StateHistory(c.id)
		if !c.spec.kind.ours() {
			foreign++
			if slices.ContainsFunc(hist, func(s mews.CommandState) bool {
				return s != mews.CommandPending && s != mews.CommandReceived
			}) {
				foreignBad = append(foreignBad, fmt.Sprintf("%s %v", c.id, hist))
			}
			continue
		}
		ours++
		res.outcomes[string(cmd.State)]++
		finals := 0
		for _, s := range hist {
			if s.Final() {
				finals++
			}
		}
		if finals != 1 || !cmd.State.Final() {
			bad = append(bad, fmt.Sprintf("%s %v", c.id, hist))
		}
	}
	res.add("every key command has exactly one final state", len(bad) == 0, "%d commands, %d wrong %s", ours, len(bad), sample3(bad))
	res.add("other devices' commands left untouched", len(foreignBad) == 0, "%d commands, %d touched %s", foreign, len(foreignBad), sample3(foreignBad))
}

func sample3(items []string) string {
	sort.Strings(items)
	if len(items) > 3 {
		items = append(items[:3:3], "...")
	}
	if len(items) == 0 {
		return ""
	}
	return "[" + strings.Join(items, "; ") + "]"
}

// checkCards: the exec ledger, the lock's KR records and the CN/CC the
// Salto interface took show at most one card per command, exactly one for
// each Processed command, and none for commands that were never to be cut.
func (r *run) checkCards(res *result) {
	ledger := map[string]int{}
	if data, err := os.ReadFile(r.ledger); err == nil {
		for _, line := range strings.Fields(string(data)) {
			ledger[line]++
		}
	}
	kr := map[string]int{}
	for _, rec := range r.lock.Received() {
		if rec.Type == "KR" {
			kr[rec.Get("G#")]++
		}
	}
	salto := saltoCards(r.salto.Received())
	var twice, missing, unexpected, cancelledCut []string
	refused := refusedProcessing(r.srv.Requests())
	unasked := 0
	known := map[string]bool{}
	calls, krs := 0, 0
	for _, c := range r.created {
		cmd, _ := r.srv.Command(c.id)
		var n int
		switch c.spec.kind {
		case kindFias:
			n = kr[cmdNumber(c.spec.n)]
			known[cmdNumber(c.spec.n)] = true
			krs += n
		case kindSalto:
			n = salto.cards[saltoPrint(c.spec.n)]
			known[saltoPrint(c.spec.n)] = true
		default:
			n = ledger[c.id]
			known[c.id] = true
			calls += n
		}
		if n > 0 && cancelledBeforeStart(r.srv.StateHistory(c.id)) {
			if refused[c.id] {
				cancelledCut = append(cancelledCut, fmt.Sprintf("%s cut although Mews refused its Processing update", c.id))
			} else {
				unasked++ // Mews was failing: the daemon cut without asking
			}
		}
		switch {
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s cut %d times", c.id, n))
		case !c.spec.kind.cuts() && n > 0:
			unexpected = append(unexpected, fmt.Sprintf("%s (%v) cut", c.id, c.spec.kind))
		case cmd.State == mews.CommandProcessed && n != 1:
			missing = append(missing, fmt.Sprintf("%s Processed without a card", c.id))
		}
	}
	for id := range ledger {
		if !known[id] {
			unexpected = append(unexpected, "unknown ledger entry "+id)
		}
	}
	for g := range kr {
		if !known[g] {
			unexpected = append(unexpected, "KR for unknown G# "+g)
		}
	}
	for p := range salto.cards {
		if !known[p] {
			unexpected = append(unexpected, fmt.Sprintf("Salto card for unknown print line %q", p))
		}
	}
	res.add("no card encoded twice", len(twice) == 0, "%d exec encoder calls, %d FIAS KR, %d Salto CN and %d CC taken (%d more refused with NAK) %s",
		calls, krs, salto.cn, salto.cc, salto.naks, sample3(twice))
	res.add("cards only for key commands, one per Processed", len(missing)+len(unexpected) == 0, "%s", orNone(append(missing, unexpected...)))
	res.add("no card for a command Mews showed cancelled", len(cancelledCut) == 0,
		"%d cancelled at the desk; %d cut during an API outage before the cancel could be seen %s",
		r.counts[faultDeskCancel]+r.counts[faultQueueCancel], unasked, sample3(cancelledCut))
}

// refusedProcessing returns the commands whose Processing update Mews
// refused because they were closed: the daemon knew not to cut them.
func refusedProcessing(reqs []mewstest.Request) map[string]bool {
	out := map[string]bool{}
	for _, q := range reqs {
		if q.Op == mews.OpUpdateCommand && q.Body["State"] == string(mews.CommandProcessing) &&
			(q.Status == http.StatusForbidden || q.Status == http.StatusBadRequest) {
			if id, ok := q.Body["CommandId"].(string); ok {
				out[id] = true
			}
		}
	}
	return out
}

// cancelledBeforeStart reports whether Mews cancelled a command before it
// was ever Processing: from then on, no card may be cut for it. (A cancel
// that lands while the card is in the encoder cannot stop it.)
func cancelledBeforeStart(hist []mews.CommandState) bool {
	for _, s := range hist {
		switch s {
		case mews.CommandProcessing:
			return false
		case mews.CommandCancelled:
			return true
		}
	}
	return false
}

// checkRate: per daemon process (a process killed with SIGKILL takes its
// memory of recent requests with it, so only a process's own requests can
// be held to its limit), never more than requestLimit requests arriving in
// any requestWindow. The front desk's own cancels are left out.
func (r *run) checkRate(res *result) {
	var reqs []mewstest.Request
	for _, q := range r.srv.Requests() {
		if notes, _ := q.Body["Notes"].(string); notes != deskNote {
			reqs = append(reqs, q)
		}
	}
	worst, worstProc := 0, 0
	for _, p := range r.procs {
		end := p.ended
		if end.IsZero() {
			end = time.Now()
		}
		var times []time.Time
		for _, q := range reqs {
			if !q.Time.Before(p.started) && q.Time.Before(end) {
				times = append(times, q.Time)
			}
		}
		if n := peak(times, requestWindow); n > worst {
			worst, worstProc = n, p.n
		}
	}
	var all []time.Time
	for _, q := range reqs {
		all = append(all, q.Time)
	}
	res.add("no daemon process above the request limit", worst <= requestLimit,
		"limit %d per %s; busiest window %d requests (process %d); across restarts %d; %d requests in all",
		requestLimit, requestWindow, worst, worstProc, peak(all, requestWindow), len(reqs))
}

func peak(times []time.Time, window time.Duration) int {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	most, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= window {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

// checkGrowth compares the last daemon process early in its life (it
// lived through faults after that) with its settled end, and bounds RSS
// over the whole run.
func (r *run) checkGrowth(res *result) {
	const name = "no goroutine or fd growth, RSS bounded"
	if len(r.samples) == 0 {
		res.skip(name, "no samples ("+errNotLinux.Error()+", or the status endpoint never answered)")
		return
	}
	last := r.procs[len(r.procs)-1].n
	var mine []sample
	var maxRSS int64
	for _, s := range r.samples {
		maxRSS = max(maxRSS, s.rss)
		if s.proc == last && s.age >= baselineAge {
			mine = append(mine, s)
		}
	}
	if len(mine) < 2 {
		res.skip(name, "the last daemon process lived too short to compare")
		return
	}
	base, end := mine[0], mine[len(mine)-1]
	pass := end.goroutines <= base.goroutines+goroutineSlack && end.fds <= base.fds+fdSlack && maxRSS <= r.opts.maxRSS
	res.add(name, pass, "process %d over %s: goroutines %d -> %d (slack %d), fds %d -> %d (slack %d); max RSS %.1f MiB (bound %d MiB)",
		last, end.at.Sub(base.at).Round(time.Second), base.goroutines, end.goroutines, goroutineSlack, base.fds, end.fds, fdSlack,
		float64(maxRSS)/(1<<20), r.opts.maxRSS>>20)
}

// checkLog scans everything the daemons wrote. At level info nothing may
// carry a token or guest data, and nothing may have panicked.
func (r *run) checkLog(res *result) {
	data, err := os.ReadFile(r.log.Name())
	if err != nil {
		res.add("log free of tokens and guest data", false, "reading the log: %v", err)
		return
	}
	secrets := []string{mewstest.ClientToken, mewstest.AccessToken}
	for _, tok := range secrets[:2] {
		secrets = append(secrets, strings.Split(tok, "-")...)
	}
	var leaks, crashes []string
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		lines++
		for _, bad := range []string{"panic:", "fatal error:", "DATA RACE", "goroutine 1 ["} {
			if strings.Contains(line, bad) {
				crashes = append(crashes, line)
			}
		}
		var entry struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "debug" {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				leaks = append(leaks, "token in: "+line)
			}
		}
		for _, g := range guestData() {
			if strings.Contains(line, g) {
				leaks = append(leaks, fmt.Sprintf("guest data %q in: %s", g, line))
			}
		}
	}
	res.add("log free of tokens and guest data", len(leaks) == 0, "%d lines scanned %s", lines, sample3(leaks))
	res.add("no panic in the daemon's output", len(crashes) == 0, "%s", orNone(crashes))
}

// guestData is what identifies the fixture guests: names (as given and as
// the ASCII the lock gets), e-mails, phones. First names shorter than four
// letters ("Jan") are left out: they match too much else.
func guestData() []string {
	var out []string
	for _, c := range guests {
		for _, s := range []string{c.FirstName, c.LastName, c.Email, c.Phone} {
			if len([]rune(s)) >= 4 {
				out = append(out, s)
				if a := ascii(s); a != s {
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// ascii folds the letters of the fixture names to ASCII.
func ascii(s string) string {
	return strings.NewReplacer("á", "a", "Å", "A", "ö", "o", "ë", "e", "ü", "u", "Š", "S", "ř", "r", "č", "c",
		"ž", "z", "é", "e", "í", "i", "ó", "o", "ñ", "n").Replace(s)
}
