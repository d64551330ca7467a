package fias

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/internal/serialport"
	"github.com/mews-keyd/mews-keyd/keys/netcause"
)

// stream is what the link speaks FIAS over: a TCP connection or a serial
// port. The framing and the link protocol are the same on both.
type stream interface {
	io.ReadWriteCloser
	SetWriteDeadline(time.Time) error
}

// dial opens the link's stream to the lock system: a TCP connection to
// address, or the serial port.
func (l *link) dial(ctx context.Context) (stream, error) {
	if l.cfg.Serial != "" {
		if serialport.Held(l.cfg.Serial) {
			l.failed(fmt.Sprintf("waiting for %s, which another encoder of this daemon has open (after a config reload, the old encoder until it closes)", l.cfg.Serial))
		}
		p, err := serialport.Open(ctx, l.cfg.Settings)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	d := net.Dialer{Timeout: l.cfg.ConnectTimeout.D()}
	return d.DialContext(ctx, "tcp", l.cfg.Address)
}

// peer is the lock system's address, or its serial port.
func (l *link) peer() string {
	if l.cfg.Serial != "" {
		return l.cfg.Serial
	}
	return l.cfg.Address
}

// dialFailure words why dial failed after waited. A port's error already
// says what stands in the way: busy, missing, or the permission to get.
func (l *link) dialFailure(waited time.Duration, err error) string {
	if l.cfg.Serial != "" {
		return err.Error()
	}
	_, why := netcause.Explain(l.cfg.Address, waited, err)
	return why
}

// silence words a lock system that has not answered what in waited.
func (l *link) silence(what string, waited time.Duration) string {
	if l.cfg.Serial != "" {
		return fmt.Sprintf("%s is open but the lock system did not answer %s in %s (is the cable in, and are baud, data_bits, parity and stop_bits the lock system's?)",
			l.cfg.Serial, what, netcause.Round(waited))
	}
	return netcause.Silence(l.cfg.Address, what, waited)
}

// notStarted words a stream that ended before the link started.
func (l *link) notStarted(reason string) string {
	if l.cfg.Serial != "" {
		return fmt.Sprintf("%s is open but the link did not start: %s", l.cfg.Serial, reason)
	}
	return fmt.Sprintf("%s accepted the connection but the link did not start: %s", l.cfg.Address, reason)
}
