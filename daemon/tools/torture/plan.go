package main

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Fault names, as counted in the summary.
const (
	faultDrop        = "socket drops"
	faultRefuse      = "refused reconnects"
	fault429         = "429 storms"
	fault5xx         = "5xx storms"
	faultSlow        = "slow API periods"
	faultHang        = "hung API calls"
	faultMalformed   = "malformed frames"
	faultOversize    = "oversize frames"
	faultDuplicate   = "duplicate-event periods"
	faultEncRefuse   = "encoder refusals"
	faultEncTimeout  = "encoder timeouts"
	faultEncCrash    = "encoder crashes"
	faultLockRefuse  = "lock refusal periods"
	faultLockMute    = "lock no-answer periods"
	faultLockNoise   = "lock noisy periods"
	faultLinkDrop    = "lock link drops"
	faultSaltoNAK    = "Salto NAK bursts"
	faultSaltoBusy   = "Salto busy periods"
	faultSaltoSlow   = "Salto slow-card periods"
	faultSaltoSplit  = "Salto split-answer periods"
	faultSaltoError  = "Salto error-code periods"
	faultSaltoNoAck  = "Salto no-ACK periods"
	faultSaltoMute   = "Salto no-answer periods"
	faultSaltoDrop   = "Salto link-drop periods"
	faultSaltoDamage = "Salto damaged-answer periods"
	faultKill        = "SIGKILL restarts"
	faultReload      = "SIGHUP reloads"
	faultDeskCancel  = "front-desk cancels"
	faultBurst       = "command bursts"
	faultStopQueued  = "stops with cards queued"
	faultQueueCancel = "cancels while queued"
)

// faultOrder is the order of the summary.
var faultOrder = []string{faultDrop, faultRefuse, fault429, fault5xx, faultSlow, faultHang, faultMalformed,
	faultOversize, faultDuplicate, faultEncRefuse, faultEncTimeout, faultEncCrash, faultLockRefuse, faultLockMute,
	faultLockNoise, faultLinkDrop, faultSaltoNAK, faultSaltoBusy, faultSaltoSlow, faultSaltoSplit, faultSaltoError,
	faultSaltoNoAck, faultSaltoMute, faultSaltoDrop, faultSaltoDamage, faultKill, faultReload, faultDeskCancel, faultBurst, faultStopQueued, faultQueueCancel}

// action is one step of the plan: at its time the scheduler runs do.
// Everything an action needs is drawn from the seed when the plan is made,
// so one seed always makes the same plan.
type action struct {
	at    time.Duration
	seq   int // tie-break: plan order
	fault string
	do    func(r *run)
}

type plan []*action

func (p plan) Len() int { return len(p) }
func (p plan) Less(i, j int) bool {
	if p[i].at != p[j].at {
		return p[i].at < p[j].at
	}
	return p[i].seq < p[j].seq
}
func (p plan) Swap(i, j int) { p[i], p[j] = p[j], p[i] }
func (p *plan) Push(x any)   { *p = append(*p, x.(*action)) }
func (p *plan) Pop() any {
	old := *p
	a := old[len(old)-1]
	*p = old[:len(old)-1]
	return a
}

type planner struct {
	rng        *rand.Rand
	duration   time.Duration
	actions    plan
	commands   int    // commands planned so far: each gets a number
	saltoStays []stay // reservations opened for Salto commands
}

func (pl *planner) add(at time.Duration, fault string, do func(r *run)) {
	heap.Push(&pl.actions, &action{at: at, seq: len(pl.actions), fault: fault, do: do})
}

// within draws a time in [from, to) of the run, as fractions of it.
func (pl *planner) within(from, to float64) time.Duration {
	lo, hi := float64(pl.duration)*from, float64(pl.duration)*to
	return time.Duration(lo + pl.rng.Float64()*(hi-lo))
}

func (pl *planner) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(pl.rng.Int64N(int64(hi-lo)))
}

// times is how many of a fault a run gets: per minute of run, from lo to hi.
func (pl *planner) times(lo, hi int) int {
	minutes := max(pl.duration.Minutes(), 0.25)
	return int(float64(lo+pl.rng.IntN(hi-lo+1))*minutes + 0.5)
}

func pick[T any](rng *rand.Rand, items ...T) T { return items[rng.IntN(len(items))] }

