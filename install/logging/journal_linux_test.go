package logging

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// journalStream is a file standing in for systemd's journal stream: the
// JOURNAL_STREAM value that names it, and one that names another file.
type journalStream struct {
	f             *os.File
	ours, another string
}

func newJournalStream(t *testing.T) *journalStream {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return &journalStream{f: f, ours: fmt.Sprintf("%d:%d", st.Dev, st.Ino), another: fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)}
}

// reset empties the stream for the next case.
func (s *journalStream) reset(t *testing.T) {
	t.Helper()
	if err := s.f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
}

// written is what the stream holds.
func (s *journalStream) written(t *testing.T) string {
	t.Helper()
	got, err := os.ReadFile(s.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}

// Under systemd, stdout is the journal stream named by JOURNAL_STREAM; auto
// then writes priority-prefixed lines. A file stands in for the stream.
func TestAutoWritesJournalLinesToJournalStream(t *testing.T) {
	s := newJournalStream(t)
	for _, tt := range []struct {
		name, stream, wantPrefix string
	}{
		{"matching stream", s.ours, "<4>WRN encoder offline"},
		{"inherited from elsewhere", s.another, `{"level":"warn"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tt.stream)
			s.reset(t)
			log, closer, err := New(Options{Format: "auto", Service: true, Out: s.f})
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			log.Warn().Msg("encoder offline")
			if got := s.written(t); !strings.HasPrefix(got, tt.wantPrefix) {
				t.Errorf("got %q, want prefix %q", got, tt.wantPrefix)
			}
		})
	}
}

// ErrorWriter marks lines as errors only on the service's journal stream.
func TestErrorWriterOnlyOnJournalStream(t *testing.T) {
	s := newJournalStream(t)
	for _, tt := range []struct {
		name, stream, want string
	}{
		{"journal", s.ours, "<3>mews-keyd: no config\n"},
		{"elsewhere", s.another, "mews-keyd: no config\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tt.stream)
			s.reset(t)
			fmt.Fprint(ErrorWriter(s.f), "mews-keyd: no config\n")
			if got := s.written(t); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
