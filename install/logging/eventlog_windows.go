package logging

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/sys/windows/svc/eventlog"
)

// sourceName is the Event Log source that `mews-keyd install` registers.
const sourceName = "mews-keyd"

// eventID is the single event id we log under; the text carries the detail.
const eventID = 1

// systemLogWriter sends the log of a Windows service to the Application
// Event Log, where administrators look and where stdout goes nowhere.
func systemLogWriter() (io.Writer, io.Closer, bool, error) {
	el, err := eventlog.Open(sourceName)
	if err != nil {
		return nil, nil, true, fmt.Errorf("open event log: %w", err)
	}
	return &eventLogWriter{el: el}, el, true, nil
}

type eventLogWriter struct {
	el *eventlog.Log
}

func (w *eventLogWriter) Write(p []byte) (int, error) {
	return w.WriteLevel(zerolog.NoLevel, p)
}

func (w *eventLogWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	var line bytes.Buffer
	if _, err := plainWriter(&line).Write(p); err != nil {
		return 0, err
	}
	msg := strings.TrimSuffix(line.String(), "\n")
	var err error
	switch eventTypeOf(l) {
	case eventError:
		err = w.el.Error(eventID, msg)
	case eventWarning:
		err = w.el.Warning(eventID, msg)
	default:
		err = w.el.Info(eventID, msg)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}
