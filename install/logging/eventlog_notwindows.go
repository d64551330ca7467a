//go:build !windows

package logging

import "io"

// systemLogWriter: outside Windows a service logs to stdout; under systemd
// that is the journal (isJournal).
func systemLogWriter() (io.Writer, io.Closer, bool, error) { return nil, nil, false, nil }
