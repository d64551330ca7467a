package mews

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 30 ", 30 * time.Second, true},
		{"0", 0, true},
		{"-5", 0, false},
		{"99999999999999", 24 * time.Hour, true},
		{"Sat, 01 Mar 2025 12:00:07 GMT", 7 * time.Second, true},    // IMF-fixdate
		{"Saturday, 01-Mar-25 12:00:07 GMT", 7 * time.Second, true}, // RFC 850
		{"Sat Mar  1 12:00:07 2025", 7 * time.Second, true},         // asctime
		{"Sat, 01 Mar 2025 11:59:00 GMT", 0, true},                  // past: at once
		{"soon", 0, false},
	} {
		got, ok := parseRetryAfter(tc.header, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestAPIErrorMatching(t *testing.T) {
	err := fmt.Errorf("update command: %w", &APIError{Op: "commands/update", Status: 409, Message: "changed", RequestID: "r1"})
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrBadRequest) || Retryable(err) {
		t.Errorf("409: Is(ErrConflict) %v, Is(ErrBadRequest) %v, Retryable %v", errors.Is(err, ErrConflict), errors.Is(err, ErrBadRequest), Retryable(err))
	}
	if got, want := err.Error(), "update command: mews commands/update: 409 Conflict: changed (request r1)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if odd := (&APIError{Status: 418}); errors.Is(odd, ErrBadRequest) || Retryable(odd) {
		t.Error("an undocumented status matched a sentinel")
	}
	if !Retryable(&APIError{Status: 502}) || !errors.Is(&APIError{Status: 599}, ErrServer) {
		t.Error("5xx not a retryable ErrServer")
	}
	if !Retryable(&transportError{op: "x", err: errors.New("reset")}) {
		t.Error("network error not retryable")
	}
}
