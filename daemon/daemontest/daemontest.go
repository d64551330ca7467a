// Package daemontest starts a daemon in this process, on a config text,
// usually against the Mews simulator (mews/mewstest): the one way the
// daemon's tests, the benchmarks and the demo run one.
package daemontest

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/config"
)

// Daemon is a daemon running in a goroutine of its own.
type Daemon struct {
	*daemon.Daemon
	cancel context.CancelFunc
	done   chan error

	once sync.Once
	err  error
}

// Start parses text (a whole config file; secrets inline, no environment)
// and runs a daemon on it until Stop.
func Start(text string, deps daemon.Deps) (*Daemon, error) {
	cfg, _, err := config.Parse("test.toml", []byte(text), func(string) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	d, err := daemon.New(cfg, deps)
	if err != nil {
		return nil, fmt.Errorf("daemon.New: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Daemon{Daemon: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	return r, nil
}

// Stop ends Run, waits for it and returns its error; later calls return
// the same.
func (r *Daemon) Stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// Done receives Run's error if the daemon stops on its own; after Stop it
// receives nothing.
func (r *Daemon) Done() <-chan error { return r.done }

// Log collects a daemon's log lines for tests to read, and says when one
// was written, so a test waits on the log without polling.
type Log struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

// NewLog returns an empty log.
func NewLog() *Log { return &Log{changed: make(chan struct{}, 1)} }

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return n, err
}

// String returns everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Changed receives a value after a write.
func (l *Log) Changed() <-chan struct{} { return l.changed }
