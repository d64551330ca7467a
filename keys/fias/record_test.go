package fias

import (
	"slices"
	"testing"
)

func TestDecodeRecord(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Record
	}{
		{"LA|", Record{Type: "LA"}},
		{"LA", Record{Type: "LA"}},
		{"KA|ASOK|KC1|CT|$1043A|", NewRecord("KA", "AS", "OK", "KC", "1", "CT", "", "$1", "043A")},
		{"KA|ASOK|KC1", NewRecord("KA", "AS", "OK", "KC", "1")},
		{"KA||ASOK||", NewRecord("KA", "AS", "OK")},
		{"LR|RIKR|FLKCKTRNWS|", NewRecord("LR", "RI", "KR", "FL", "KCKTRNWS")},
		{"KA|CTa b\xe9|", NewRecord("KA", "CT", "a b\xe9")},
	} {
		got, err := DecodeRecord([]byte(tc.in))
		if err != nil {
			t.Errorf("DecodeRecord(%q): %v", tc.in, err)
			continue
		}
		if got.Type != tc.want.Type || !slices.Equal(got.Fields, tc.want.Fields) {
			t.Errorf("DecodeRecord(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{"", "L", "LAX", "L |", "KA|A|", "KA|ASOK| x|", "K\x01|"} {
		if r, err := DecodeRecord([]byte(in)); err == nil {
			t.Errorf("DecodeRecord(%q) = %+v, want an error", in, r)
		}
	}
}

func TestAppendFrame(t *testing.T) {
	r := NewRecord("KR", "RN", "0101", "GN", "Dvořák|\x02\x03\x7f\tX", "GF", "")
	want := "\x02KR|RN0101|GNDvorakX|GF|\x03"
	if got := string(r.AppendFrame(nil)); got != want {
		t.Errorf("frame = %q, want %q", got, want)
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"NOVAK":            "NOVAK",
		"Novák":            "Novak",
		"Řehoř Dvořák":     "Rehor Dvorak",
		"Jürgen Groß":      "Jurgen Gross",
		"Ångström Ærø":     "Angstrom AEro",
		"Łukasz Świątek":   "Lukasz Swiatek",
		"Ștefan Țiriac":    "Stefan Tiriac",
		"O’Brien – Smith":  "O'Brien - Smith",
		"王 Li":             " Li",
		"a|b\x02c\x03d\ne": "abcde",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte("KA|ASOK|KC1|WS1|G#1234|$2043A1F22|DA261127|TI101534|"))
	f.Add([]byte("LR|RIKR|FLKCKTRNWSDATIG#GNGAGD|"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecord(data)
		if err != nil {
			return
		}
		if len(r.Type) != 2 {
			t.Fatalf("type %q", r.Type)
		}
		want := Record{Type: r.Type}
		for _, fl := range r.Fields {
			if len(fl.ID) != 2 || !isID([]byte(fl.ID)) {
				t.Fatalf("field id %q", fl.ID)
			}
			want.Fields = append(want.Fields, Field{fl.ID, Clean(fl.Value)})
		}
		frame := r.AppendFrame(nil)
		again, err := DecodeRecord(frame[1 : len(frame)-1])
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", frame, err)
		}
		if again.Type != want.Type || !slices.Equal(again.Fields, want.Fields) {
			t.Fatalf("round trip: %+v, want %+v", again, want)
		}
		if Clean(Clean(string(data))) != Clean(string(data)) {
			t.Fatalf("Clean not idempotent on %q", data)
		}
	})
}
