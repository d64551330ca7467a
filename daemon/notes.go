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
	if keys.MaybeCut(err) {
		msg += "; a card may have been encoded, check it before cutting again"
	}
	return msg
}

func tooOldNote(age, limit time.Duration) string {
	return fmt.Sprintf("not cut: the request is %s old (limit %s); please press cut key again",
		age.Round(time.Minute), limit)
}

const interruptedNote = "interrupted by a restart, please cut the key again"
