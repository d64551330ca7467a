package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/daemontest"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestCrashMatrix kills a real mews-keyd process with SIGKILL at each step
// boundary of a key command, starts it again on the same state dir and
// checks the invariant the journal exists for: the command ends in exactly
// one final state in Mews, and the encoder was called at most once.
//
// The encoder is ledgerenc (testdata/ledgerenc) behind the exec driver: it
// writes every call to a ledger file before anything else, so the ledger
// counts cards even when the daemon dies, and it reports each call to the
// test and waits for a verdict, so the test knows exactly where the daemon
// is when it kills it.
func TestCrashMatrix(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL of a process is a Unix test")
	}
	bin := buildBinaries(t)

	t.Run("no kill", func(t *testing.T) {
		c := newCrashCase(t, bin)
		p := c.start()
		c.ledger.next(t).answer("ok")
		c.waitFinal(p)
		p.stop()
		// Restart and replay the old events: nothing may happen again.
		p = c.start()
		c.waitPolled(p)
		c.srv.PushEvents(
			mews.Event{Type: mews.EventDeviceCommand, ID: c.id, State: string(mews.CommandPending)},
			mews.Event{Type: mews.EventDeviceCommand, ID: c.id, State: string(mews.CommandProcessing)},
		)
		p.stop()
		c.check(mews.CommandProcessed, "1 key for room", 1)
		if n := c.srv.RequestCount(mews.OpCommandsByIDs); n > 1 {
			t.Errorf("%d getAllByIds requests; replayed events for a finished command must cost none", n)
		}
	})

	t.Run("before encode", func(t *testing.T) {
		c := newCrashCase(t, bin)
		// The encoder is free, so the start log records the command
		// accepted and started in one write while Mews hears Processing; the
		// encoder is called once both are done. Holding the update holds
		// the daemon there; the kill lands before or after the journal
		// write. After it, the start on disk cannot be told from an
		// interrupted encode: reported as one, no card cut. Before it, the
		// journal knows nothing and Mews shows the command still waiting:
		// it is cut once, as new.
		c.srv.HangNext(mews.OpUpdateCommand, 1)
		p := c.start()
		c.waitHung(p, mews.CommandProcessing)
		p.kill()
		if n := c.ledger.count(c.id); n != 0 {
			t.Fatalf("encoder called %d times before the kill", n)
		}
		answered := make(chan bool, 1)
		stop := make(chan struct{})
		go func() {
			select {
			case call := <-c.ledger.calls:
				call.answer("ok")
				answered <- true
			case <-stop:
				answered <- false
			}
		}()
		p = c.start()
		c.waitFinal(p)
		p.stop()
		close(stop)
		if <-answered {
			c.check(mews.CommandProcessed, "1 key for room", 1)
		} else {
			c.check(mews.CommandError, "interrupted by a restart, please cut the key again", 0)
		}
	})

	t.Run("after encode before journal", func(t *testing.T) {
		c := newCrashCase(t, bin)
		p := c.start()
		call := c.ledger.next(t)
		// The card is cut (ledger written) and the encoder has not
		// answered: only the start log says "encode started" (journal.db
		// takes the start with the result), so the next start must
		// replay it from there.
		p.kill()
		call.drop()
		starts, err := os.ReadFile(filepath.Join(c.state, journal.StartLogName))
		if err != nil || !bytes.Contains(starts, []byte(c.id)) {
			t.Fatalf("the start log lacks the command the encoder has (%v)", err)
		}
		p = c.start()
		c.waitFinal(p)
		p.stop()
		c.check(mews.CommandError, "interrupted by a restart, please cut the key again", 1)
		if !strings.Contains(p.logs.String(), "the start log had encodes journal.db did not") {
			t.Error("the restart did not say it replayed the start log")
		}
	})

	t.Run("queued card during encode", func(t *testing.T) {
		c := newCrashCase(t, bin)
		other := mustCut(t, c.srv, mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
		p := c.start()
		// One command takes the free encoder, the other waits for it,
		// accepted in journal.db; it starts once the first is answered.
		first := c.ledger.next(t)
		first.answer("ok")
		second := c.ledger.next(t)
		// Only the start log says the queued card started.
		p.kill()
		second.drop()
		p = c.start()
		c.wait(p, "both commands final", func(s *mewstest.Server) bool {
			a, _ := s.Command(c.id)
			b, _ := s.Command(other)
			return a.State.Final() && b.State.Final()
		})
		p.stop()
		c.checkCommand(first.id, mews.CommandProcessed, "1 key for room", 1)
		c.checkCommand(second.id, mews.CommandError, "interrupted by a restart, please cut the key again", 1)
	})

	t.Run("after journal before update", func(t *testing.T) {
		c := newCrashCase(t, bin)
		p := c.start()
		call := c.ledger.next(t)
		c.srv.HangNext(mews.OpUpdateCommand, 1)
		call.answer("ok")
		c.waitHung(p, mews.CommandProcessed)
		p.kill()
		p = c.start()
		c.waitFinal(p)
		p.stop()
		c.check(mews.CommandProcessed, "1 key for room", 1)
	})

	t.Run("after update", func(t *testing.T) {
		c := newCrashCase(t, bin)
		p := c.start()
		c.ledger.next(t).answer("ok")
		c.waitFinal(p)
		p.kill()
		p = c.start()
		c.waitPolled(p)
		// A clean stop flushes the outbox: a report the killed daemon had
		// not marked delivered is sent again now, and must change nothing.
		p.stop()
		c.check(mews.CommandProcessed, "1 key for room", 1)
	})
}

