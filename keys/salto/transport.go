package salto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
// simply opened again by the next request. Encoders of this process on the
// same port wait for each other's request to end.
func (e *Encoder) connect(ctx context.Context, timeout time.Duration) (stream, error) {
	if e.cfg.Serial != "" {
		p, err := serialport.Open(ctx, e.cfg.Settings)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", e.cfg.Address)
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
// to get; else the wait for it ran out.
func (e *Encoder) connectFailure(waited time.Duration, err error) string {
	if e.cfg.Serial != "" && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("another encoder of this daemon had %s for all of %s", e.cfg.Serial, netcause.Round(waited))
	}
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
