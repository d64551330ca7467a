package logging

import (
	"bytes"
	"testing"
)

// A Windows service's stdout and stderr go nowhere: its log goes to the
// Event Log. (Wine's Event Log takes writes but cannot be read back, so
// the writer is checked, not the entry.)
func TestAutoService(t *testing.T) {
	var buf bytes.Buffer
	log, closer, err := New(Options{Format: "auto", Service: true, Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	log.Info().Msg("connected")
	if buf.Len() != 0 {
		t.Errorf("a service's log went to its stdout: %q", buf.String())
	}
	w, closer, err := autoWriter(true, &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if _, ok := w.(*eventLogWriter); !ok {
		t.Errorf("a service logs through %T, want the Event Log", w)
	}
}
