// Package fiastest is a FIAS lock system for tests: a real TCP peer on the
// loopback interface that plays the lock side of the link, in either role
// (it listens and the driver dials, or it dials the driver's listen
// address), or a peer on any stream such as one end of a pseudo-terminal
// pair standing in for a serial cable; it records every record it receives, and answers key requests the
// way it is told to — including badly.
package fiastest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/fias"
)

// Mode is how the lock answers key requests (KR, KD, KM).
type Mode int

// Modes.
const (
	// ModeOK answers KA with AS=OK and, for KR, one card serial per key in
	// the track data fields $1..$4.
	ModeOK Mode = iota
	// ModeFail answers KA with the status and clear text of SetFailure.
	ModeFail
	// ModeNoisy sends garbage, a frame cut short and an answer split over two
	// writes, then answers as ModeOK does.
	ModeNoisy
	// ModeHalf sends the first half of an answer frame and never the rest.
	ModeHalf
	// ModeNoAnswer leaves key requests unanswered; the link stays alive.
	ModeNoAnswer
	// ModeSilent sends nothing at all, link records included: a lock system
	// that hangs.
	ModeSilent
)

// DefaultFields are the LR field lists a Lock announces unless told
// otherwise.
var DefaultFields = map[string][]string{
	"KR": {"KC", "KT", "RN", "WS", "K#", "G#", "GN", "GF", "GA", "GD", "DT", "DA", "TI"},
	"KD": {"KC", "RN", "WS", "G#", "DA", "TI"},
	"KM": {"KC", "RN", "WS", "G#", "GA", "GD", "DT", "DA", "TI"},
	"KA": {"AS", "CT", "KC", "WS", "G#", "RN", "$1", "$2", "$3", "$4", "DA", "TI"},
}

// Options shape a Lock.
type Options struct {
	// LockFirst makes the lock send LS as soon as a connection is made,
	// instead of waiting for the PMS's.
	LockFirst bool
	// Fields are the LR field lists announced when the PMS sends LS, by
	// record type. Nil announces DefaultFields; an empty map announces none.
	Fields map[string][]string
}

// Lock is a simulated FIAS lock system.
type Lock struct {
	opts Options
	ln   net.Listener
	ctx  context.Context // of a Serve lock, for Attach
	// line is set for a Serve lock: a serial line outlives the link, so
	// LE ends the link but not the stream.
	line   bool
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	cur        *conn
	received   []fias.Record
	changed    chan struct{}
	mode       Mode
	failStatus string
	failText   string
	serial     int
	connects   int
	closed     bool
	delay      time.Duration
	// inFlight counts key requests received and not yet answered; peak is
	// its maximum.
	inFlight, peak int
}

type conn struct {
	io.ReadWriteCloser
	wmu sync.Mutex
}

func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// A stream without deadlines, a pseudo-terminal, takes what a test
	// writes without waiting for the reader.
	if d, ok := c.ReadWriteCloser.(interface{ SetWriteDeadline(time.Time) error }); ok {
		d.SetWriteDeadline(time.Now().Add(5 * time.Second))
	}
	_, err := c.Write(b)
	return err
}

func newLock(opts Options) *Lock {
	if opts.Fields == nil {
		opts.Fields = DefaultFields
	}
	return &Lock{opts: opts, changed: make(chan struct{}), failStatus: "BY", failText: "Encoder busy"}
}

// Listen starts a lock system that accepts the driver's connection on a
// loopback port; see Addr. A new connection replaces the current one.
func Listen(opts Options) (*Lock, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fiastest: listen: %w", err)
	}
	l := newLock(opts)
	l.ln = ln
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.wg.Go(func() { l.serve(ctx, c) })
		}
	})
	return l, nil
}

