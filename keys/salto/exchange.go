package salto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/netcause"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

const (
	// maxTries is how often a message is sent before NAKs make us give up,
	// and how often ENQ asks whether the interface is ready again.
	maxTries = 3
	// enqPause separates an ENQ that got NAK from the next one.
	enqPause = 200 * time.Millisecond
)

// send delivers m on a connection of its own: the message, ACK (on NAK,
// ENQ until ACK and the message again), then the answer. It returns the
// answer unread; its errors say whether Salto had accepted the message.
func (e *Encoder) send(ctx context.Context, m Message) (Message, error) {
	if ctx.Err() != nil {
		return nil, wire.NotStarted(ctx)
	}
	began := time.Now()
	conn, err := e.connect(ctx, e.cfg.ConnectTimeout.D())
	if err != nil {
		if ctx.Err() != nil {
			return nil, wire.NotStarted(ctx)
		}
		if e.cfg.Serial != "" {
			// Busy, missing or not permitted: the port's error says which,
			// in words, and keeps the library's cause.
			return nil, &keys.Error{Msg: err.Error(), Err: errors.Unwrap(err)}
		}
		return nil, &keys.Error{Msg: "Salto interface not answering", Err: err}
	}
	defer conn.Close()
	// Closing is what ends a read when ctx does; unlike a deadline it cannot
	// be undone by the next SetReadDeadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	x := exchange{conn: conn, rd: NewReader(conn), wait: e.cfg.ConnectTimeout.D()}
	defer func() {
		if n := x.rd.Garbage(); n > 0 {
			e.log.Warn().Int("garbage_bytes", n).Msg("Salto sent bytes that were not part of a message")
		}
	}()

	frame := m.AppendFrame(nil, e.cfg.LRC)
	for try := 1; ; try++ {
		u, err := x.offer(frame)
		if err != nil {
			return nil, x.unacknowledged(ctx, err)
		}
		switch {
		case u.Control == ACK:
			return x.answer(ctx, began)
		case u.Control == NAK:
			if try == maxTries {
				return nil, notReady()
			}
			if err := x.ready(ctx); err != nil {
				return nil, err
			}
		case u.Err != nil:
			return nil, damaged(u.Err)
		default:
			// An answer without ACK: Salto did the work all the same.
			return u.Msg, nil
		}
	}
}

func notReady() error { return keys.Failf("Salto interface not ready") }

func damaged(err error) error {
	return &keys.Error{Msg: "Salto's answer arrived damaged", MaybeCut: true, Err: err}
}

// exchange is one connection to the interface, or one opening of its
// serial port.
type exchange struct {
	conn stream
	rd   *Reader
	wait time.Duration // for each ACK or NAK
}

// offer writes frame and returns the first ACK, NAK or message that
// follows within the wait.
func (x *exchange) offer(frame []byte) (Unit, error) {
	if err := x.write(frame); err != nil {
		return Unit{}, err
	}
	x.conn.SetReadDeadline(time.Now().Add(x.wait))
	for {
		u, err := x.rd.Next()
		if err != nil || u.Control != ENQ {
			return u, err
		}
	}
}

func (x *exchange) write(b []byte) error {
	x.conn.SetWriteDeadline(time.Now().Add(x.wait))
	_, err := x.conn.Write(b)
	return err
}

// ready sends ENQ until the interface answers ACK, at most maxTries times.
func (x *exchange) ready(ctx context.Context) error {
	for try := 1; ; try++ {
		u, err := x.offer([]byte{ENQ})
		if err != nil {
			return x.unacknowledged(ctx, err)
		}
		if u.Control == ACK {
			return nil
		}
		if try == maxTries {
			return notReady()
		}
		t := time.NewTimer(enqPause)
		select {
		case <-ctx.Done():
			t.Stop()
			return wire.NotStarted(ctx)
		case <-t.C:
		}
	}
}

// unacknowledged words err, which ended the exchange before Salto accepted
// the message: no key was made.
func (x *exchange) unacknowledged(ctx context.Context, err error) error {
	var msg string
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		msg = "timed out before Salto interface acknowledged the request; no key was made"
		err = ctx.Err()
	case ctx.Err() != nil:
		msg = "cancelled before Salto interface acknowledged the request; no key was made"
		err = ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		msg = fmt.Sprintf("Salto interface did not acknowledge the request within %s; no key was made", x.wait)
	case errors.Is(err, io.EOF):
		msg = "Salto interface closed the connection without acknowledging the request; no key was made"
	default:
		msg = "Salto interface connection failed before it acknowledged the request; no key was made"
	}
	return &keys.Error{Msg: msg, Err: err}
}

// answer waits, for as long as ctx allows, for the answer to a message
// Salto acknowledged: from here on a card may have been made.
func (x *exchange) answer(ctx context.Context, began time.Time) (Message, error) {
	x.conn.SetReadDeadline(time.Time{})
	for {
		u, err := x.rd.Next()
		switch {
		case err == nil && u.Err != nil:
			return nil, damaged(u.Err)
		case err == nil && u.Control == 0:
			return u.Msg, nil
		case err == nil:
			// A stray control byte: the answer is still to come.
		case ctx.Err() != nil:
			return nil, wire.NoAnswer(ctx, "Salto", began)
		default:
			return nil, &keys.Error{Msg: "Salto interface closed the connection before answering", MaybeCut: true, Err: err}
		}
	}
}

// probe asks the interface whether it is ready, within ctx and the
// connect timeout.
func (e *Encoder) probe(ctx context.Context) (ok bool, detail string) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ConnectTimeout.D())
	defer cancel()
	const silent = "Salto interface not answering: "
	addr := e.peer()
	began := time.Now()
	conn, err := e.connect(ctx, 0)
	if err != nil {
		return false, silent + e.connectFailure(time.Since(began), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	x := exchange{conn: conn, rd: NewReader(conn), wait: e.cfg.ConnectTimeout.D()}
	asked := time.Now()
	u, err := x.offer([]byte{ENQ})
	switch {
	case err != nil && (ctx.Err() != nil || netcause.IsTimeout(err)):
		return false, silent + e.silence("ENQ", time.Since(asked))
	case err != nil:
		return false, fmt.Sprintf("%s%s closed the connection without answering ENQ (%v)", silent, addr, err)
	case u.Control == ACK:
		return true, "Salto interface ready"
	case u.Control == NAK:
		// Reachable, and busy with something: a card cut at Salto's own
		// station, say. It will take our requests again.
		return true, "Salto interface busy"
	}
	return false, "Salto interface answers ENQ with neither ACK nor NAK"
}
