package fias

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t testing.TB, r io.Reader) ([]string, FrameStats) {
	t.Helper()
	fr := NewFrameReader(r)
	var frames []string
	for {
		b, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return frames, fr.Stats()
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		frames = append(frames, string(b))
	}
}

func TestFrameReader(t *testing.T) {
	big := strings.Repeat("x", MaxFrame+1)
	for _, tc := range []struct {
		name  string
		in    string
		want  []string
		stats FrameStats
	}{
		{"one", "\x02LA|\x03", []string{"LA|"}, FrameStats{}},
		{"coalesced", "\x02LS|\x03\x02LA|\x03\x02KA|ASOK|\x03", []string{"LS|", "LA|", "KA|ASOK|"}, FrameStats{}},
		{"garbage between", "ab\x02LS|\x03\r\n\x03\x02LA|\x03zz", []string{"LS|", "LA|"}, FrameStats{Garbage: 7}},
		{"STX restarts a frame", "\x02KA|AS\x02LA|\x03", []string{"LA|"}, FrameStats{Garbage: 6}},
		{"empty frame", "\x02\x03", []string{""}, FrameStats{}},
		{"cut off at the end", "\x02LA|\x03\x02KA|AS", []string{"LA|"}, FrameStats{}},
		{"oversize dropped", "\x02" + big + "\x03\x02LA|\x03", []string{"LA|"}, FrameStats{Oversize: 1}},
		{"largest accepted", "\x02" + big[1:] + "\x03", []string{big[1:]}, FrameStats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tc.in)},
				{"byte by byte", iotest.OneByteReader(strings.NewReader(tc.in))},
				{"halves", iotest.HalfReader(strings.NewReader(tc.in))},
			} {
				got, stats := readAll(t, r.r)
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") || len(got) != len(tc.want) {
					t.Errorf("%s: frames = %q, want %q", r.name, got, tc.want)
				}
				if stats != tc.stats {
					t.Errorf("%s: stats = %+v, want %+v", r.name, stats, tc.stats)
				}
			}
		})
	}
}

// chunkReader returns at most n bytes per Read, like a TCP stream that splits
// records anywhere.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

func FuzzFrameReader(f *testing.F) {
	f.Add([]byte("\x02LS|DA261127|TI101530|\x03"), uint8(3))
	f.Add([]byte("junk\x02KA|ASOK|\x02LA|\x03\x03\x02\x03"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole, _ := readAll(t, bytes.NewReader(data))
		split, _ := readAll(t, &chunkReader{b: data, n: 1 + int(chunk%16)})
		if strings.Join(whole, "\x00") != strings.Join(split, "\x00") || len(whole) != len(split) {
			t.Fatalf("frames depend on how reads split: %q vs %q", whole, split)
		}
		var again []byte
		for _, fr := range whole {
			if len(fr) > MaxFrame || strings.ContainsAny(fr, "\x02\x03") {
				t.Fatalf("bad frame %q", fr)
			}
			again = append(append(append(again, stx), fr...), etx)
		}
		back, stats := readAll(t, bytes.NewReader(again))
		if strings.Join(back, "\x00") != strings.Join(whole, "\x00") || len(back) != len(whole) || stats != (FrameStats{}) {
			t.Fatalf("re-framed frames read back as %q (%+v), want %q", back, stats, whole)
		}
	})
}
