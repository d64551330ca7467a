package serialport

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/netcause"
)

// Stream is what a lock protocol runs over: a TCP connection or a serial
// port; the framing is the same on both.
type Stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Line is where a lock system is reached: its serial port when Serial is
// set, else TCP to Address. It says in one place, for every driver, how to
// open it and how to word what went wrong.
type Line struct {
	Address string
	Settings
}

// Open opens the line: the serial port, or a TCP connection within
// timeout (none when zero).
func (l Line) Open(ctx context.Context, timeout time.Duration) (Stream, error) {
	if l.Serial != "" {
		p, err := Open(ctx, l.Settings)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", l.Address)
}

// Peer names the other end: the port or the address.
func (l Line) Peer() string {
	if l.Serial != "" {
		return l.Serial
	}
	return l.Address
}

// Failure words why Open failed after waited. A port's error already says
// what stands in the way: busy, missing, or the permission to get.
func (l Line) Failure(waited time.Duration, err error) string {
	if l.Serial != "" {
		return err.Error()
	}
	_, why := netcause.Explain(l.Address, waited, err)
	return why
}

// Silence words a peer (who: "the lock system", "Salto") that has not
// answered what in waited.
func (l Line) Silence(who, what string, waited time.Duration) string {
	if l.Serial != "" {
		return fmt.Sprintf("%s is open but %s did not answer %s in %s (is the cable in, and are baud, data_bits, parity and stop_bits %s's?)",
			l.Serial, who, what, netcause.Round(waited), who)
	}
	return netcause.Silence(l.Address, what, waited)
}