// Dial starts a lock system that connects to the driver at addr, and
// connects again whenever the connection ends, as real ones do.
func Dial(addr string, opts Options) *Lock {
	l := newLock(opts)
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Go(func() {
		for {
			var d net.Dialer
			if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
				l.serve(ctx, c)
			}
			// A pause before dialling again, like a real lock system's.
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	return l
}

// Serve starts a lock system on a stream that is already open, such as the
// master end of a pseudo-terminal pair whose other end the driver opens as
// its serial port. DropLink closes the stream, as unplugging the cable
// would; Attach gives the lock the next one.
func Serve(rwc io.ReadWriteCloser, opts Options) *Lock {
	l := newLock(opts)
	ctx, cancel := context.WithCancel(context.Background())
	l.ctx, l.cancel, l.line = ctx, cancel, true
	l.Attach(rwc)
	return l
}

// Attach serves rwc as the lock's new connection, replacing the current
// one, for a lock started with Serve.
func (l *Lock) Attach(rwc io.ReadWriteCloser) {
	l.wg.Go(func() { l.serve(l.ctx, rwc) })
}

// Addr is the address a Listen lock accepts connections on.
func (l *Lock) Addr() string {
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Connects counts the connections made so far.
func (l *Lock) Connects() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connects
}

// SetMode sets how key requests are answered from now on.
func (l *Lock) SetMode(m Mode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mode = m
}

// SetFailure sets the AS status and CT clear text of ModeFail answers; an
// empty text leaves CT out. The default is "BY", "Encoder busy".
func (l *Lock) SetFailure(status, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failStatus, l.failText = status, text
}

// SetDelay makes answers to key requests leave d after the request came,
// like a lock system waiting for a card to be presented. Records that arrive
// meanwhile are read and answered as usual.
func (l *Lock) SetDelay(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delay = d
}

// Peak returns the most key requests the lock has had unanswered at once:
// more than 1 means the PMS did not wait for an answer before the next
// request.
func (l *Lock) Peak() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peak
}

// Received returns every record received so far, across connections.
func (l *Lock) Received() []fias.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.received)
}

// Wait blocks until cond holds for the records received so far, or ctx is
// done. cond is checked again after every record and connection change.
func (l *Lock) Wait(ctx context.Context, cond func(received []fias.Record) bool) error {
	for {
		l.mu.Lock()
		recs, changed := slices.Clone(l.received), l.changed
		l.mu.Unlock()
		if cond(recs) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fiastest: waiting: %w", ctx.Err())
		}
	}
}

// Count returns how many records of type typ are in recs; a helper for Wait
// conditions.
func Count(recs []fias.Record, typ string) int {
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}

// Last returns the last record of type typ in recs, and whether there is one.
func Last(recs []fias.Record, typ string) (fias.Record, bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Type == typ {
			return recs[i], true
		}
	}
	return fias.Record{}, false
}

// Send writes a record on the current connection.
func (l *Lock) Send(r fias.Record) error {
	return l.SendRaw(r.AppendFrame(nil))
}

// SendRaw writes bytes as they are on the current connection.
func (l *Lock) SendRaw(b []byte) error {
	l.mu.Lock()
	c := l.cur
	l.mu.Unlock()
	if c == nil {
		return fmt.Errorf("fiastest: no connection")
	}
	return c.write(b)
}

