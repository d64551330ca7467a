package salto

import (
	"testing"

	"github.com/mews-keyd/mews-keyd/keys"
)

// An answer is ours only if it echoes our command and encoder; anything
// else leaves open what Salto did.
func TestVerdict(t *testing.T) {
	cn := Message{"CN2", "Online Encoder 1", "R", "101"}
	co := Message{"CO", "0", "101"}
	tests := []struct {
		name     string
		sent     Message
		ans      Message
		ok       bool
		maybeCut bool
	}{
		{"echo", cn, Message{"CN2", "Online Encoder 1", "SN1", "SN2"}, true, false},
		{"echo without count", cn, Message{"CN", "Online Encoder 1"}, true, false},
		{"echo padded, other case", cn, Message{"CN2", " online encoder 1 "}, true, false},
		{"CO echo", co, Message{"CO", "0"}, true, false},
		{"CO echo alone", co, Message{"CO"}, true, false},
		{"other encoder", cn, Message{"CN2", "Online Encoder 2"}, false, true},
		{"other command", cn, Message{"CC2", "Online Encoder 1"}, false, true},
		{"other count", cn, Message{"CN3", "Online Encoder 1"}, false, true},
		{"unknown code", cn, Message{"ZZ"}, false, true},
		{"empty", cn, Message{""}, false, true},
		{"error code", cn, Message{"EP", "Online Encoder 1"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verdict(tt.sent, tt.ans, []string{"101"})
			if (err == nil) != tt.ok {
				t.Fatalf("verdict(%q, %q) = %v, want ok %v", tt.sent, tt.ans, err, tt.ok)
			}
			if err != nil && keys.MaybeCut(err) != tt.maybeCut {
				t.Errorf("MaybeCut = %v, want %v", keys.MaybeCut(err), tt.maybeCut)
			}
		})
	}
}
