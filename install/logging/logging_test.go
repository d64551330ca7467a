package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestJournalPriority(t *testing.T) {
	tests := []struct {
		level zerolog.Level
		want  int
	}{
		{zerolog.TraceLevel, 7},
		{zerolog.DebugLevel, 7},
		{zerolog.InfoLevel, 6},
		{zerolog.NoLevel, 6},
		{zerolog.WarnLevel, 4},
		{zerolog.ErrorLevel, 3},
		{zerolog.FatalLevel, 2},
		{zerolog.PanicLevel, 0},
	}
	for _, tt := range tests {
		if got := journalPriority(tt.level); got != tt.want {
			t.Errorf("journalPriority(%s) = %d, want %d", tt.level, got, tt.want)
		}
	}
}

func TestEventType(t *testing.T) {
	tests := []struct {
		level zerolog.Level
		want  eventType
	}{
		{zerolog.DebugLevel, eventInfo},
		{zerolog.InfoLevel, eventInfo},
		{zerolog.WarnLevel, eventWarning},
		{zerolog.ErrorLevel, eventError},
		{zerolog.FatalLevel, eventError},
		{zerolog.PanicLevel, eventError},
	}
	for _, tt := range tests {
		if got := eventTypeOf(tt.level); got != tt.want {
			t.Errorf("eventTypeOf(%s) = %d, want %d", tt.level, got, tt.want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]zerolog.Level{
		"": zerolog.InfoLevel, "debug": zerolog.DebugLevel, "info": zerolog.InfoLevel,
		"WARN": zerolog.WarnLevel, "error": zerolog.ErrorLevel,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("verbose"); err == nil {
		t.Error("ParseLevel accepted verbose")
	}
}

func TestJournalWriterPrefixesPriority(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&journalWriter{out: &buf}).With().Timestamp().Logger()
	log.Warn().Str("encoder", "frontdesk").Msg("lock system offline")
	log.Error().Msg("first line\nsecond line")
	log.Info().Msg("connected")

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		"<4>WRN lock system offline encoder=frontdesk",
		"<3>ERR first line",
		"<3>second line",
		"<6>INF connected",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal lines:\n%s\nwant:\n%s", buf.String(), strings.Join(want, "\n"))
	}
}

func TestNewFormats(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		var buf bytes.Buffer
		log, closer, err := New(Options{Level: "info", Format: "json", Out: &buf})
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		log.Debug().Msg("hidden")
		log.Warn().Str("encoder", "frontdesk").Msg("offline")
		var entry map[string]any
		if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
			t.Fatalf("not one JSON line: %v\n%s", err, buf.String())
		}
		if entry["level"] != "warn" || entry["encoder"] != "frontdesk" || entry["time"] == nil {
			t.Errorf("entry %v", entry)
		}
	})
	t.Run("console", func(t *testing.T) {
		var buf bytes.Buffer
		log, _, err := New(Options{Format: "console", Out: &buf})
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Msg("connected")
		if !strings.Contains(buf.String(), "INF connected") || strings.Contains(buf.String(), "\x1b[") {
			t.Errorf("console line %q", buf.String())
		}
	})
	// Auto on a plain writer outside systemd and outside a service: JSON.
	// (For a service see TestAutoService on each system.)
	t.Run("auto not a terminal", func(t *testing.T) {
		t.Setenv("JOURNAL_STREAM", "")
		var buf bytes.Buffer
		log, _, err := New(Options{Format: "auto", Out: &buf})
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Msg("connected")
		if !json.Valid(buf.Bytes()) {
			t.Errorf("want JSON, got %q", buf.String())
		}
	})
	t.Run("bad format", func(t *testing.T) {
		if _, _, err := New(Options{Format: "xml"}); err == nil {
			t.Error("format xml accepted")
		}
	})
	t.Run("bad level", func(t *testing.T) {
		if _, _, err := New(Options{Level: "loud"}); err == nil {
			t.Error("level loud accepted")
		}
	})
}

// Text written in pieces gets the priority at the start of each line only.
func TestPriorityWriterPrefixesEveryLine(t *testing.T) {
	var out bytes.Buffer
	w := &priorityWriter{out: &out, prefix: "<3>"}
	for _, piece := range []string{"mews-keyd: bad ", "config\n\nusage:\n  run\n", "last"} {
		if n, err := w.Write([]byte(piece)); err != nil || n != len(piece) {
			t.Fatalf("Write(%q) = %d, %v", piece, n, err)
		}
	}
	if want := "<3>mews-keyd: bad config\n<3>\n<3>usage:\n<3>  run\n<3>last"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