// makePlan draws the whole run from the seed: the commands the front desk
// creates and the faults. Faults stop at 80 % of the run and kills at 60 %,
// so the last daemon lives through faults long enough to show leaks, and
// the run ends with work still arriving on a healthy system.
func makePlan(seed uint64, duration time.Duration) plan {
	pl := &planner{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), duration: duration}
	pl.workload()
	const faultsEnd, killsEnd = 0.8, 0.6
	for range pl.times(3, 6) {
		pl.add(pl.within(0, faultsEnd), faultDrop, func(r *run) { r.srv.DropSockets() })
	}
	for range pl.times(2, 4) {
		n, status := 1+pl.rng.IntN(3), pick(pl.rng, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusTooManyRequests)
		pl.add(pl.within(0, faultsEnd), faultRefuse, func(r *run) {
			r.srv.RefuseUpgrades(n, status)
			r.srv.DropSockets()
		})
	}
	for range pl.times(2, 5) {
		n := 3 + pl.rng.IntN(12)
		pl.add(pl.within(0, faultsEnd), fault429, func(r *run) { r.srv.FailNext("", n, http.StatusTooManyRequests, "1") })
	}
	for range pl.times(2, 5) {
		n, status := 3+pl.rng.IntN(12), pick(pl.rng, 500, 502, 503, 504)
		pl.add(pl.within(0, faultsEnd), fault5xx, func(r *run) { r.srv.FailNext("", n, status, "") })
	}
	for range pl.times(2, 4) {
		at, lasts, delay := pl.within(0, faultsEnd), pl.between(time.Second, 4*time.Second), pl.between(50*time.Millisecond, 1500*time.Millisecond)
		pl.add(at, faultSlow, func(r *run) { r.srv.SetLatency("", delay) })
		pl.add(at+lasts, "", func(r *run) { r.srv.SetLatency("", 0) })
	}
	// Only updates hang: the daemon bounds them (Processing 2 s, reports
	// 30 s), where a hung read would stall for the HTTP client's 60 s.
	for range pl.times(2, 4) {
		pl.add(pl.within(0, faultsEnd), faultHang, func(r *run) { r.srv.HangNext(mews.OpUpdateCommand, 1) })
	}
	for range pl.times(3, 8) {
		frame, binary := pick(pl.rng, malformedFrames...), pl.rng.IntN(5) == 0
		pl.add(pl.within(0, faultsEnd), faultMalformed, func(r *run) {
			if binary {
				r.srv.PushBinary(frame)
			} else {
				r.srv.PushRaw(frame)
			}
		})
	}
	for range pl.times(1, 3) {
		pl.add(pl.within(0, faultsEnd), faultOversize, func(r *run) { r.srv.PushRaw(oversizeFrame()) })
	}
	for range pl.times(1, 3) {
		at, lasts := pl.within(0, faultsEnd), pl.between(time.Second, 5*time.Second)
		pl.add(at, faultDuplicate, func(r *run) { r.srv.SetDuplicateEvents(true) })
		pl.add(at+lasts, "", func(r *run) { r.srv.SetDuplicateEvents(false) })
	}
	for _, f := range []struct {
		name string
		mode fiastest.Mode
	}{{faultLockRefuse, fiastest.ModeFail}, {faultLockMute, fiastest.ModeNoAnswer}, {faultLockNoise, fiastest.ModeNoisy}} {
		for range pl.times(1, 3) {
			at, lasts := pl.within(0, faultsEnd), pl.between(500*time.Millisecond, 3*time.Second)
			pl.add(at, f.name, func(r *run) { r.lock.SetMode(f.mode) })
			pl.add(at+lasts, "", func(r *run) { r.lock.SetMode(fiastest.ModeOK) })
		}
	}
	for range pl.times(2, 5) {
		pl.add(pl.within(0, faultsEnd), faultLinkDrop, func(r *run) { r.lock.DropLink() })
	}
	pl.saltoFaults(faultsEnd)
	for range pl.times(2, 4) {
		pause := pl.between(0, 300*time.Millisecond)
		pl.add(pl.within(0.05, killsEnd), faultKill, func(r *run) { r.restart(pause) })
	}
	for range pl.times(2, 4) {
		pl.add(pl.within(0, faultsEnd), "", func(r *run) { r.reload() }) // counts itself: it may be skipped
	}
	for range pl.times(1, 2) {
		pl.queueThenStop(pl.within(0.05, killsEnd))
	}
	return pl.actions
}

// queueThenStop queues slow cards on one encoder, has the front desk cancel
// one of the waiting ones, and stops the daemon cleanly while the queue is
// still there: the card in the encoder finishes, the others are cut after
// the restart, and the cancelled one never.
func (pl *planner) queueThenStop(at time.Duration) {
	var queued []int
	for range 4 + pl.rng.IntN(4) {
		queued = append(queued, pl.commands)
		pl.plan(at, commandSpec{n: pl.commands, kind: kindExec, keys: keysSlow})
	}
	victim := queued[1+pl.rng.IntN(len(queued)-1)]
	pl.add(at+pl.between(50*time.Millisecond, 250*time.Millisecond), faultQueueCancel, func(r *run) { r.deskCancel(victim) })
	pl.add(at+pl.between(300*time.Millisecond, 700*time.Millisecond), "", func(r *run) { r.stopAndStart() }) // counts itself: it may be skipped
}

