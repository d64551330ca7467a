package fias

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/internal/serialport"
)

// stream is what the link speaks FIAS over: a TCP connection or a serial
// port. The framing and the link protocol are the same on both.
type stream interface {
	io.ReadWriteCloser
	SetWriteDeadline(time.Time) error
}

// line is where the lock system is reached when the link dials it.
func (l *link) line() serialport.Line {
	return serialport.Line{Address: l.cfg.Address, Settings: l.cfg.Settings}
}

// dial opens the link's stream to the lock system: a TCP connection to
// address, or the serial port.
func (l *link) dial(ctx context.Context) (stream, error) {
	if l.cfg.Serial != "" && serialport.Held(l.cfg.Serial) {
		l.failed(fmt.Sprintf("waiting for %s, which another encoder of this daemon has open (after a config reload, the old encoder until it closes)", l.cfg.Serial))
	}
	return l.line().Open(ctx, l.cfg.ConnectTimeout.D())
}

// peer is the lock system's address, or its serial port.
func (l *link) peer() string { return l.line().Peer() }

// dialFailure words why dial failed after waited.
func (l *link) dialFailure(waited time.Duration, err error) string {
	return l.line().Failure(waited, err)
}

// silence words a lock system that has not answered what in waited.
func (l *link) silence(what string, waited time.Duration) string {
	return l.line().Silence("the lock system", what, waited)
}

// notStarted words a stream that ended before the link started.
func (l *link) notStarted(reason string) string {
	if l.cfg.Serial != "" {
		return fmt.Sprintf("%s is open but the link did not start: %s", l.cfg.Serial, reason)
	}
	return fmt.Sprintf("%s accepted the connection but the link did not start: %s", l.cfg.Address, reason)
}
