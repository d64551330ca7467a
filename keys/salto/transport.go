package salto

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/internal/serialport"
	"github.com/mews-keyd/mews-keyd/keys/netcause"
)

// stream is what an exchange runs over: a TCP connection or the serial
// port. The framing and the protocol are the same on both.
type stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// connect opens the interface for one exchange: a TCP connection to
// address, within timeout unless it is zero, or the serial port. Opening
// the port per exchange, as the TCP clients connect per exchange, leaves it
// free between requests for Salto's own tools, and a port that vanished is
// simply opened again by the next request.
func (e *Encoder) connect(ctx context.Context, timeout time.Duration) (stream, error) {
	if e.cfg.Serial != "" {
		return openPort(ctx, e.cfg.Settings)
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", e.cfg.Address)
}

// portTurns gives the encoders of this process that share a serial port
// the port in turn, a request at a time: an encoder and its successor do
// while a config reload drains the old one, and a port open for one of them
// would refuse the other as busy.
var portTurns = struct {
	sync.Mutex
	byName map[string]chan struct{}
}{byName: map[string]chan struct{}{}}

func portTurn(name string) chan struct{} {
	portTurns.Lock()
	defer portTurns.Unlock()
	turn, ok := portTurns.byName[name]
	if !ok {
		turn = make(chan struct{}, 1)
		portTurns.byName[name] = turn
	}
	return turn
}

// openPort waits, within ctx, for the port's turn and opens it; closing
// the port ends the turn.
func openPort(ctx context.Context, s serialport.Settings) (stream, error) {
	turn := portTurn(s.Serial)
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p, err := serialport.Open(s)
	if err != nil {
		<-turn
		return nil, err
	}
	return &turnPort{Port: p, turn: turn}, nil
}

// turnPort is an open port that holds its turn until closed.
type turnPort struct {
	*serialport.Port
	turn chan struct{}
	once sync.Once
}

func (p *turnPort) Close() error {
	err := p.Port.Close()
	p.once.Do(func() { <-p.turn })
	return err
}

// peer is the interface's address, or its serial port.
func (e *Encoder) peer() string {
	if e.cfg.Serial != "" {
		return e.cfg.Serial
	}
	return e.cfg.Address
}

// connectFailure words why connect failed after waited. A port's error
// already says what stands in the way: busy, missing, or the permission
// to get.
func (e *Encoder) connectFailure(waited time.Duration, err error) string {
	if e.cfg.Serial != "" {
		return err.Error()
	}
	_, why := netcause.Explain(e.cfg.Address, waited, err)
	return why
}

// silence words an interface that has not answered what in waited.
func (e *Encoder) silence(what string, waited time.Duration) string {
	if e.cfg.Serial != "" {
		return fmt.Sprintf("%s is open but Salto did not answer %s in %s (is the cable in, and are baud, data_bits, parity and stop_bits Salto's?)",
			e.cfg.Serial, what, netcause.Round(waited))
	}
	return netcause.Silence(e.cfg.Address, what, waited)
}