// malformedFrames are frames the daemon must log and skip, keeping the
// connection.
var malformedFrames = [][]byte{
	[]byte(`{"Events":[{"Type":"DeviceCommand"`),
	[]byte(`not json at all`),
	[]byte(`{"Events":[{"Type":"Unknown","Id":"x"}]}`),
	[]byte(`{"Events":[{"Type":"DeviceCommand","State":"Pending"}]}`),
	[]byte(`{"Events":"nope"}`),
	[]byte("{\"Events\":[{\"Type\":\"DeviceCommand\",\"Id\":\"\xff\xfe\",\"State\":\"Pending\"}]}"),
	[]byte(`{"Events":[{"Type":"DeviceCommand","Id":"00000000-0000-4000-8000-000000000000","State":"Pending"}]}`),
	[]byte(`[]`),
	{},
}

// oversizeFrame is a well-formed frame just over the 1 MiB limit.
func oversizeFrame() []byte {
	pad := make([]byte, 1<<20)
	for i := range pad {
		pad[i] = 'a'
	}
	return fmt.Appendf(nil, `{"Events":[],"Pad":"%s"}`, pad)
}

// Kinds of command the front desk creates.
type kind int

const (
	kindExec     kind = iota // KeyCutter1, served by the exec encoder
	kindFias                 // KeyCutter2, served by the FIAS lock, its own reservation
	kindSalto                // saltoDesk, served by the Salto interface, its own guest
	kindNoRoom               // a reservation without a room: Error, nothing cut
	kindTooOld               // created long ago: Cancelled, nothing cut
	kindPrinter              // not a key cutter: left untouched
	kindStranger             // a key cutter this daemon does not serve: left untouched
)

func (k kind) ours() bool { return k != kindPrinter && k != kindStranger }

// cuts reports whether commands of the kind are to reach an encoder.
func (k kind) cuts() bool { return k == kindExec || k == kindFias || k == kindSalto }

// workload plans the commands: one every 200 ms on average, plus bursts
// that push the client against the rate limit.
func (pl *planner) workload() {
	for at := time.Duration(0); ; {
		at += time.Duration(pl.rng.ExpFloat64() * float64(200*time.Millisecond))
		if at >= pl.duration {
			break
		}
		pl.command(at, pl.drawKind())
	}
	for range pl.times(1, 3) {
		at, n := pl.within(0, 0.8), 10+pl.rng.IntN(25)
		pl.add(at, faultBurst, func(*run) {})
		for range n {
			pl.command(at, pick(pl.rng, kindExec, kindFias, kindSalto))
		}
	}
}

func (pl *planner) drawKind() kind {
	switch p := pl.rng.IntN(100); {
	case p < 40:
		return kindExec
	case p < 65:
		return kindFias
	case p < 87:
		return kindSalto
	case p < 91:
		return kindNoRoom
	case p < 94:
		return kindTooOld
	case p < 97:
		return kindPrinter
	default:
		return kindStranger
	}
}

func (pl *planner) command(at time.Duration, k kind) {
	n := pl.commands
	spec := commandSpec{n: n, kind: k, keys: 1}
	switch k {
	case kindExec:
		switch p := pl.rng.IntN(100); {
		case p < 60:
			spec.keys = keysOK
		case p < 76:
			spec.keys = keysSlow
		case p < 86:
			spec.keys = keysRefuse
		case p < 93:
			spec.keys = keysHang
		default:
			spec.keys = keysCrash
		}
	case kindFias:
		spec.keys = 1 + pl.rng.IntN(2)
		spec.reservation = pl.uuid()
	case kindSalto:
		pl.saltoSpec(at, &spec)
	}
	pl.plan(at, spec)
	if k.ours() && k != kindTooOld && pl.rng.IntN(100) < 5 {
		pl.add(at+pl.between(0, 800*time.Millisecond), faultDeskCancel, func(r *run) { r.deskCancel(n) })
	}
}

// plan adds the creation of one command; spec.n must be pl.commands.
func (pl *planner) plan(at time.Duration, spec commandSpec) {
	pl.commands++
	fault := map[int]string{keysRefuse: faultEncRefuse, keysHang: faultEncTimeout, keysCrash: faultEncCrash}[spec.keys]
	if spec.kind != kindExec {
		fault = ""
	}
	pl.add(at, fault, func(r *run) { r.create(spec) })
}

// uuid draws an id in the shape of Mews ids from the seed.
func (pl *planner) uuid() string {
	a, b := pl.rng.Uint64(), pl.rng.Uint64()
	a = a&^(0xf<<12) | 0x4<<12
	b = b&^(0x3<<62) | 0x2<<62
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, a>>16&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// commandSpec is one planned command.
type commandSpec struct {
	n           int
	kind        kind
	keys        int
	reservation string // kindFias: its own reservation, so its KR is told apart by G#; kindSalto: its stay
	guest       string // kindSalto: its own guest, whose name Salto prints
	copy        bool   // kindSalto: a further card for an earlier stay
}

func (k kind) String() string {
	return [...]string{"exec", "fias", "salto", "no room", "too old", "printer", "stranger"}[k]
}
