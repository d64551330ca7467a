// Package serialport is the RS-232 transport of the lock drivers that can
// reach their lock system over a serial cable (fias, salto): the port's
// settings as they appear in an [[encoders]] table, opening it, and the
// open port as a stream the drivers' protocol code reads and writes as it
// would a TCP connection.
package serialport

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"go.bug.st/serial"
)

// Settings is the serial part of a driver's [[encoders]] table.
type Settings struct {
	// Serial is the port: "/dev/ttyUSB0" on Linux, "COM3" on Windows.
	Serial string `toml:"serial"`
	// Baud is the line speed.
	Baud int `toml:"baud"`
	// DataBits is 5 to 8.
	DataBits int `toml:"data_bits"`
	// Parity is "none", "even" or "odd".
	Parity string `toml:"parity"`
	// StopBits is 1 or 2.
	StopBits int `toml:"stop_bits"`
}

// Defaults are the settings of a lock system's serial interface unless its
// manual says otherwise: 9600 8N1.
func Defaults() Settings {
	return Settings{Baud: 9600, DataBits: 8, Parity: "none", StopBits: 1}
}

// Validate checks the line settings, each error naming its key. It says
// nothing about Serial, which the driver checks against its other
// transports.
func (c *Settings) Validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Baud <= 0 {
		bad("baud", "must be positive, not %d", c.Baud)
	}
	if c.DataBits < 5 || c.DataBits > 8 {
		bad("data_bits", "want 5 to 8, not %d", c.DataBits)
	}
	if _, err := c.parity(); err != nil {
		bad("parity", "%v", err)
	}
	if _, err := c.stopBits(); err != nil {
		bad("stop_bits", "%v", err)
	}
	return errs
}

func (c *Settings) parity() (serial.Parity, error) {
	switch c.Parity {
	case "none", "":
		return serial.NoParity, nil
	case "even":
		return serial.EvenParity, nil
	case "odd":
		return serial.OddParity, nil
	}
	return 0, fmt.Errorf(`want "none", "even" or "odd", not %q`, c.Parity)
}

func (c *Settings) stopBits() (serial.StopBits, error) {
	switch c.StopBits {
	case 1:
		return serial.OneStopBit, nil
	case 2:
		return serial.TwoStopBits, nil
	}
	return 0, fmt.Errorf("want 1 or 2, not %d", c.StopBits)
}

// Port is an open serial port. Its read deadline works as a TCP
// connection's does, so the protocol code needs no second way of waiting.
type Port struct {
	name string
	port serial.Port
	lock *os.File // held for as long as the port is open; nil where ports are not locked
	turn chan struct{}
	once sync.Once

	mu           sync.Mutex
	readDeadline time.Time
}

// turns gives the encoders of this process that use one port the port in
// turn: an encoder and its successor do while a config reload drains the
// old one, and the port open for one would refuse the other as busy.
var turns = struct {
	sync.Mutex
	byName map[string]chan struct{}
}{byName: map[string]chan struct{}{}}

func turn(name string) chan struct{} {
	turns.Lock()
	defer turns.Unlock()
	t, ok := turns.byName[name]
	if !ok {
		t = make(chan struct{}, 1)
		turns.byName[name] = t
	}
	return t
}

// Held reports whether the port is open in this process, so that one who
// waits for it in Open can say whom it waits for.
func Held(name string) bool { return len(turn(name)) > 0 }

// Open opens c.Serial with c's line settings, for this process alone, and
// discards whatever the port had received before. While the port is open
// in this process it waits, within ctx, for its Close. Its errors say what
// stands in the way in words (see Explain).
func Open(ctx context.Context, c Settings) (*Port, error) {
	parity, err := c.parity()
	if err != nil {
		return nil, err
	}
	stop, err := c.stopBits()
	if err != nil {
		return nil, err
	}
	t := turn(c.Serial)
	select {
	case t <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	lock, err := lockPort(c.Serial)
	if err != nil {
		<-t
		return nil, &OpenError{Port: c.Serial, Err: err}
	}
	sp, err := serial.Open(c.Serial, &serial.Mode{BaudRate: c.Baud, DataBits: c.DataBits, Parity: parity, StopBits: stop})
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		<-t
		return nil, &OpenError{Port: c.Serial, Err: err}
	}
	// Bytes left from before are an answer to nobody's request.
	sp.ResetInputBuffer()
	return &Port{name: c.Serial, port: sp, lock: lock, turn: t}, nil
}

// Name is the port's name as configured.
func (p *Port) Name() string { return p.name }

// Read reads what has arrived, waiting for at least a byte until the read
// deadline; past it, it fails with os.ErrDeadlineExceeded.
func (p *Port) Read(b []byte) (int, error) {
	p.mu.Lock()
	deadline := p.readDeadline
	p.mu.Unlock()
	for {
		wait := serial.NoTimeout
		if !deadline.IsZero() {
			wait = time.Until(deadline)
			if wait <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
		}
		if err := p.port.SetReadTimeout(wait); err != nil {
			return 0, err
		}
		// The library returns 0 bytes and no error when its timeout passes.
		if n, err := p.port.Read(b); n > 0 || err != nil {
			return n, err
		}
	}
}

// Write writes b.
func (p *Port) Write(b []byte) (int, error) { return p.port.Write(b) }

// SetReadDeadline bounds the reads that follow; zero means no bound.
func (p *Port) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readDeadline = t
	return nil
}

// SetWriteDeadline does nothing: without flow control, which lock system
// interfaces do not use, the port sends at its baud rate whether or not
// anyone listens, so a write cannot hang the way one to a stalled TCP peer
// can.
func (p *Port) SetWriteDeadline(time.Time) error { return nil }

// Close closes the port, once; a Read waiting on it returns.
func (p *Port) Close() error {
	var err error
	p.once.Do(func() {
		err = p.port.Close()
		if p.lock != nil {
			p.lock.Close()
		}
		<-p.turn
	})
	return err
}

// OpenError is a port that could not be opened.
type OpenError struct {
	Port string
	Err  error
}

func (e *OpenError) Error() string { return "cannot open " + e.Port + ": " + Explain(e.Err) }
func (e *OpenError) Unwrap() error { return e.Err }

// Explain words why a port could not be opened, naming what to change.
func Explain(err error) string {
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortBusy:
			return busy
		case serial.PermissionDenied:
			return denied
		case serial.PortNotFound:
			return missing
		case serial.InvalidSerialPort:
			return "not a serial port (" + pe.Error() + ")"
		}
		return pe.Error()
	}
	switch {
	case errors.Is(err, errBusy):
		return busy
	case errors.Is(err, fs.ErrPermission):
		return denied
	case errors.Is(err, fs.ErrNotExist):
		return missing
	}
	return err.Error()
}

// The causes Explain words; denied names the fixes for both the Linux
// package and Windows, where the port is the only thing that can be denied.
const (
	busy    = "the port is busy: another program has it open (a terminal program, a second mews-keyd, the lock vendor's own software)"
	denied  = deniedWords
	missing = "no such port (is the USB serial adapter plugged in? its name can change when it is plugged in again)"
)

// errBusy is a port another process holds.
var errBusy = errors.New("port busy")