// buildBinaries builds mews-keyd and the ledger encoder once for the whole
// matrix.
func buildBinaries(t *testing.T) crashBinaries {
	t.Helper()
	dir := t.TempDir()
	b := crashBinaries{daemon: filepath.Join(dir, "mews-keyd"), encoder: filepath.Join(dir, "ledgerenc")}
	for pkg, out := range map[string]string{
		"github.com/mews-keyd/mews-keyd": b.daemon,
		"./testdata/ledgerenc":           b.encoder,
	} {
		build := osexec.Command("go", "build", "-o", out, pkg)
		if msg, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return b
}

type crashBinaries struct{ daemon, encoder string }

// crashCase is one key command through one or more daemon processes
// sharing a state dir.
type crashCase struct {
	t      *testing.T
	bin    crashBinaries
	srv    *mewstest.Server
	ledger *ledger
	config string
	state  string // the daemon's state_dir
	id     string
}

func newCrashCase(t *testing.T, bin crashBinaries) *crashCase {
	t.Helper()
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	l := newLedger(t, filepath.Join(dir, "ledger"))
	encoder := fmt.Sprintf(`
[[encoders]]
name = "desk-1"
driver = "exec"
timeout = "20s"
command = [%q]
env = { LEDGER_FILE = %q, LEDGER_ADDR = %q }
`, bin.encoder, l.file, l.addr())
	config := filepath.Join(dir, "mews-keyd.toml")
	state := filepath.Join(dir, "state")
	text := strings.Replace(configText(srv, state, encoder), `level = "debug"`, "level = \"debug\"\nformat = \"json\"", 1)
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// Created before the first start: the catch-up poll finds it, so no
	// event has to reach a daemon that is still connecting.
	id := mustCut(t, srv, mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	return &crashCase{t: t, bin: bin, srv: srv, ledger: l, config: config, state: state, id: id}
}

// daemonProc is one mews-keyd process.
type daemonProc struct {
	t          *testing.T
	cmd        *osexec.Cmd
	logs       *daemontest.Log
	handshakes int // handshakes before this process started
	done       chan struct{}
	err        error
}

func (c *crashCase) start() *daemonProc {
	c.t.Helper()
	p := &daemonProc{t: c.t, logs: daemontest.NewLog(), handshakes: len(c.srv.Handshakes()), done: make(chan struct{})}
	p.cmd = osexec.Command(c.bin.daemon, "run", "--config", c.config)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	c.t.Cleanup(p.kill)
	return p
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *daemonProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("kill: %v", err)
	}
	<-p.done
}

// stop asks for a clean shutdown, as the service manager does.
func (p *daemonProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		p.t.Fatalf("interrupt: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		p.kill()
		p.t.Fatalf("daemon did not stop\nlogs:\n%s", p.logs)
	}
	if p.err != nil {
		p.t.Errorf("daemon exited with %v\nlogs:\n%s", p.err, p.logs)
	}
}

func (c *crashCase) wait(p *daemonProc, what string, cond func(*mewstest.Server) bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel() // a dead daemon will not make the condition true
		case <-ctx.Done():
		}
	}()
	if err := c.srv.Wait(ctx, cond); err != nil {
		c.t.Fatalf("waiting for %s: %v (daemon exited: %v)\nlogs:\n%s", what, err, p.exited(), p.logs)
	}
}

