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
func TestDemoScenario(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := demo.Run(ctx, demo.Options{Out: &out, Duration: 6 * time.Second, Version: "test"}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"12 key commands: 10 Processed, 2 Error",
		"card could not be written",
		"no room assigned",
		"digital key issue for reservation 1002 (room 102): ok",
		"digital key revoke for reservation 1002 (room 102): ok",
		"event → encoder latency",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
