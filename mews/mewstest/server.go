// Package mewstest is an in-memory Mews: the Connector API operations and the
// WebSocket that mews-keyd uses, on a loopback listener, with switches for
// every fault the daemon must survive (errors, latency, hangs, rate limits,
// dropped or silent sockets, bad frames). Like net/http/httptest it is a
// real server, so clients are tested over real HTTP and WebSocket.
//
// It does not import testing: the demo and the benchmarks run on it too.
//
// Operation shapes (POST /api/connector/v1/<op>, every body carries
// ClientToken, AccessToken and Client), as documented on docs.mews.com
// (Connector API operations: commands, devices, reservations ver
// 2023-06-06, resources, customers, resourceAccessTokens):
//
//	commands/getAllActive     {Limitation?}                      -> {Commands, Cursor?}
//	commands/getAllByIds      {CommandIds 1..1000, Limitation?}  -> {Commands, Cursor?}
//	commands/update           {CommandId, State, Progress?, Notes?} -> {}
//	commands/addKeyCutter     {KeyCutterId, ReservationId, KeyCount, EnterpriseId?} -> {CommandId}
//	devices/getAll            {}                                 -> {Devices}
//	reservations/getAll/2023-06-06
//	                          {ReservationIds?, UpdatedUtc? {StartUtc, EndUtc} (<= 3 months),
//	                           States?, AssignedResourceIds?, Limitation} -> {Reservations, Cursor}
//	resources/getAll          {ResourceIds?, Names?, Extent {Resources, Inactive?}, Limitation}
//	                                                             -> {Resources, Cursor}
//	customers/getAll          {CustomerIds, Extent {Customers}, Limitation} -> {Customers, Cursor}
//	companionships/getAll     {ReservationIds? | CustomerIds? | ReservationGroupIds?, Limitation}
//	                                                             -> {Companionships, Customers, Reservations,
//	                                                                 ReservationGroups, Cursor}
//	resourceAccessTokens/add  {ResourceAccessTokenParameters: [{ServiceOrderId, ResourceId?, CompanionshipId?, Type,
//	                           Value, SerialNumber?, ValidityStartUtc, ValidityEndUtc,
//	                           Permissions? {Bed|Room|Floor|Building: {Value}}}]}
//	                                                             -> {ResourceAccessTokens}
//	resourceAccessTokens/update {ResourceAccessTokenUpdates: [{ResourceAccessTokenId,
//	                           ValidityStartUtc? {Value}, ValidityEndUtc? {Value}, Value? {Value},
//	                           Permissions?}]}                   -> {ResourceAccessTokens}
//	resourceAccessTokens/delete {Ids}                            -> {}
//	resourceAccessTokens/getAll {ResourceAccessTokenIds? | ServiceOrderIds?,
//	                           ActivityStates? (default Active), Limitation} -> {ResourceAccessTokens, Cursor}
//
// Reservations, resources and customers are answered with every field
// Mews's OpenAPI document marks required (answers.go), not only those the
// client reads.
//
// Answered tokens carry Id, EnterpriseId, ServiceOrderId, ResourceId, CompanionshipId, Type,
// Value, SerialNumber, ValidityStartUtc/EndUtc, Permissions {Bed, Room,
// Floor, Building}, IsActive, CreatedUtc, UpdatedUtc; delete keeps the token
// with IsActive false.
//
// Limitation is {Count 1..1000, Cursor}; the answer's Cursor is the id of
// the last item returned (null when none), and the next page starts after
// that item in the server's stable order, even if it no longer matches the
// filter.
package mewstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/mews"
)

// The tokens the server accepts; any non-empty Client is accepted.
const (
	ClientToken = "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D"
	AccessToken = "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D"
)

// Mews's published limit, used unless WithRateLimit says otherwise.
const (
	defaultRateLimit  = 200
	defaultRateWindow = 30 * time.Second
)

// Option configures a Server.
type Option func(*Server)

// WithRateLimit sets the server-side limit: at most n requests per window
// (sliding) for the access token; the request over it gets 429 with a
// Retry-After in whole seconds. n <= 0 disables the limit.
func WithRateLimit(n int, window time.Duration) Option {
	return func(s *Server) { s.rateN, s.rateWindow = n, window }
}

// WithoutFixtures starts the server empty.
func WithoutFixtures() Option {
	return func(s *Server) { s.fixtures = false }
}

// WithClock replaces time.Now for timestamps, the Date header of answers
// and the rate limit window; e.g. time.Now plus 30 minutes plays a PC whose
// clock is 30 minutes behind Mews's.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithLogger makes the server log what it serves (never tokens).
func WithLogger(l zerolog.Logger) Option {
	return func(s *Server) { s.log = l }
}

