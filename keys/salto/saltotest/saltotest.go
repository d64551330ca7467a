// Package saltotest is a Salto PC interface for tests: a real TCP server on
// the loopback interface that speaks the PMS Industry Standard protocol —
// ACK or NAK for every message, LRC checked (0x0D accepted for "no LRC"),
// ENQ answered — records every message it receives with its fields, and
// answers the way it is told to, badly included.
package saltotest

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/salto"
)

// Mode is how the interface answers the messages it does not NAK.
type Mode int

// Modes.
const (
	// ModeOK sends ACK, then the answer: the command and the encoder (or
	// phone) echoed, followed by card serials as the message asked.
	ModeOK Mode = iota
	// ModeError sends ACK, then the error of SetError.
	ModeError
	// ModeNoAck reads the message and sends nothing at all.
	ModeNoAck
	// ModeNoAnswer sends ACK and never an answer, as when nobody presents a
	// card and the interface has no timeout of its own.
	ModeNoAnswer
	// ModeBadLRC sends ACK, then the ModeOK answer with a wrong LRC.
	ModeBadLRC
	// ModeGarbage sends ACK, then bytes that are no message.
	ModeGarbage
	// ModeClose closes the connection when a message arrives, without ACK.
	ModeClose
	// ModeAckClose sends ACK, then closes the connection without answering.
	ModeAckClose
	// ModeAnswerOnly sends the ModeOK answer without an ACK before it.
	ModeAnswerOnly
)

// Writes is how answers are cut into TCP writes.
type Writes int

// Write styles.
const (
	// WritesNormal sends ACK and the answer in a write each.
	WritesNormal Writes = iota
	// WritesSplit sends the answer one byte per write.
	WritesSplit
	// WritesCoalesced holds ACK back and sends it with the answer in one
	// write; with a delay set the ACK is late by that much.
	WritesCoalesced
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
	conns      map[net.Conn]struct{}
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
	ctx, cancel := context.WithCancel(context.Background())
	s := &Interface{
		opts: opts, ln: ln, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, changed: make(chan struct{}),
		errCode: "OV", checkedOut: map[string]bool{},
	}
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

// Addr is the "host:port" the interface listens on.
func (s *Interface) Addr() string { return s.ln.Addr().String() }

// SetMode sets how messages are answered from now on.
func (s *Interface) SetMode(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

// SetError sets the answer of ModeError: an error code such as "EP", and
// for "EG" the interface's own text. The default is "OV".
func (s *Interface) SetError(code, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errCode, s.errText = code, text
}

// SetNAK makes the interface answer the next n messages with NAK.
func (s *Interface) SetNAK(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.naks = n
}

// SetBusy makes the interface answer ENQ and every message with NAK, as
// one busy with a previous task does.
func (s *Interface) SetBusy(busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy = busy
}

// SetDelay makes the answer leave d after the ACK, like an encoder waiting
// for a card.
func (s *Interface) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetWrites sets how answers are cut into writes.
func (s *Interface) SetWrites(w Writes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = w
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
	s.ln.Close()
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
func (s *Interface) serve(c net.Conn) {
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
func (s *Interface) message(c net.Conn, u salto.Unit, pending *int) bool {
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

// frame is the answer to m in the given mode, framed.
func (s *Interface) frame(m salto.Message, mode Mode) []byte {
	if mode == ModeGarbage {
		return []byte("\x00garbage\x7f\x02not a Salto message\x03\x0d")
	}
	out := s.answer(m, mode).AppendFrame(nil, !s.opts.NoLRC)
	if mode == ModeBadLRC {
		out[len(out)-1] ^= 0xff
	}
	return out
}

// answer decides what the interface says to m.
func (s *Interface) answer(m salto.Message, mode Mode) salto.Message {
	cmd, count, ok := parseCommand(m.Field(0))
	if !ok || !wellFormed(cmd, m) {
		return salto.Message{"ES"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if mode == ModeError {
		a := salto.Message{s.errCode, m.Field(1)}
		if s.errCode == "EG" {
			a = append(a, s.errText)
		}
		return a
	}
	switch cmd {
	case "CO":
		s.checkedOut[m.Field(2)] = true
		return salto.Message{m.Field(0), m.Field(1)}
	case "CNM", "CCM":
		return salto.Message{m.Field(0), m.Field(1)}
	}
	rooms := m[3:7]
	for _, r := range rooms {
		if r == "" {
			continue
		}
		if cmd == "CC" && s.checkedOut[r] {
			return salto.Message{"EA", m.Field(1)}
		}
		if cmd == "CN" {
			delete(s.checkedOut, r)
		}
	}
	a := salto.Message{m.Field(0), m.Field(1)}
	switch m.Field(15) {
	case "1":
		s.serial += count
		a = append(a, serial(s.serial))
	case "2":
		for range count {
			s.serial++
			a = append(a, serial(s.serial))
		}
	}
	return a
}

func serial(n int) string { return fmt.Sprintf("SN%06d", n) }

// parseCommand splits "CN2" into "CN" and 2; a command without a count
// is for one card.
func parseCommand(f string) (cmd string, count int, ok bool) {
	cmd = strings.TrimRight(f, "0123456789")
	count = 1
	if n := f[len(cmd):]; n != "" {
		var err error
		if count, err = strconv.Atoi(n); err != nil || count < 1 {
			return "", 0, false
		}
	}
	switch cmd {
	case "CN", "CC", "CA", "CO", "CNM", "CCM":
		return cmd, count, true
	}
	return "", 0, false
}

var (
	phone    = regexp.MustCompile(`^(\+|00)[0-9]{6,15}$`)
	dateLong = regexp.MustCompile(`^[0-9]{10}$`)
)

// wellFormed checks the fields of m as Salto would, before it answers ES.
func wellFormed(cmd string, m salto.Message) bool {
	switch cmd {
	case "CO":
		return len(m) == 3 && m[1] == "0" && room(m[2])
	case "CNM", "CCM":
		return len(m) == 15 && phone.MatchString(m[1]) && rooms(m[2:6]) &&
			date(m[8]) && date(m[9]) && len(m[14]) <= 256
	}
	return (len(m) == 16 || len(m) == 17) && m[1] != "" && strings.Contains("ERT", m[2]) && len(m[2]) == 1 &&
		rooms(m[3:7]) && date(m[9]) && date(m[10]) && len(m[11]) <= 24 && strings.Contains("012", m[15]) && len(m[15]) == 1
}

// rooms: the first is set, none is longer than 24 characters.
func rooms(rs []string) bool {
	if rs[0] == "" {
		return false
	}
	for _, r := range rs {
		if len(r) > 24 {
			return false
		}
	}
	return true
}

func room(r string) bool { return r != "" && len(r) <= 24 }

// date accepts hhmmDDMMYY and hhDDMMYY.
func date(d string) bool {
	layout := "15020106"
	if dateLong.MatchString(d) {
		layout = "1504020106"
	}
	_, err := time.Parse(layout, d)
	return err == nil
}

func write(c net.Conn, b []byte) error {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write(b)
	return err
}
