package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// The real binary, built once for the benchmarks that run it.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func daemonBinary(b *testing.B) string {
	b.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "mews-keyd-bench-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "mews-keyd")
		out, err := exec.Command("go", "build", "-o", binary.path, "github.com/mews-keyd/mews-keyd").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		b.Fatal(binary.err)
	}
	return binary.path
}

func removeBinaries() {
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
}

// process is one mews-keyd run as a subprocess, logging at info level in
// JSON to a file, as it would under a service manager.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProcess writes config text to a fresh directory and starts the
// binary on it.
func startProcess(b *testing.B, text string) *process {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "mews-keyd.toml")
	text += "\n[log]\nlevel = \"info\"\nformat = \"json\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		b.Fatal(err)
	}
	p := &process{log: logFile.Name(), done: make(chan struct{})}
	p.cmd = exec.Command(daemonBinary(b), "run", "--config", path)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		b.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	b.Cleanup(func() { p.stop(b) })
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks for a clean shutdown and waits for it; SIGKILL after a bound.
func (p *process) stop(b *testing.B) {
	b.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.cmd.Process.Kill() // Windows cannot interrupt another process
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		b.Errorf("mews-keyd did not stop on interrupt; log in %s", p.log)
	}
}

// processConfig is a daemon with one sim encoder for KeyCutter1 against
// srv, allowed limit requests per window.
func processConfig(b *testing.B, srv *mewstest.Server, limit int, window time.Duration) string {
	b.Helper()
	return mewsSection(srv, filepath.Join(b.TempDir(), "state"), limit, window) +
		simEncoder("desk-1", mewstest.KeyCutter1.ID)
}

// waitUp waits until a process that started after handshakes earlier
// handshakes is connected and has made its catch-up poll.
func waitUp(b *testing.B, srv *mewstest.Server, p *process, polls int) {
	b.Helper()
	waitSim(b, srv, "daemon connected and polled", func(s *mewstest.Server) bool {
		select {
		case <-p.done:
			b.Fatalf("mews-keyd exited: %v; log in %s", p.err, p.log)
		default:
		}
		return s.Sockets() > 0 && s.RequestCount(mews.OpActiveCommands) > polls
	})
}