// Server is the simulated Mews. All methods are safe for concurrent use.
type Server struct {
	log        zerolog.Logger
	now        func() time.Time
	rateN      int
	rateWindow time.Duration
	fixtures   bool

	// cutterSettings are the key cutters' settings in Mews (API URL and
	// Data JSON), by device id; every command for the device carries them.
	// Guarded by mu.
	cutterSettings map[string]KeyCutterSettings

	http    *http.Server
	serving chan struct{} // closed when Serve has returned
	base    string
	done    chan struct{} // closed by Close: wakes hung and delayed requests
	// handlers counts running handlers; Add only under mu while !closed, so
	// Close can Wait without racing an Add.
	handlers sync.WaitGroup

	mu sync.Mutex
	// changed is closed and replaced on every state change, so Wait
	// re-evaluates its condition exactly when something happened.
	changed chan struct{}
	closed  bool
	store
	sockets    map[*socket]struct{}
	handshakes []Handshake
	refuseN    int
	refuseCode int
	duplicate  bool
	silent     bool
	requests   []Request
	served     []time.Time // accepted requests inside the rate window
	failures   []failure
	hangs      []hang
	latency    map[string]time.Duration
	// reverseAdded answers resourceAccessTokens/add in reverse order.
	reverseAdded bool
}

// NewServer starts a server on 127.0.0.1 at once and panics if it cannot
// listen, like httptest.NewServer.
func NewServer(opts ...Option) *Server {
	s := &Server{
		log:        zerolog.Nop(),
		now:        time.Now,
		rateN:      defaultRateLimit,
		rateWindow: defaultRateWindow,
		fixtures:   true,
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
		store:      newStore(),
		sockets:    make(map[*socket]struct{}),
		latency:    make(map[string]time.Duration),
	}
	for _, o := range opts {
		o(s)
	}
	if s.fixtures {
		s.loadFixtures()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("mewstest: listen: %v", err))
	}
	s.base = ln.Addr().String()
	s.http = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	s.serving = make(chan struct{})
	go func() {
		defer close(s.serving)
		_ = s.http.Serve(ln) // always ErrServerClosed, after Close
	}()
	return s
}

// URL is the API base address; operations are at URL()+"/api/connector/v1/...".
func (s *Server) URL() string { return "http://" + s.base }

// WSURL is the WebSocket base address; the endpoint is WSURL()+"/ws/connector".
func (s *Server) WSURL() string { return "ws://" + s.base }

// Close drops every socket without a close frame, answers nothing more and
// returns when all handlers have finished.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	socks := s.socketList()
	s.notifyLocked()
	s.mu.Unlock()

	s.http.Close()
	for _, sock := range socks {
		sock.drop()
	}
	s.handlers.Wait()
	<-s.serving
}

// MewsTOML returns the start of a mews-keyd [mews] table that points at
// this server with its tokens; append more [mews] keys or other tables.
func (s *Server) MewsTOML() string {
	return fmt.Sprintf("[mews]\nenvironment = \"custom\"\napi_url = %q\nws_url = %q\nclient_token = %q\naccess_token = %q\n",
		s.URL(), s.WSURL(), ClientToken, AccessToken)
}

// serveHTTP routes to the API and the WebSocket endpoint.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()

	switch {
	case r.URL.Path == "/ws/connector":
		s.serveWS(w, r)
	case strings.HasPrefix(r.URL.Path, apiPrefix):
		s.serveAPI(w, r)
	default:
		http.NotFound(w, r)
	}
}

// Wait blocks until cond returns true or ctx ends. cond runs without the
// server's lock held (it may call any method) and is re-evaluated after
// every change: request served, socket connected or gone, command or
// reservation changed.
func (s *Server) Wait(ctx context.Context, cond func(s *Server) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		// ch was taken before evaluating, so a change during cond is not missed.
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes every Wait; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// newID returns a random UUID (version 4), the shape of Mews identifiers.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// utcNow is now in UTC, in whole seconds as Mews gives times, so values
// survive a JSON round trip unchanged.
func (s *Server) utcNow() time.Time {
	return s.now().UTC().Truncate(time.Second)
}

// store is the simulated Mews data, guarded by Server.mu.
type store struct {
	devices      ordered[mews.Device]
	resources    ordered[stamped[mews.Resource]]
	customers    ordered[stamped[mews.Customer]]
	reservations ordered[mews.Reservation]
	commands     ordered[*command]
	tokens       ordered[*tokenRecord]
	companions   ordered[mews.Companionship]
}

func newStore() store {
	return store{
		devices:      newOrdered[mews.Device](),
		resources:    newOrdered[stamped[mews.Resource]](),
		customers:    newOrdered[stamped[mews.Customer]](),
		reservations: newOrdered[mews.Reservation](),
		commands:     newOrdered[*command](),
		tokens:       newOrdered[*tokenRecord](),
		companions:   newOrdered[mews.Companionship](),
	}
}

// ordered keeps items by id in insertion order: cursors need a stable order.
type ordered[T any] struct {
	ids  []string
	byID map[string]T
}

func newOrdered[T any]() ordered[T] {
	return ordered[T]{byID: make(map[string]T)}
}

func (o *ordered[T]) put(id string, v T) {
	if _, ok := o.byID[id]; !ok {
		o.ids = append(o.ids, id)
	}
	o.byID[id] = v
}

func (o *ordered[T]) remove(id string) {
	if _, ok := o.byID[id]; !ok {
		return
	}
	delete(o.byID, id)
	o.ids = slices.DeleteFunc(o.ids, func(x string) bool { return x == id })
}

func (o *ordered[T]) get(id string) (T, bool) {
	v, ok := o.byID[id]
	return v, ok
}

// all returns the items in insertion order.
func (o *ordered[T]) all() []T {
	out := make([]T, 0, len(o.ids))
	for _, id := range o.ids {
		out = append(out, o.byID[id])
	}
	return out
}
