package salto_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/mews-keyd/mews-keyd/keys/salto"
)

func TestAppendFrame(t *testing.T) {
	m := salto.Message{"CO", "0", "101"}
	body := "\xb3CO\xb30\xb3101\xb3\x03"
	if got, want := string(m.AppendFrame(nil, true)), "\x02"+body+"\x0f"; got != want {
		t.Errorf("with LRC: %q, want %q", got, want)
	}
	if got, want := string(m.AppendFrame(nil, false)), "\x02"+body+"\x0d"; got != want {
		t.Errorf("without LRC: %q, want %q", got, want)
	}
	// Nothing in a field can break the framing: the separator, frame bytes
	// and other non-ASCII go; letters with diacritics become ASCII.
	dirty := salto.Message{"CN", "Enc\xb31", "Nov\u00e1k\x03\u00b3"}
	if got, want := string(dirty.AppendFrame(nil, false)), "\x02\xb3CN\xb3Enc1\xb3Novak\xb3\x03\x0d"; got != want {
		t.Errorf("cleaned: %q, want %q", got, want)
	}
}

func TestDecodeMessage(t *testing.T) {
	tests := []struct {
		in   string
		want salto.Message
	}{
		{"\xb3CN2\xb3Enc 1\xb32A\xb32B\xb3", salto.Message{"CN2", "Enc 1", "2A", "2B"}},
		{"\xb3CO\xb3\xb3", salto.Message{"CO", ""}},
		{"\xb3EG\xb3Enc 1\xb3Carte d\xe9fectueuse", salto.Message{"EG", "Enc 1", "Carte d\xe9fectueuse"}}, // no trailing separator
		{"\xb3", salto.Message{""}},
	}
	for _, tt := range tests {
		got, err := salto.DecodeMessage([]byte(tt.in))
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("DecodeMessage(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "CN\xb3Enc 1\xb3"} {
		if _, err := salto.DecodeMessage([]byte(in)); !errors.Is(err, salto.ErrMalformed) {
			t.Errorf("DecodeMessage(%q) error = %v, want ErrMalformed", in, err)
		}
	}
}

// unit is a Reader's unit in a form tests compare.
type unit struct {
	control byte
	msg     string
	err     error
	checked bool
}

func readUnits(t *testing.T, r io.Reader) []unit {
	t.Helper()
	rd := salto.NewReader(r)
	var us []unit
	for {
		u, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Next: %v", err)
			}
			return us
		}
		us = append(us, unit{u.Control, u.Msg.String(), u.Err, u.Checked})
	}
}

// chunkReader hands out at most n bytes per Read, like a TCP stream that
// splits a message.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}

func TestReader(t *testing.T) {
	ok := salto.Message{"CN", "Enc 1", "2A"}.AppendFrame(nil, true)
	badLRC := slices.Clone(ok)
	badLRC[len(badLRC)-1] ^= 0xff
	var stream []byte
	stream = append(stream, "junk"...)
	stream = append(stream, salto.ACK)
	stream = append(stream, ok...)
	stream = append(stream, salto.NAK, salto.ENQ)
	stream = append(stream, badLRC...)
	stream = append(stream, salto.Message{"CO", "0"}.AppendFrame(nil, false)...)
	stream = append(stream, "\x02\xb3half a mess"...) // the sender gave up and starts again
	stream = append(stream, salto.Message{"OV"}.AppendFrame(nil, true)...)
	stream = append(stream, "\x02no separator\x03\x0d"...)
	stream = append(stream, '\x02')
	stream = append(stream, bytes.Repeat([]byte{'x'}, salto.MaxFrame+1)...)
	stream = append(stream, '\x03', 0)
	stream = append(stream, salto.ACK)

	want := []unit{
		{control: salto.ACK},
		{msg: "CN|Enc 1|2A", checked: true},
		{control: salto.NAK},
		{control: salto.ENQ},
		{err: salto.ErrChecksum},
		{msg: "CO|0"},
		{msg: "OV", checked: true},
		{err: salto.ErrMalformed},
		{err: salto.ErrMalformed},
		{control: salto.ACK},
	}
	for _, n := range []int{len(stream), 1, 3, 7} {
		got := readUnits(t, &chunkReader{b: stream, n: n})
		if !slices.EqualFunc(got, want, func(a, b unit) bool {
			return a.control == b.control && a.msg == b.msg && errors.Is(a.err, b.err) && (a.err == nil) == (b.err == nil) && a.checked == b.checked
		}) {
			t.Errorf("reads of %d bytes: units\n got %+v\nwant %+v", n, got, want)
		}
	}
}
