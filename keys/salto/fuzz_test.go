package salto_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/mews-keyd/mews-keyd/keys/internal/ascii"
	"github.com/mews-keyd/mews-keyd/keys/salto"
)

// FuzzReader feeds the reader any byte stream: it must not panic, must find
// the same units however the stream is split, and every message it finds
// must frame again into the same message (its fields cleaned).
func FuzzReader(f *testing.F) {
	f.Add(salto.Message{"CN2", "Online Encoder 1", "SN000001", "SN000002"}.AppendFrame([]byte{salto.ACK}, true), uint8(0))
	f.Add([]byte("noise\x15\x05\x06\x02\xb3CO\xb30\xb3\x03\x0d\x02\xb3EG\xb3Enc\xb3Tarjeta da\xf1ada\xb3\x03\x00"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole := readUnits(t, bytes.NewReader(data))
		split := readUnits(t, &chunkReader{b: data, n: 1 + int(chunk%16)})
		if !slices.EqualFunc(whole, split, func(a, b unit) bool {
			return a.control == b.control && a.msg == b.msg && (a.err == nil) == (b.err == nil)
		}) {
			t.Fatalf("units depend on how reads split: %+v vs %+v", whole, split)
		}
		rd := salto.NewReader(bytes.NewReader(data))
		for {
			u, err := rd.Next()
			if err != nil {
				break
			}
			if u.Msg == nil {
				continue
			}
			roundTrip(t, u.Msg)
		}
	})
}

// FuzzDecodeMessage: whatever DecodeMessage accepts holds no separator in a
// field and survives framing and reading back, fields cleaned.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte("\xb3CN\xb3Online Encoder 1\xb3R\xb3101\xb3\xb3\xb3\xb3\xb3\xb31400271126\xb31100291126\xb3mews-keyd\xb3NOVAK JAN\xb3\xb3\xb32\xb3"))
	f.Add([]byte("\xb3TD\xb3"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := salto.DecodeMessage(data)
		if err != nil {
			return
		}
		for i, fl := range m {
			if strings.Contains(fl, "\xb3") {
				t.Fatalf("field %d %q holds the separator", i, fl)
			}
		}
		roundTrip(t, m)
	})
}

func roundTrip(t *testing.T, m salto.Message) {
	t.Helper()
	want := make(salto.Message, len(m))
	for i, fl := range m {
		want[i] = ascii.Clean(fl, "")
	}
	for _, lrc := range []bool{true, false} {
		frame := m.AppendFrame(nil, lrc)
		u, err := salto.NewReader(bytes.NewReader(frame)).Next()
		if err != nil || u.Err != nil || !slices.Equal(u.Msg, want) {
			t.Fatalf("%q framed (lrc %v) as %q reads back as %+v, %v; want %q", m, lrc, frame, u, err, want)
		}
	}
}
