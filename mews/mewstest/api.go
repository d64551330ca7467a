package mewstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	apiPrefix    = "/api/connector/v1/"
	maxBodyBytes = 10 << 20
	maxIDs       = 1000
)

// Request is one API call as the server saw it. Body is the decoded JSON
// body with ClientToken and AccessToken removed; Status is 0 for a call
// that was hung (HangNext) and never answered.
type Request struct {
	Op        string
	Time      time.Time
	Status    int
	Body      map[string]any
	RequestID string
}

// apiError is an answer other than 200, with the message Mews would give.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string { return e.message }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf(format, args...)}
}

// opFunc serves one operation from the raw body (tokens already checked)
// and returns the value to encode as the 200 answer.
type opFunc func(s *Server, body []byte) (any, error)

var ops = map[string]opFunc{
	"commands/getAllActive":          (*Server).opGetAllActive,
	"commands/getAllByIds":           (*Server).opGetAllByIds,
	"commands/update":                (*Server).opUpdateCommand,
	"commands/addKeyCutter":          (*Server).opAddKeyCutter,
	"devices/getAll":                 (*Server).opGetDevices,
	"reservations/getAll/2023-06-06": (*Server).opGetReservations,
	"resources/getAll":               (*Server).opGetResources,
	"customers/getAll":               (*Server).opGetCustomers,
	"companionships/getAll":          (*Server).opGetCompanionships,
	"resourceAccessTokens/add":       (*Server).opAddTokens,
	"resourceAccessTokens/update":    (*Server).opUpdateTokens,
	"resourceAccessTokens/delete":    (*Server).opDeleteTokens,
	"resourceAccessTokens/getAll":    (*Server).opGetTokens,
}

// auth is the part of every body that identifies the caller.
type auth struct {
	ClientToken string
	AccessToken string
	Client      string
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.URL.Path, apiPrefix)
	reqID := newID()
	w.Header().Set("Request-Id", reqID)
	entry := Request{Op: op, Time: s.now(), RequestID: reqID}

	status, answer, retryAfter := s.handle(r, op, &entry)
	if status == 0 {
		return // never answered, logged by handle
	}
	entry.Status = status
	// Logged before the answer goes out: once a client has its answer, the
	// request log already shows the request.
	s.logRequest(entry)
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	// By the server's clock, which WithClock may set apart from the PC's.
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(answer) // the client may be gone; nothing to do about it
	s.log.Debug().Str("op", op).Int("status", status).Str("request_id", reqID).Msg("served")
}

// handle runs the checks in the order Mews applies them, then the injected
// faults, then the operation. It returns status 0, having logged the call,
// for a call that is never answered (hung, or given up during latency).
func (s *Server) handle(r *http.Request, op string, entry *Request) (status int, answer any, retryAfter string) {
	fail := func(code int, msg string) (int, any, string) {
		return code, errorBody{Message: msg, RequestID: entry.RequestID}, ""
	}
	serve, known := ops[op]
	if !known {
		return fail(http.StatusNotFound, "Unknown operation "+op+".")
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, "Operations must be called with POST.")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		return fail(http.StatusBadRequest, "Unreadable request body.")
	}
	var logged map[string]any
	if err := json.Unmarshal(body, &logged); err != nil {
		return fail(http.StatusBadRequest, "Invalid JSON in request body.")
	}
	delete(logged, "ClientToken")
	delete(logged, "AccessToken")
	entry.Body = logged

	var a auth
	_ = json.Unmarshal(body, &a) // shape already checked above; wrong types leave fields empty
	switch {
	case a.ClientToken != ClientToken:
		return fail(http.StatusUnauthorized, "Invalid ClientToken.")
	case a.AccessToken != AccessToken:
		return fail(http.StatusUnauthorized, "Invalid AccessToken.")
	case a.Client == "":
		return fail(http.StatusBadRequest, "Client is required.")
	}
	if wait, limited := s.overLimit(); limited {
		code, ans, _ := fail(http.StatusTooManyRequests, "Too many requests.")
		return code, ans, strconv.Itoa(wait)
	}

	delay, hangs, injected := s.faultsFor(op)
	if !s.pause(r, delay) {
		s.logRequest(*entry)
		return 0, nil, ""
	}
	if hangs {
		s.logRequest(*entry) // visible to Wait while it hangs
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return 0, nil, ""
	}
	if injected != nil {
		code, ans, _ := fail(injected.status, "Simulated failure: "+http.StatusText(injected.status)+".")
		return code, ans, injected.retryAfter
	}

	result, err := serve(s, body)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return fail(ae.status, ae.message)
		}
		return fail(http.StatusInternalServerError, "Internal error.")
	}
	return http.StatusOK, result, ""
}

// errorBody is Mews's error answer.
type errorBody struct {
	Message   string `json:"Message"`
	RequestID string `json:"RequestId"`
}

// pause sleeps the injected latency; false if the client or server gave up.
func (s *Server) pause(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

// overLimit records an accepted request in the sliding window, or reports
// how many whole seconds until the oldest one leaves it.
func (s *Server) overLimit() (retryAfter int, limited bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rateN <= 0 {
		return 0, false
	}
	now := s.now()
	cut := 0
	for cut < len(s.served) && !s.served[cut].After(now.Add(-s.rateWindow)) {
		cut++
	}
	s.served = s.served[cut:]
	if len(s.served) >= s.rateN {
		wait := s.served[0].Add(s.rateWindow).Sub(now)
		return max(1, int(math.Ceil(wait.Seconds()))), true
	}
	s.served = append(s.served, now)
	return 0, false
}

func (s *Server) logRequest(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
	s.notifyLocked()
}

// Requests returns every API call so far, in the order they were answered.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestCount counts the calls of op ("" counts all).
func (s *Server) RequestCount(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if op == "" || r.Op == op {
			n++
		}
	}
	return n
}

// ResetRequests forgets the request log (not the rate limit window).
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.notifyLocked()
}

// limitation is Mews's pagination request.
type limitation struct {
	Count  int     `json:"Count"`
	Cursor *string `json:"Cursor"`
}

// page cuts one page out of items (the store's stable order) keeping those
// that pass keep. The cursor is positioned in the unfiltered order, so an
// item that stopped matching (a command processed meanwhile) still marks
// where the next page starts. A nil limitation means everything.
func page[T any](items []T, id func(T) string, keep func(T) bool, lim *limitation) ([]T, *string, error) {
	if lim != nil {
		if lim.Count < 1 || lim.Count > maxIDs {
			return nil, nil, badRequest("Limitation.Count must be between 1 and %d.", maxIDs)
		}
		if lim.Cursor != nil && *lim.Cursor != "" {
			at := -1
			for i, it := range items {
				if id(it) == *lim.Cursor {
					at = i
					break
				}
			}
			if at < 0 {
				return nil, nil, badRequest("Invalid Limitation.Cursor.")
			}
			items = items[at+1:]
		}
	}
	var out []T
	for _, it := range items {
		if lim != nil && len(out) == lim.Count {
			break
		}
		if keep(it) {
			out = append(out, it)
		}
	}
	if len(out) == 0 {
		return []T{}, nil, nil
	}
	last := id(out[len(out)-1])
	return out, &last, nil
}

// decode unmarshals an operation body, answering 400 on a shape error.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("Invalid request: %v.", err)
	}
	return nil
}
