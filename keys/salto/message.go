package salto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mews-keyd/mews-keyd/keys/internal/ascii"
)

// Control bytes. ENQ asks "are you ready?"; ACK and NAK answer it, and
// answer every message.
const (
	ENQ byte = 0x05
	ACK byte = 0x06
	NAK byte = 0x15
)

// Frame bytes: a message is STX, a separator before every field and after
// the last, ETX, and a check byte (the LRC, or noLRC).
const (
	stx           = 0x02
	etx           = 0x03
	separator     = 0xb3
	separatorText = "\xb3"
	// noLRC in place of the check byte means "not checked".
	noLRC = 0x0d
)

// MaxFrame is the largest message a Reader accepts, STX to ETX. Real
// messages are a few hundred bytes; a bigger one is a confused peer, and
// refusing it keeps one bad sender from growing our memory without bound.
const MaxFrame = 4 << 10

// Errors for messages that arrived damaged.
var (
	ErrChecksum  = errors.New("message with a wrong LRC")
	ErrMalformed = errors.New("malformed Salto message")
)

// Message is one message: its fields in wire order. The first is the
// command (CN, CC, CO, ...) or, in an answer, the command echoed or an
// error code. Field values are the bytes as sent; text from Salto may be
// Latin-1.
type Message []string

// Field returns field i, or "" if the message is shorter.
func (m Message) Field(i int) string {
	if i < len(m) {
		return m[i]
	}
	return ""
}

// String returns the fields joined by '|', for logs. Messages carry guest
// names and phone numbers: log them at debug level only.
func (m Message) String() string { return strings.Join(m, "|") }

// AppendFrame appends the message, framed, to dst: with its LRC, or with
// 0x0D ("no LRC") when lrc is false. Every field goes through ascii.Clean,
// so nothing a guest name holds can break the framing or the fields.
func (m Message) AppendFrame(dst []byte, lrc bool) []byte {
	dst = append(dst, stx)
	start := len(dst)
	for _, f := range m {
		dst = append(dst, separator)
		dst = append(dst, ascii.Clean(f, "")...)
	}
	dst = append(dst, separator, etx)
	if !lrc {
		return append(dst, noLRC)
	}
	return append(dst, checksum(dst[start:]))
}

// checksum is the LRC: the XOR of every byte after STX up to and including
// ETX.
func checksum(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

// DecodeMessage parses what lies between STX and ETX: a separator, then
// fields each followed by a separator. A missing last separator is
// tolerated.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) == 0 || b[0] != separator {
		return nil, fmt.Errorf("%w: no field separator after STX", ErrMalformed)
	}
	body := strings.TrimSuffix(string(b[1:]), separatorText)
	return strings.Split(body, separatorText), nil
}

// Unit is what a Reader returns: one control byte outside a message, or
// one message.
type Unit struct {
	// Control is ENQ, ACK or NAK; zero for a message.
	Control byte
	// Msg is the message, when Control is zero and Err nil.
	Msg Message
	// Checked is true for a message that carried its LRC, false for one
	// with 0x0D in its place.
	Checked bool
	// Err is ErrChecksum or ErrMalformed (or wraps one) for a message that
	// arrived damaged.
	Err error
}

// Reader reads units from a byte stream. It copes with messages split
// across reads and several in one read, skips bytes outside messages that
// are no control byte, and restarts a message at an STX inside one (the
// sender gave up on a half-written message).
type Reader struct {
	r       *bufio.Reader
	frame   []byte
	garbage int
}

// NewReader reads units from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReader(r)}
}

// Garbage returns how many bytes were skipped so far.
func (r *Reader) Garbage() int { return r.garbage }

// Next returns the next unit. An error from the underlying reader ends the
// stream; a message in progress at that point is lost.
func (r *Reader) Next() (Unit, error) {
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			return Unit{}, err
		}
		switch c {
		case ENQ, ACK, NAK:
			return Unit{Control: c}, nil
		case stx:
			return r.message()
		default:
			r.garbage++
		}
	}
}

// message reads the rest of a message whose STX was read.
func (r *Reader) message() (Unit, error) {
	r.frame = r.frame[:0]
	oversize := false
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			return Unit{}, err
		}
		switch {
		case c == stx:
			// A new start: what came before is lost.
			if !oversize {
				r.garbage += 1 + len(r.frame)
			}
			r.frame, oversize = r.frame[:0], false
			continue
		case c == etx:
			check, err := r.r.ReadByte()
			if err != nil {
				return Unit{}, err
			}
			return r.unit(check, oversize), nil
		case oversize:
		case len(r.frame) >= MaxFrame:
			oversize = true
			r.frame = r.frame[:0]
		default:
			r.frame = append(r.frame, c)
		}
	}
}

// unit checks and decodes the frame just read.
func (r *Reader) unit(check byte, oversize bool) Unit {
	if oversize {
		return Unit{Err: fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxFrame)}
	}
	checked := check != noLRC
	if checked && check != checksum(r.frame)^etx {
		return Unit{Err: ErrChecksum}
	}
	m, err := DecodeMessage(r.frame)
	if err != nil {
		return Unit{Err: err}
	}
	return Unit{Msg: m, Checked: checked}
}
