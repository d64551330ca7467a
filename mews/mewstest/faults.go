package mewstest

import "time"

// failure answers the next calls of op with an error status.
type failure struct {
	op         string
	left       int
	status     int
	retryAfter string
}

// hang leaves the next calls of op unanswered.
type hang struct {
	op   string
	left int
}

// FailNext makes the next n calls of op (the path after /api/connector/v1/,
// "" for any op) answer status with a Mews error body, and the Retry-After
// header when retryAfter is not empty. Calls refused earlier (401, 429) do
// not use up the n.
func (s *Server) FailNext(op string, n int, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{op: op, left: n, status: status, retryAfter: retryAfter})
}

// SetLatency delays every answer of op ("" for any op without its own
// latency) by d; 0 removes it.
func (s *Server) SetLatency(op string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, op)
		return
	}
	s.latency[op] = d
}

// HangNext makes the next n calls of op ("" for any) never answer until the
// client gives up or the server closes. A hung call appears in Requests at
// once, with Status 0.
func (s *Server) HangNext(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangs = append(s.hangs, hang{op: op, left: n})
}

// faultsFor takes what is injected into this call of op: its latency,
// whether it hangs, and the failure it answers with, if any.
func (s *Server) faultsFor(op string) (delay time.Duration, hangs bool, fail *failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delay, ok := s.latency[op]
	if !ok {
		delay = s.latency[""]
	}
	for i := range s.hangs {
		h := &s.hangs[i]
		if h.left > 0 && (h.op == "" || h.op == op) {
			h.left--
			hangs = true
			break
		}
	}
	s.hangs = compact(s.hangs, func(h hang) bool { return h.left > 0 })
	if hangs {
		return delay, true, nil
	}
	for i := range s.failures {
		f := &s.failures[i]
		if f.left > 0 && (f.op == "" || f.op == op) {
			f.left--
			taken := *f
			fail = &taken
			break
		}
	}
	s.failures = compact(s.failures, func(f failure) bool { return f.left > 0 })
	return delay, false, fail
}

// compact keeps the items still in use.
func compact[T any](items []T, keep func(T) bool) []T {
	out := items[:0]
	for _, it := range items {
		if keep(it) {
			out = append(out, it)
		}
	}
	return out
}
