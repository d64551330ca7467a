package fias

import (
	"bufio"
	"io"
)

// Frame delimiters: every FIAS record travels as STX record ETX.
const (
	stx = 0x02
	etx = 0x03
)

// MaxFrame is the largest record a FrameReader accepts. Real records are a
// few hundred bytes; anything bigger is a confused peer, and refusing it keeps
// one bad sender from growing our memory without bound.
const MaxFrame = 8 << 10

// FrameReader extracts STX…ETX frames from a byte stream. It copes with
// frames split across reads and with several frames in one read, skips bytes
// between frames, restarts a frame at an STX that arrives inside one (the
// sender gave up on a half-written record), and drops frames longer than
// MaxFrame.
type FrameReader struct {
	r     *bufio.Reader
	frame []byte
	stats FrameStats
}

// FrameStats counts what a FrameReader threw away.
type FrameStats struct {
	// Garbage is the number of bytes outside frames, including the bytes of
	// frames cut short by a new STX.
	Garbage int
	// Oversize is the number of frames dropped for exceeding MaxFrame.
	Oversize int
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: bufio.NewReader(r)}
}

// Next returns the content of the next frame, without STX and ETX. The slice
// is valid until the next call. An error from the underlying reader ends the
// stream; a frame in progress at that point is lost.
func (f *FrameReader) Next() ([]byte, error) {
	in, oversize := false, false
	f.frame = f.frame[:0]
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch {
		case c == stx:
			if in && !oversize {
				f.stats.Garbage += 1 + len(f.frame)
			}
			in, oversize = true, false
			f.frame = f.frame[:0]
		case !in:
			f.stats.Garbage++
		case c == etx:
			in = false
			if !oversize {
				return f.frame, nil
			}
		case oversize:
		case len(f.frame) >= MaxFrame:
			oversize = true
			f.stats.Oversize++
			f.frame = f.frame[:0]
		default:
			f.frame = append(f.frame, c)
		}
	}
}

// Stats returns what has been discarded so far.
func (f *FrameReader) Stats() FrameStats { return f.stats }
