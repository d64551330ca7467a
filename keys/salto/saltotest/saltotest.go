// Package saltotest is a Salto PC interface for tests: a real TCP server on
// the loopback interface, or a peer on any stream such as one end of a
// pseudo-terminal pair standing in for a serial cable, that speaks the PMS Industry Standard protocol —
// ACK or NAK for every message, LRC checked (0x0D accepted for "no LRC"),
// ENQ answered — records every message it receives with its fields, and
// answers the way it is told to, badly included.
package saltotest

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/salto"
)

// Options shape an Interface.
type Options struct {
	// NoLRC sends 0x0D in place of the LRC, as interfaces set up without
	// checksums do.
	NoLRC bool
}

// Record is one well-formed message received.
type Record struct {
	Msg salto.Message
	At  time.Time
	// Refused is true when it was answered NAK (SetNAK, SetBusy).
	Refused bool
	// Checked is true when the message carried an LRC, false when 0x0D
	// stood in for it.
	Checked bool
}

// Command is the record's command without its card count: "CN" for "CN2".
func (r Record) Command() string { return strings.TrimRight(r.Msg.Field(0), "0123456789") }

// Interface is a simulated Salto PC interface.
type Interface struct {
	opts   Options
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	conns      map[io.ReadWriteCloser]struct{}
	received   []Record
	changed    chan struct{}
	mode       Mode
	writes     Writes
	errCode    string
	errText    string
	naks       int
	busy       bool
	delay      time.Duration
	serial     int
	enqs       int
	badFrames  int
	checkedOut map[string]bool
	// inFlight counts messages acknowledged (or about to be) and not yet
	// answered; peak is its maximum.
	inFlight, peak int
}

// Listen starts an interface on a loopback port; see Addr.
func Listen(opts Options) (*Interface, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("saltotest: listen: %w", err)
	}
	s := newInterface(opts)
	s.ln = ln
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	})
	return s, nil
}

// Serve starts an interface on a stream that is already open, such as the
// master end of a pseudo-terminal pair whose other end the driver opens as
// its serial port. Closing the stream pulls the cable; Attach gives the
// interface the next one.
func Serve(rwc io.ReadWriteCloser, opts Options) *Interface {
	s := newInterface(opts)
	s.Attach(rwc)
	return s
}

// Attach serves rwc as well, until it fails or the interface closes.
func (s *Interface) Attach(rwc io.ReadWriteCloser) {
	s.wg.Go(func() { s.serve(rwc) })
}

func newInterface(opts Options) *Interface {
	ctx, cancel := context.WithCancel(context.Background())
	return &Interface{
		opts: opts, ctx: ctx, cancel: cancel,
		conns: map[io.ReadWriteCloser]struct{}{}, changed: make(chan struct{}),
		errCode: "OV", checkedOut: map[string]bool{},
	}
}

// Addr is the "host:port" the interface listens on; empty for one started
// with Serve.
func (s *Interface) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Received returns every well-formed message received so far.
func (s *Interface) Received() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Last returns the last record of recs whose command (without its count) is
// cmd, and whether there is one.
func Last(recs []Record, cmd string) (Record, bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Command() == cmd {
			return recs[i], true
		}
	}
	return Record{}, false
}

// Wait blocks until cond holds for the messages received so far, or ctx is
// done. cond is checked again after every message.
func (s *Interface) Wait(ctx context.Context, cond func([]Record) bool) error {
	for {
		s.mu.Lock()
		recs, changed := slices.Clone(s.received), s.changed
		s.mu.Unlock()
		if cond(recs) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("saltotest: waiting: %w", ctx.Err())
		}
	}
}

// ENQs counts the ENQ bytes received.
func (s *Interface) ENQs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqs
}

// BadFrames counts the messages refused with NAK for a wrong LRC or a
// broken structure.
func (s *Interface) BadFrames() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badFrames
}

// Peak returns the most messages the interface has had in progress at
// once: more than 1 means the PMS did not wait for an answer.
func (s *Interface) Peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// Close stops the interface and closes its connections.
func (s *Interface) Close() error {
	s.cancel()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Interface) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// serve runs one connection until the PMS closes it.
func (s *Interface) serve(c io.ReadWriteCloser) {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	pending := 0
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.inFlight -= pending
		s.mu.Unlock()
	}()
	rd := salto.NewReader(c)
	for {
		u, err := rd.Next()
		if err != nil {
			return
		}
		switch {
		case u.Control == salto.ENQ:
			s.mu.Lock()
			s.enqs++
			reply := salto.ACK
			if s.busy {
				reply = salto.NAK
			}
			s.mu.Unlock()
			if write(c, []byte{reply}) != nil {
				return
			}
		case u.Control != 0:
			// The PMS acknowledges nothing; a stray ACK or NAK is ignored.
		case u.Err != nil:
			s.mu.Lock()
			s.badFrames++
			s.mu.Unlock()
			if write(c, []byte{salto.NAK}) != nil {
				return
			}
		default:
			if !s.message(c, u, &pending) {
				return
			}
		}
	}
}

// message handles one well-formed message; false ends the connection.
func (s *Interface) message(c io.ReadWriteCloser, u salto.Unit, pending *int) bool {
	m := u.Msg
	s.mu.Lock()
	refuse := s.busy || s.naks > 0
	if s.naks > 0 {
		s.naks--
	}
	s.received = append(s.received, Record{Msg: m, At: time.Now(), Refused: refuse, Checked: u.Checked})
	s.signal()
	mode, writes, delay := s.mode, s.writes, s.delay
	if !refuse && mode != ModeNoAck && mode != ModeClose {
		s.inFlight++
		*pending++
		s.peak = max(s.peak, s.inFlight)
	}
	s.mu.Unlock()
	switch {
	case refuse:
		return write(c, []byte{salto.NAK}) == nil
	case mode == ModeNoAck:
		return true
	case mode == ModeClose:
		return false
	}
	if writes != WritesCoalesced && mode != ModeAnswerOnly {
		if write(c, []byte{salto.ACK}) != nil {
			return false
		}
	}
	if mode == ModeNoAnswer {
		return true
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-s.ctx.Done():
			return false
		case <-t.C:
		}
	}
	// Out of flight before the answer leaves: the PMS may send its next
	// message the moment it reads this one.
	s.mu.Lock()
	s.inFlight--
	*pending--
	s.mu.Unlock()
	if mode == ModeAckClose {
		return false
	}
	out := s.frame(m, mode)
	if writes == WritesCoalesced {
		out = append([]byte{salto.ACK}, out...)
	}
	if writes == WritesSplit {
		for i := range out {
			if write(c, out[i:i+1]) != nil {
				return false
			}
		}
		return true
	}
	return write(c, out) == nil
}

func write(c io.Writer, b []byte) error {
	// A stream without deadlines, a pseudo-terminal, takes what a test
	// writes without waiting for the reader.
	if d, ok := c.(interface{ SetWriteDeadline(time.Time) error }); ok {
		d.SetWriteDeadline(time.Now().Add(5 * time.Second))
	}
	_, err := c.Write(b)
	return err
}
