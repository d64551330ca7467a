package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
)

// The notes below end up in front of a receptionist in Mews: short, plain
// words, no error codes.

func processedNote(res keys.Result, count int, lockIDs []string) string {
	if res.Note != "" {
		return res.Note
	}
	noun := "keys"
	if count == 1 {
		noun = "key"
	}
	switch len(lockIDs) {
	case 0:
		return fmt.Sprintf("%d %s encoded", count, noun)
	case 1:
		return fmt.Sprintf("%d %s for room %s", count, noun, lockIDs[0])
	default:
		return fmt.Sprintf("%d %s for rooms %s", count, noun, strings.Join(lockIDs, ", "))
	}
}

func errorNote(err error, timeout time.Duration) string {
	var msg string
	var ke *keys.Error
	switch {
	case errors.As(err, &ke):
		msg = ke.Msg
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("no answer from the encoder within %s", timeout)
	default:
		msg = "the encoder failed: " + err.Error()
	}
	// A vendor's error text can be any length; the warning after it must
	// survive the cut.
	const maybeCut = "; a card may have been encoded, check it before cutting again"
	if keys.MaybeCut(err) {
		return capNoteAt(msg, maxNote-len(maybeCut)) + maybeCut
	}
	return capNoteAt(msg, maxNote)
}

// maxNote is the longest note sent to Mews: a receptionist reads it on a
// screen, and a driver's error text of any size must not make the report
// itself fail.
const maxNote = 250

// capNote cuts a note to maxNote characters.
func capNote(s string) string { return capNoteAt(s, maxNote) }

// capNoteAt cuts s to at most max characters (runes), at the last space
// that keeps a readable prefix, and marks the cut with "…".
func capNoteAt(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	cut := r[:max-1]
	if i := strings.LastIndexByte(string(cut), ' '); i > 0 {
		if words := []rune(string(cut)[:i]); len(words) >= max/2 {
			cut = words
		}
	}
	return strings.TrimRight(string(cut), " ,;:") + "…"
}

func tooOldNote(age, limit time.Duration) string {
	return fmt.Sprintf("not cut: the request is %s old (limit %s); please press cut key again",
		age.Round(time.Minute), limit)
}

const interruptedNote = "interrupted by a restart, please cut the key again"
