//go:build !windows

package logging

import (
	"bytes"
	"encoding/json"
	"testing"
)

// A service outside systemd (a container, another service manager) logs
// JSON to stdout, which its manager keeps.
func TestAutoService(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	var buf bytes.Buffer
	log, _, err := New(Options{Format: "auto", Service: true, Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("connected")
	if !json.Valid(buf.Bytes()) {
		t.Errorf("want JSON, got %q", buf.String())
	}
}
