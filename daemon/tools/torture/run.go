package main

import (
	"container/heap"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// Mews's limit scaled down, so a one-minute run meets it: the daemon and
// the simulator both use it.
const (
	requestLimit  = 100
	requestWindow = 5 * time.Second
)

// stranger is a key cutter in Mews that the daemon is not configured for.
var stranger = mews.Device{ID: "5e1f0c2a-9b8d-4e7f-a6c5-b4d3e2f1a0c9", Type: mews.DeviceKeyCutter,
	Name: "Back office encoder", Identifier: "back-office"}

// deskNote marks the front desk's own cancels in the request log: they
// come from the simulated staff, not the daemon, and are left out of the
// daemon's rate check.
const deskNote = "cancelled at the front desk (torture)"

type runOptions struct {
	seed     uint64
	duration time.Duration
	bin      string // mews-keyd
	self     string // this program, the exec encoder
	dir      string
	maxRSS   int64
}

// run is one torture run: the simulators, the daemon processes one after
// the other, and what was done to them.
type run struct {
	opts   runOptions
	plan   plan
	srv    *mewstest.Server
	lock   *fiastest.Lock
	salto  *saltotest.Interface
	desk   *mews.Client
	config string
	ledger string
	log    *os.File
	status string // the daemon's status_listen address

	mu       sync.Mutex
	created  map[int]*created
	procs    []*proc
	counts   map[string]int
	problems []string // things that went wrong during the run itself
	samples  []sample
	reloads  int // config variants written: each reload changes the encoders
}

type created struct {
	spec commandSpec
	id   string
}

func newRun(opts runOptions) (*run, error) {
	r := &run{opts: opts, plan: makePlan(opts.seed, opts.duration), created: map[int]*created{}, counts: map[string]int{},
		ledger: filepath.Join(opts.dir, "ledger"), config: filepath.Join(opts.dir, "mews-keyd.toml")}
	r.srv = mewstest.NewServer(mewstest.WithRateLimit(requestLimit, requestWindow))
	r.srv.AddDevice(stranger)
	r.srv.AddDevice(saltoDesk)
	lock, err := fiastest.Listen(fiastest.Options{})
	if err != nil {
		r.srv.Close()
		return nil, err
	}
	r.lock = lock
	if r.salto, err = saltotest.Listen(saltotest.Options{}); err != nil {
		r.close()
		return nil, err
	}
	r.desk, err = mews.NewClient(mews.ClientConfig{APIURL: r.srv.URL(), ClientToken: mewstest.ClientToken,
		AccessToken: mewstest.AccessToken, Client: "front desk", RequestLimit: 1000, RequestWindow: time.Second})
	if err != nil {
		r.close()
		return nil, err
	}
	if r.status, err = freeAddr(); err != nil {
		r.close()
		return nil, err
	}
	if r.log, err = os.Create(filepath.Join(opts.dir, "daemon.log")); err != nil {
		r.close()
		return nil, err
	}
	if err := r.writeConfig(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *run) close() {
	for _, p := range r.procs {
		p.kill()
	}
	if r.desk != nil {
		r.desk.Close()
	}
	if r.lock != nil {
		r.lock.Close()
	}
	if r.salto != nil {
		r.salto.Close()
	}
	r.srv.Close()
	if r.log != nil {
		r.log.Close()
	}
}

// freeAddr finds a loopback port for status_listen, which must be the same
// for every daemon process of the run.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (r *run) configText() string {
	return fmt.Sprintf(`
%srequest_limit = %d
request_window = %q
max_command_age = "30m"
reconcile_interval = "10s"

[daemon]
state_dir = %q
status_listen = %q

[log]
level = "info"
format = "json"

[[encoders]]
name = "desk-exec"
driver = "exec"
timeout = "%dms"
command = [%q, "encode"]
env = { %s = %q }

[[encoders]]
name = "desk-fias"
driver = "fias"
timeout = "2s"
address = %q
keepalive = "%ds"
connect_timeout = "1s"
reconnect_min = "100ms"
reconnect_max = "1s"

[[encoders]]
name = "desk-salto"
driver = "salto"
timeout = "%dms"
address = %q
connect_timeout = "%dms"

[[key_cutters]]
device_id = %q
encoder = "desk-exec"

[[key_cutters]]
device_id = %q
encoder = "desk-fias"

[[key_cutters]]
device_id = %q
encoder = "desk-salto"
`, r.srv.MewsTOML(), requestLimit, requestWindow.String(),
		filepath.Join(r.opts.dir, "state"), r.status, execTimeout.Milliseconds()+int64(100*(r.reloads%2)), r.opts.self,
		ledgerEnv, r.ledger, r.lock.Addr(), 3+r.reloads%2,
		saltoTimeout.Milliseconds(), r.salto.Addr(), saltoConnect.Milliseconds()+int64(100*(r.reloads%2)),
		mewstest.KeyCutter1.ID, mewstest.KeyCutter2.ID, saltoDesk.ID)
}

// proc is one daemon process.
type proc struct {
	n       int
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}

	mu      sync.Mutex
	ended   time.Time
	err     error
	expects bool // we killed or stopped it
}

func (r *run) start() error {
	p := &proc{n: len(r.procs) + 1, done: make(chan struct{})}
	fmt.Fprintf(r.log, "{\"torture\":\"daemon process %d starting\"}\n", p.n)
	p.cmd = exec.Command(r.opts.bin, "run", "--config", r.config)
	p.cmd.Stdout, p.cmd.Stderr = r.log, r.log
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start mews-keyd: %w", err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.ended, p.err = time.Now(), err
		p.mu.Unlock()
		close(p.done)
	}()
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	return nil
}

