package logging

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// isJournal reports whether out is the journald stream systemd connected to
// the service: JOURNAL_STREAM holds that stream's "device:inode". The
// variable alone is not enough, because a child of the service or an
// operator redirecting stdout inherits it while writing elsewhere.
func isJournal(out io.Writer) bool {
	stream := os.Getenv("JOURNAL_STREAM")
	f, ok := out.(*os.File)
	if stream == "" || !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
