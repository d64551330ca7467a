// Package logging builds the daemon's zerolog.Logger for where it runs: the
// systemd journal, the Windows Event Log, a terminal, or JSON lines.
package logging

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Formats accepted in [log] format.
const (
	FormatAuto    = "auto"
	FormatJSON    = "json"
	FormatConsole = "console"
)

// Options selects the level and destination of the log.
type Options struct {
	Level  string // debug | info | warn | error; "" is info
	Format string // auto | json | console; "" is auto
	// Service is true when the service manager runs the process. On Windows
	// the log then goes to the Event Log.
	Service bool
	// Out is where lines go when they are not sent to the Event Log;
	// os.Stderr when nil.
	Out io.Writer
}

// New returns the logger and a Closer to call before the process exits.
func New(opts Options) (zerolog.Logger, io.Closer, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return zerolog.Nop(), nil, err
	}
	out := opts.Out
	if out == nil {
		out = os.Stderr
	}
	var (
		w      io.Writer
		closer io.Closer = nopCloser{}
	)
	switch opts.Format {
	case FormatJSON:
		w = out
	case FormatConsole:
		w = consoleWriter(out, false)
	case FormatAuto, "":
		w, closer, err = autoWriter(opts.Service, out)
		if err != nil {
			return zerolog.Nop(), nil, err
		}
	default:
		return zerolog.Nop(), nil, fmt.Errorf("log format %q: want auto, json or console", opts.Format)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), closer, nil
}

// ParseLevel reads a [log] level.
func ParseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(s) {
	case "trace":
		return zerolog.TraceLevel, nil
	case "debug":
		return zerolog.DebugLevel, nil
	case "info", "":
		return zerolog.InfoLevel, nil
	case "warn", "warning":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	default:
		return zerolog.NoLevel, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
}

func autoWriter(service bool, out io.Writer) (io.Writer, io.Closer, error) {
	if isJournal(out) {
		return &journalWriter{out: out}, nopCloser{}, nil
	}
	if service {
		if w, closer, ok, err := systemLogWriter(); ok || err != nil {
			return w, closer, err
		}
	}
	if f, ok := out.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return consoleWriter(out, true), nopCloser{}, nil
	}
	return out, nopCloser{}, nil
}

// consoleWriter renders "LVL message key=value". The journal and the Event
// Log stamp entries themselves, so they get no time.
func consoleWriter(out io.Writer, color bool) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{Out: out, NoColor: !color, TimeFormat: "2006-01-02 15:04:05.000"}
}

func plainWriter(out io.Writer) zerolog.ConsoleWriter {
	cw := consoleWriter(out, false)
	cw.PartsExclude = []string{zerolog.TimestampFieldName}
	return cw
}

// journalPriority maps a level to a syslog priority (sd-daemon(3)), so that
// `journalctl -p warning -u mews-keyd` shows warnings and worse.
func journalPriority(l zerolog.Level) int {
	switch l {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return 7
	case zerolog.WarnLevel:
		return 4
	case zerolog.ErrorLevel:
		return 3
	case zerolog.FatalLevel:
		return 2
	case zerolog.PanicLevel:
		return 0
	default:
		return 6
	}
}

// eventType is the Windows Event Log entry type for a level.
type eventType int

const (
	eventInfo eventType = iota
	eventWarning
	eventError
)

func eventTypeOf(l zerolog.Level) eventType {
	switch l {
	case zerolog.WarnLevel:
		return eventWarning
	case zerolog.ErrorLevel, zerolog.FatalLevel, zerolog.PanicLevel:
		return eventError
	default:
		return eventInfo
	}
}

// journalWriter writes what journald reads from a service's stdout: each
// line starts with "<priority>".
type journalWriter struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *journalWriter) Write(p []byte) (int, error) {
	return w.WriteLevel(zerolog.NoLevel, p)
}

func (w *journalWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	var line bytes.Buffer
	if _, err := plainWriter(&line).Write(p); err != nil {
		return 0, err
	}
	prefix := fmt.Sprintf("<%d>", journalPriority(l))
	// A multi-line message (a vendor program's stderr) keeps its priority
	// on every line.
	text := strings.TrimSuffix(line.String(), "\n")
	text = prefix + strings.ReplaceAll(text, "\n", "\n"+prefix) + "\n"
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := io.WriteString(w.out, text); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ErrorWriter is where a process writes the error it exits on, before or
// without its logger: on the service's journal stream every line is filed
// at priority 3 (error), so that `journalctl -p warning` shows why the
// service is down; anywhere else w is returned as it is.
func ErrorWriter(w io.Writer) io.Writer {
	if !isJournal(w) {
		return w
	}
	return &priorityWriter{out: w, prefix: fmt.Sprintf("<%d>", journalPriority(zerolog.ErrorLevel))}
}

// priorityWriter starts every line with prefix, also when a line comes in
// several writes.
type priorityWriter struct {
	out     io.Writer
	prefix  string
	midLine bool
}

func (w *priorityWriter) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !w.midLine {
			b.WriteString(w.prefix)
		}
		b.Write(line)
		w.midLine = line[len(line)-1] != '\n'
	}
	if _, err := w.out.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
