package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Under systemd, stderr is the journal stream named by JOURNAL_STREAM. The
// error that stops the daemon before its logger exists (here: no config
// file) must be filed at priority 3, or `journalctl -p warning` hides why
// the service is down. A file stands in for the stream.
func TestFatalErrorIsAnErrorInTheJournal(t *testing.T) {
	dir := t.TempDir()
	stream, err := os.Create(filepath.Join(dir, "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	fi, err := stream.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))

	code := NewMain(io.Discard, stream).Run(context.Background(), []string{"run", "--config", filepath.Join(dir, "missing.toml")})
	if code != exitConfig {
		t.Errorf("exit %d, want %d", code, exitConfig)
	}
	got, err := os.ReadFile(stream.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "<3>mews-keyd: ") || !strings.Contains(string(got), "missing.toml") {
		t.Errorf("the journal got %q, want the reason at priority 3", got)
	}
}
