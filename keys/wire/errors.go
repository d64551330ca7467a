package wire

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
)

// NoAnswer is the error for a vendor (who: "encoder program", "encoder
// server") that had the request but had not answered when ctx ended at its
// deadline or by cancellation. It may have acted, so MaybeCut is true.
// began is when the operation was handed to the driver; the deadline is
// reported relative to it, which is the timeout the operator configured.
func NoAnswer(ctx context.Context, who string, began time.Time) *keys.Error {
	msg := who + " stopped: operation cancelled"
	if d, ok := ctx.Deadline(); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = fmt.Sprintf("no answer from %s within %s", who, roundForPeople(d.Sub(began)))
	}
	return &keys.Error{Msg: msg, MaybeCut: true, Err: ctx.Err()}
}

// NotStarted is the error for an operation whose ctx ended before the
// request went out.
func NotStarted(ctx context.Context) *keys.Error {
	msg := "cancelled before the encoder was asked; no key was made"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = "timed out waiting for the encoder; no key was made"
	}
	return &keys.Error{Msg: msg, Err: ctx.Err()}
}

// Invalid is the error for output that is not an answer object. Whatever
// the vendor printed, it may have acted.
func Invalid(who string, err error) *keys.Error {
	return &keys.Error{Msg: who + " gave no valid answer", MaybeCut: true, Err: err}
}

// roundForPeople writes 60s rather than 1m0s. The budget is measured from
// when the driver started, a little after the caller set the deadline, so
// it is rounded up to the step the caller most likely configured: whole
// seconds, or tenths for the sub-second deadlines of tests.
func roundForPeople(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%ds", int64(ceil(d, time.Second)/time.Second))
	}
	return ceil(d, 100*time.Millisecond).String()
}

func ceil(d, step time.Duration) time.Duration {
	return (d + step - 1) / step * step
}
