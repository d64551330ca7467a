package logging

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Under systemd, stdout is the journal stream named by JOURNAL_STREAM; auto
// then writes priority-prefixed lines. A file stands in for the stream.
func TestAutoWritesJournalLinesToJournalStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)

	for _, tt := range []struct {
		name, stream, wantPrefix string
	}{
		{"matching stream", fmt.Sprintf("%d:%d", st.Dev, st.Ino), "<4>WRN encoder offline"},
		{"inherited from elsewhere", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), `{"level":"warn"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tt.stream)
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			log, closer, err := New(Options{Format: "auto", Service: true, Out: f})
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			log.Warn().Msg("encoder offline")
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(got), tt.wantPrefix) {
				t.Errorf("got %q, want prefix %q", got, tt.wantPrefix)
			}
		})
	}
}

// ErrorWriter marks lines as errors only on the service's journal stream.
func TestErrorWriterOnlyOnJournalStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	for _, tt := range []struct {
		name, stream, want string
	}{
		{"journal", fmt.Sprintf("%d:%d", st.Dev, st.Ino), "<3>mews-keyd: no config\n"},
		{"elsewhere", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), "mews-keyd: no config\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tt.stream)
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(ErrorWriter(f), "mews-keyd: no config\n")
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
