package mews

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinels for the statuses the Connector API documents. An *APIError
// matches the one for its status through errors.Is.
var (
	ErrBadRequest   = errors.New("bad request")         // 400: our bug, or an id that no longer exists
	ErrUnauthorized = errors.New("unauthorized")        // 401: wrong ClientToken or AccessToken
	ErrForbidden    = errors.New("forbidden")           // 403: a business rule; Message is for people
	ErrNotFound     = errors.New("not found")           // 404: wrong address
	ErrTimeout      = errors.New("request timed out")   // 408: too heavy for Mews; retried
	ErrConflict     = errors.New("conflict")            // 409: data changed, refresh and retry
	ErrRateLimited  = errors.New("rate limited")        // 429: retried after Retry-After
	ErrServer       = errors.New("server error")        // 5xx: Mews fault; retried
	ErrNetwork      = errors.New("network error")       // no HTTP answer at all; retried
	ErrResponse     = errors.New("unreadable response") // 200 whose body is not what the operation returns
)

// APIError is an answer from Mews other than 200. It carries only what is
// safe to log: the body is reduced to its Message, which never contains the
// tokens (they are scrubbed should Mews ever echo them).
type APIError struct {
	Op         string // e.g. "commands/update"
	Status     int
	Message    string
	RequestID  string        // Mews's Request-Id, for support tickets
	RetryAfter time.Duration // from a 429's Retry-After header; 0 when absent
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mews %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrConflict) and friends work on an *APIError.
func (e *APIError) Is(target error) bool {
	return target != nil && target == statusSentinel(e.Status)
}

func statusSentinel(status int) error {
	switch {
	case status == http.StatusBadRequest:
		return ErrBadRequest
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusRequestTimeout:
		return ErrTimeout
	case status == http.StatusConflict:
		return ErrConflict
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500 && status <= 599:
		return ErrServer
	}
	return nil
}

// Retryable reports whether repeating the same request later may succeed:
// 408, 429, 5xx and network failures. 409 is deliberately not retryable as
// is: the caller must refresh its data first. The Client already retries
// these within its budget; this tells a caller that got one back (budget or
// context exhausted) whether to try again later, e.g. from the journal.
func Retryable(err error) bool {
	for _, target := range []error{ErrTimeout, ErrRateLimited, ErrServer, ErrNetwork} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// transportError is a request that got no HTTP answer. unsent records that
// the request certainly never reached Mews, which is what makes repeating a
// non-idempotent operation safe.
type transportError struct {
	op     string
	err    error
	unsent bool
}

func (e *transportError) Error() string { return "mews " + e.op + ": " + e.err.Error() }

func (e *transportError) Unwrap() []error { return []error{ErrNetwork, e.err} }

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). ok is false when the header is absent or unreadable.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(24 * time.Hour / time.Second) // guards the multiplication against overflow
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