// DropLink closes the current connection without LE, as a crash or a
// network fault would.
func (l *Lock) DropLink() {
	l.mu.Lock()
	c := l.cur
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Close stops the lock and closes its connection.
func (l *Lock) Close() error {
	l.mu.Lock()
	l.closed = true
	c := l.cur
	l.mu.Unlock()
	l.cancel()
	if l.ln != nil {
		l.ln.Close()
	}
	if c != nil {
		c.Close()
	}
	l.wg.Wait()
	return nil
}

func (l *Lock) signal() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// serve runs one connection until it ends.
func (l *Lock) serve(ctx context.Context, nc io.ReadWriteCloser) {
	c := &conn{ReadWriteCloser: nc}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		nc.Close()
		return
	}
	old := l.cur
	l.cur = c
	l.connects++
	l.signal()
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	defer func() {
		nc.Close()
		l.mu.Lock()
		if l.cur == c {
			l.cur = nil
		}
		l.signal()
		l.mu.Unlock()
	}()

	if l.opts.LockFirst {
		if c.write(stamp(fias.NewRecord("LS")).AppendFrame(nil)) != nil {
			return
		}
	}
	fr := fias.NewFrameReader(nc)
	for {
		b, err := fr.Next()
		if err != nil {
			return
		}
		r, err := fias.DecodeRecord(b)
		if err != nil {
			continue
		}
		l.mu.Lock()
		l.received = append(l.received, r)
		l.signal()
		mode, delay := l.mode, l.delay
		key := r.Type == "KR" || r.Type == "KD" || r.Type == "KM"
		if key {
			l.inFlight++
			l.peak = max(l.peak, l.inFlight)
		}
		l.mu.Unlock()
		switch {
		case r.Type == "LE" && !l.line:
			return
		case r.Type == "LE":
		case mode == ModeSilent || key && mode == ModeNoAnswer:
		case key && delay > 0:
			l.wg.Go(func() {
				t := time.NewTimer(delay)
				defer t.Stop()
				select {
				case <-ctx.Done():
				case <-t.C:
					l.answerKey(c, r, mode)
				}
			})
		case key:
			if l.answerKey(c, r, mode) != nil {
				return
			}
		default:
			if l.answer(c, r) != nil {
				return
			}
		}
	}
}

// answer answers link records.
func (l *Lock) answer(c *conn, r fias.Record) error {
	switch r.Type {
	case "LS":
		var out []byte
		out = stamp(fias.NewRecord("LD", "V#", "sim-1.0", "IF", "LK")).AppendFrame(out)
		for _, rt := range slices.Sorted(maps.Keys(l.opts.Fields)) {
			fl := ""
			for _, id := range l.opts.Fields[rt] {
				fl += id
			}
			out = fias.NewRecord("LR", "RI", rt, "FL", fl).AppendFrame(out)
		}
		out = stamp(fias.NewRecord("LA")).AppendFrame(out)
		return c.write(out)
	}
	return nil
}

func (l *Lock) answerKey(c *conn, r fias.Record, mode Mode) error {
	// Answered before the answer leaves: the PMS may send its next request
	// the moment it reads this one.
	l.mu.Lock()
	l.inFlight--
	l.mu.Unlock()
	echo := func(ka fias.Record) fias.Record {
		for _, id := range []string{"KC", "WS", "G#", "RN"} {
			if v, ok := r.Lookup(id); ok {
				ka.Fields = append(ka.Fields, fias.Field{ID: id, Value: v})
			}
		}
		return ka
	}
	if mode == ModeFail {
		l.mu.Lock()
		ka := fias.NewRecord("KA", "AS", l.failStatus)
		if l.failText != "" {
			ka.Fields = append(ka.Fields, fias.Field{ID: "CT", Value: l.failText})
		}
		l.mu.Unlock()
		return c.write(stamp(echo(ka)).AppendFrame(nil))
	}
	if mode == ModeHalf {
		return c.write([]byte("\x02KA|ASOK|KC"))
	}
	ka := echo(fias.NewRecord("KA", "AS", "OK"))
	if r.Type == "KR" {
		n := 1
		fmt.Sscan(r.Get("K#"), &n)
		for i := range min(max(n, 1), 4) {
			ka.Fields = append(ka.Fields, fias.Field{ID: fmt.Sprintf("$%d", i+1), Value: l.nextSerial()})
		}
	}
	frame := stamp(ka).AppendFrame(nil)
	if mode == ModeNoisy {
		// Noise between frames, then a frame the sender gave up on, then the
		// answer in two pieces.
		if err := c.write([]byte("noise\x03\r\n\x02KA|ASBY|KC")); err != nil {
			return err
		}
		half := len(frame) / 2
		if err := c.write(frame[:half]); err != nil {
			return err
		}
		return c.write(frame[half:])
	}
	return c.write(frame)
}

func (l *Lock) nextSerial() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.serial++
	return fmt.Sprintf("SIM%06d", l.serial)
}

func stamp(r fias.Record) fias.Record {
	now := time.Now()
	r.Fields = append(r.Fields, fias.Field{ID: "DA", Value: now.Format("060102")}, fias.Field{ID: "TI", Value: now.Format("150405")})
	return r
}