func (p *daemonProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (c *crashCase) waitFinal(p *daemonProc) {
	c.t.Helper()
	c.wait(p, "command final", func(s *mewstest.Server) bool {
		cmd, _ := s.Command(c.id)
		return cmd.State.Final()
	})
}

// waitPolled waits for this process's catch-up poll after it connected.
func (c *crashCase) waitPolled(p *daemonProc) {
	c.t.Helper()
	polls := c.srv.RequestCount(mews.OpActiveCommands)
	c.wait(p, "catch-up poll", func(s *mewstest.Server) bool {
		return len(s.Handshakes()) > p.handshakes && s.RequestCount(mews.OpActiveCommands) > polls
	})
}

// waitHung waits until the daemon's update to state is held by HangNext.
func (c *crashCase) waitHung(p *daemonProc, state mews.CommandState) {
	c.t.Helper()
	c.wait(p, "update to "+string(state)+" held", func(s *mewstest.Server) bool {
		return slices.ContainsFunc(s.Requests(), func(r mewstest.Request) bool {
			return r.Op == mews.OpUpdateCommand && r.Status == 0 && r.Body["CommandId"] == c.id && r.Body["State"] == string(state)
		})
	})
}

// check asserts the invariant and the expected outcome.
func (c *crashCase) check(want mews.CommandState, note string, calls int) {
	c.t.Helper()
	c.checkCommand(c.id, want, note, calls)
}

func (c *crashCase) checkCommand(id string, want mews.CommandState, note string, calls int) {
	c.t.Helper()
	var finals []mews.CommandState
	for _, st := range c.srv.StateHistory(id) {
		if st.Final() {
			finals = append(finals, st)
		}
	}
	if len(finals) != 1 {
		c.t.Errorf("%s: final states in Mews %v (history %v), want exactly one", id, finals, c.srv.StateHistory(id))
	}
	if n := c.ledger.count(id); n != calls {
		c.t.Errorf("%s: encoder called %d times, want %d", id, n, calls)
	}
	assertState(c.t, c.srv, id, want, note)
}

// ledger is the test's side of ledgerenc: the ledger file and the listener
// each call reports to.
type ledger struct {
	file  string
	ln    net.Listener
	calls chan *encoderCall
	wg    sync.WaitGroup
}

// encoderCall is one running ledgerenc waiting for its verdict.
type encoderCall struct {
	id   string
	conn net.Conn
}

func newLedger(t *testing.T, file string) *ledger {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{file: file, ln: ln, calls: make(chan *encoderCall, 16)}
	l.wg.Go(l.accept)
	t.Cleanup(func() {
		ln.Close()
		l.wg.Wait()
		close(l.calls)
		for c := range l.calls {
			c.drop() // a call nobody answered: let the program exit
		}
	})
	return l
}

func (l *ledger) addr() string { return l.ln.Addr().String() }

func (l *ledger) accept() {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
		id, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			conn.Close()
			continue
		}
		_ = conn.SetReadDeadline(time.Time{})
		l.calls <- &encoderCall{id: strings.TrimSpace(id), conn: conn}
	}
}

// next waits for the next encoder call.
func (l *ledger) next(t *testing.T) *encoderCall {
	t.Helper()
	select {
	case c := <-l.calls:
		return c
	case <-time.After(waitTimeout):
		t.Fatalf("the encoder was not called")
		return nil
	}
}

// count reads how often the encoder was called for id.
func (l *ledger) count(id string) int {
	data, err := os.ReadFile(l.file)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == id {
			n++
		}
	}
	return n
}

func (c *encoderCall) answer(verdict string) {
	fmt.Fprintln(c.conn, verdict)
	c.conn.Close()
}

func (c *encoderCall) drop() { c.conn.Close() }
