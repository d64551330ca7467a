package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/demo"
)

// TestDemoScenario runs the whole demo, shortened, and checks its summary:
// the demo is the first thing a newcomer runs, so it must keep working.
// Its Salto desk shows the salto driver's flow against the simulator.
func TestDemoScenario(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := demo.Run(ctx, demo.Options{Out: &out, Duration: 6 * time.Second, Version: "test"}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"16 key commands: 13 Processed, 3 Error",
		"card could not be written",
		"no room assigned",
		// The Salto desk: a new key, a copy Salto refused once (NAK) and got
		// again, and a copy without a card in the encoder.
		"2 keys for room 112 (serials SN000001, SN000002)",
		"1 key for room 112 (serial SN000003)",
		"no card in the encoder, or it is inserted wrongly",
		"Salto interface (desk-3): 4 messages (1 CN, 3 CC), 1 refused with NAK and sent again after 1 ENQ",
		"digital key issue for reservation 1002 (room 102): ok",
		"digital key revoke for reservation 1002 (room 102): ok",
		"event → encoder latency",
		// The lobby's key cutter, described in Mews only.
		"Lobby encoder",
		"fias 127.0.0.1:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
