package ascii_test

import (
	"testing"

	"github.com/mews-keyd/mews-keyd/keys/internal/ascii"
)

func TestClean(t *testing.T) {
	for _, tt := range []struct{ in, drop, want string }{
		{"NOVAK", "", "NOVAK"},
		{"Řehoř Dvořák", "", "Rehor Dvorak"},
		{"Jürgen Groß", "", "Jurgen Gross"},
		{"Ångström Ærø", "", "Angstrom AEro"},
		{"O’Brien – Smith", "", "O'Brien - Smith"},
		{"王 Li", "", " Li"},
		{"a|b\x02c\x03d\ne\u00b3f", "", "a|bcdef"},
		{"a|b", "|", "ab"},
	} {
		if got := ascii.Clean(tt.in, tt.drop); got != tt.want {
			t.Errorf("Clean(%q, %q) = %q, want %q", tt.in, tt.drop, got, tt.want)
		}
		if again := ascii.Clean(tt.want, tt.drop); again != tt.want {
			t.Errorf("Clean is not idempotent on %q: %q", tt.want, again)
		}
	}
}

func TestUnsendable(t *testing.T) {
	for _, tt := range []struct {
		in, drop string
		bad      rune
	}{
		{"Zimmer Ü1", "", 0},
		{"10|1", "|", '|'},
		{"10|1", "", 0},
		{"1\u00b301", "", '\u00b3'},
		{"房间", "", '房'},
	} {
		r, bad := ascii.Unsendable(tt.in, tt.drop)
		if r != tt.bad || bad != (tt.bad != 0) {
			t.Errorf("Unsendable(%q, %q) = %q, %v; want %q", tt.in, tt.drop, r, bad, tt.bad)
		}
	}
}

func TestFromLatin1(t *testing.T) {
	if got := ascii.FromLatin1("Carte invalid\xe9e"); got != "Carte invalidée" {
		t.Errorf("Latin-1 text = %q", got)
	}
	if got := ascii.FromLatin1("déjà"); got != "déjà" {
		t.Errorf("UTF-8 text = %q", got)
	}
}
