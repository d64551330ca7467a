package mews

// SetQueuedHook makes l call f each time a caller of Wait starts to wait,
// so that tests can line callers up without sleeping. Set it before any
// Wait.
func SetQueuedHook(l *Limiter, f func(low bool)) { l.queued = f }

// DecodeEntries is DecodeFrame's entry-by-entry path, which the one-pass
// path must agree with.
var DecodeEntries = decodeEntries
