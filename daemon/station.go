package daemon

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// job is one key cutter command for an encoder.
type job struct {
	cmd  mews.Command
	data *mews.KeyCutterData
	// fresh: the journal does not know the command yet. The intake hands
	// a command over this way only to an idle station, which journals it
	// as accepted and started in one write, while Mews hears Processing.
	fresh bool
	// seen is when the daemon first heard of the command (event or poll),
	// the start of the latency we report.
	seen time.Time
	// io is the time spent so far waiting on Mews and the disk.
	io time.Duration
	// queued is when the job joined its station's queue; waited is how long
	// it stood behind other cards there.
	queued time.Time
	waited time.Duration
}

// station is one configured encoder with its FIFO queue: one card at a time
// per encoder, encoders in parallel.
type station struct {
	name    string
	enc     keys.Encoder
	timeout time.Duration
	log     zerolog.Logger

	mu    sync.Mutex
	queue []job
	wake  chan struct{}
	busy  bool // a job is being encoded
	// current is the command of the job in hand while busy: until it is
	// done, the journal may not know it yet (fresh), so the station does.
	current string
	// retired is set when a reload replaced the station: it finishes its
	// queue, then its worker stops.
	retired bool
	// finished is closed when the station's worker has stopped; the
	// station a reload put in its place starts only then, so one encoder
	// never has two cards in it.
	finished chan struct{}
}

func newStation(name string, enc keys.Encoder, timeout time.Duration, log zerolog.Logger) *station {
	return &station{name: name, enc: enc, timeout: timeout, log: log, wake: make(chan struct{}, 1), finished: make(chan struct{})}
}

// idle reports whether the station has nothing queued or in hand: a job
// handed to it now is taken at once.
func (s *station) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.busy && len(s.queue) == 0 && !s.retired
}

// holds reports whether the command is queued here or in hand.
func (s *station) holds(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy && s.current == id {
		return true
	}
	return slices.ContainsFunc(s.queue, func(j job) bool { return j.cmd.ID == id })
}

func (s *station) enqueue(j job) {
	j.queued = time.Now()
	s.mu.Lock()
	s.queue = append(s.queue, j)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next blocks until a job is queued or ctx ends. Once ctx has ended it
// hands out nothing more, queued jobs included: the journal keeps them
// for the next start.
func (s *station) next(ctx context.Context) (job, bool) {
	for {
		s.mu.Lock()
		if ctx.Err() != nil {
			s.busy = false
			s.mu.Unlock()
			return job{}, false
		}
		if len(s.queue) > 0 {
			j := s.queue[0]
			j.waited = time.Since(j.queued)
			s.queue[0] = job{}
			s.queue = s.queue[1:]
			s.busy, s.current = true, j.cmd.ID
			s.mu.Unlock()
			return j, true
		}
		s.busy = false
		retired := s.retired
		s.mu.Unlock()
		if retired {
			return job{}, false
		}
		select {
		case <-ctx.Done():
			return job{}, false
		case <-s.wake:
		}
	}
}

// withdraw takes a queued job out of the queue; false if it is not queued
// (not ours, or already taken by the worker).
func (s *station) withdraw(id string) (job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, j := range s.queue {
		if j.cmd.ID == id {
			s.queue = slices.Delete(s.queue, i, i+1)
			return j, true
		}
	}
	return job{}, false
}

// depth returns the queued jobs, the one being encoded included.
func (s *station) depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.queue)
	if s.busy {
		n++
	}
	return n
}

// retire lets the station finish what is queued and then stop.
func (s *station) retire() {
	s.mu.Lock()
	s.retired = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close closes the station's encoder.
func (s *station) close() {
	if err := s.enc.Close(); err != nil {
		s.log.Warn().Err(err).Msg("closing encoder")
	}
}

func (s *station) isRetired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retired
}