func (r *run) current() *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.procs[len(r.procs)-1]
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill is SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	p.mu.Lock()
	p.expects = true
	p.mu.Unlock()
	if p.alive() {
		_ = p.cmd.Process.Kill() // it may have just exited
	}
	<-p.done
}

// stop is a clean shutdown; it reports how it went.
func (p *proc) stop(within time.Duration) error {
	p.mu.Lock()
	p.expects = true
	p.mu.Unlock()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		return fmt.Errorf("interrupt: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		p.kill()
		return fmt.Errorf("did not stop within %s of an interrupt; killed", within)
	}
	if p.err != nil {
		return fmt.Errorf("exited with %v", p.err)
	}
	return nil
}

func (r *run) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// restart is a SIGKILL, a pause, and a new process on the same state dir.
func (r *run) restart(pause time.Duration) {
	r.current().kill()
	time.Sleep(pause) // how long the service manager takes to restart it
	if err := r.start(); err != nil {
		r.problem("%v", err)
	}
}

// stopAndStart is a clean stop (the service manager's stop) and a new
// process on the same state dir. The stop must not outlast the card in the
// encoder: the exec timeout, plus the last report's flush and the
// WebSocket's close. A process not answering on its status endpoint yet
// may not handle the signal yet either: it is skipped, like a reload.
func (r *run) stopAndStart() {
	p := r.current()
	if _, err := goroutines(r.status); err != nil || !p.alive() {
		return
	}
	r.mu.Lock()
	r.counts[faultStopQueued]++
	r.mu.Unlock()
	if err := p.stop(execTimeout + 10*time.Second); err != nil {
		r.problem("stop with cards queued: %v", err)
	}
	if err := r.start(); err != nil {
		r.problem("%v", err)
	}
}

// reload rewrites the config with the encoders changed (the exec timeout,
// the FIAS keepalive and Salto's connect_timeout alternate, so every
// station is replaced: the old one finishes its queue, the FIAS link is
// dialled again) and sends
// SIGHUP. A process whose status endpoint does not answer yet may not have
// its SIGHUP handler either (the signal would end it): it is skipped.
func (r *run) reload() {
	p := r.current()
	if runtime.GOOS == "windows" || !p.alive() {
		return // Windows has no SIGHUP: a service restart applies a new config
	}
	if _, err := goroutines(r.status); err != nil {
		return
	}
	r.mu.Lock()
	r.reloads++
	r.mu.Unlock()
	if err := r.writeConfig(); err != nil {
		r.problem("rewriting the config: %v", err)
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		r.problem("SIGHUP: %v", err)
		return
	}
	r.mu.Lock()
	r.counts[faultReload]++
	r.mu.Unlock()
}

// writeConfig replaces the config file in one step, so a daemon starting
// meanwhile reads the old or the new file, never half of one.
func (r *run) writeConfig() error {
	tmp := r.config + ".new"
	if err := os.WriteFile(tmp, []byte(r.configText()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.config)
}

// reviveIfDead restarts a daemon that exited without being told to: the
// exit is a violation, and the run goes on.
func (r *run) reviveIfDead() {
	p := r.current()
	if p.alive() {
		return
	}
	p.mu.Lock()
	expected := p.expects
	p.mu.Unlock()
	if expected {
		return
	}
	r.problem("daemon process %d exited on its own: %v", p.n, p.err)
	if err := r.start(); err != nil {
		r.problem("%v", err)
	}
}

// execute runs the plan, then lets the system settle and stops the daemon.
func (r *run) execute(ctx context.Context) *result {
	if err := r.start(); err != nil {
		r.problem("%v", err)
		return r.check()
	}
	if err := r.srv.Wait(ctx, func(s *mewstest.Server) bool { return s.Sockets() > 0 }); err != nil {
		r.problem("first daemon never connected: %v", err)
		return r.check()
	}
	samplerCtx, stopSampler := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() { r.sample(samplerCtx) })

	began := time.Now()
	for r.plan.Len() > 0 {
		a := heap.Pop(&r.plan).(*action)
		if !sleepUntil(ctx, began.Add(a.at)) {
			break
		}
		r.reviveIfDead()
		a.do(r)
		if a.fault != "" {
			r.mu.Lock()
			r.counts[a.fault]++
			r.mu.Unlock()
		}
	}
	sleepUntil(ctx, began.Add(r.opts.duration))
	r.quiesce(ctx)
	// Idle connections and finished goroutines wind down; the last sample
	// is the settled state.
	sleepUntil(ctx, time.Now().Add(3*time.Second))
	stopSampler()
	sampler.Wait()
	r.takeSample()
	if err := r.current().stop(40 * time.Second); err != nil {
		r.problem("clean stop at the end: %v", err)
	}
	return r.check()
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// quiesce ends every fault and waits for every command of ours to be final.
func (r *run) quiesce(ctx context.Context) {
	r.srv.SetLatency("", 0)
	r.srv.SetDuplicateEvents(false)
	r.srv.RefuseUpgrades(0, 0)
	r.lock.SetMode(fiastest.ModeOK)
	r.calmSalto()
	r.reviveIfDead()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	err := r.srv.Wait(wctx, func(s *mewstest.Server) bool {
		for _, c := range r.ours() {
			if cmd, _ := s.Command(c.id); !cmd.State.Final() {
				return false
			}
		}
		return true
	})
	if err != nil {
		r.problem("commands still not final 3 minutes after the faults ended")
	}
}

func (r *run) ours() []*created {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*created
	for _, c := range r.created {
		if c.spec.kind.ours() {
			out = append(out, c)
		}
	}
	return out
}
