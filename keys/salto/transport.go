package salto

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/internal/serialport"
	"github.com/mews-keyd/mews-keyd/keys/netcause"
)

// stream is what an exchange runs over: a TCP connection or the serial
// port. The framing and the protocol are the same on both.
type stream = serialport.Stream

// line is where the Salto interface is reached.
func (e *Encoder) line() serialport.Line {
	return serialport.Line{Address: e.cfg.Address, Settings: e.cfg.Settings}
}

// connect opens the interface for one exchange: a TCP connection to
// address, within timeout unless it is zero, or the serial port. Opening
// the port per exchange, as the TCP clients connect per exchange, leaves it
// free between requests for Salto's own tools, and a port that vanished is
// simply opened again by the next request. Encoders of this process on the
// same port wait for each other's request to end.
func (e *Encoder) connect(ctx context.Context, timeout time.Duration) (stream, error) {
	return e.line().Open(ctx, timeout)
}

// peer is the interface's address, or its serial port.
func (e *Encoder) peer() string { return e.line().Peer() }

// connectFailure words why connect failed after waited; on a serial port
// shared in turn, the wait for it may have run out.
func (e *Encoder) connectFailure(waited time.Duration, err error) string {
	if e.cfg.Serial != "" && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("another encoder of this daemon had %s for all of %s", e.cfg.Serial, netcause.Round(waited))
	}
	return e.line().Failure(waited, err)
}

// silence words an interface that has not answered what in waited.
func (e *Encoder) silence(what string, waited time.Duration) string {
	return e.line().Silence("Salto", what, waited)
}
