package fias

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/netcause"
)

const (
	// linkVersion and linkFamily describe us in our LD record.
	linkVersion = "1.0"
	linkFamily  = "WW"
	// writeTimeout bounds one record write: records are tiny, so a write
	// that cannot finish means the peer stopped reading.
	writeTimeout = 10 * time.Second
	// stableAfter is how long a link must stay up before the reconnect
	// schedule starts again from its first step; a link that flaps keeps
	// backing off.
	stableAfter = time.Minute
)

// session is one connection to the lock system, or one opening of its
// serial port.
type session struct {
	conn stream
	peer string // the lock system's address, or the port, for logs
	// stop ends the session, with LE; a newer connection whose link start
	// completed calls it.
	stop context.CancelFunc
	// done is closed when the session has ended; a request waiting for its
	// answer on this session gives up then.
	done chan struct{}

	wmu      sync.Mutex
	lastSent time.Time

	mu sync.Mutex
	// fields holds the lock's LR field lists by record type, as of its last
	// complete link description.
	fields map[string][]string
}

// send writes one record. sent reports whether any byte left, which decides
// whether a failed key request may have reached the lock system.
func (s *session) send(r Record) (sent bool, err error) {
	return s.sendWithin(r, writeTimeout)
}

func (s *session) sendWithin(r Record, timeout time.Duration) (sent bool, err error) {
	buf := r.AppendFrame(nil)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return false, err
	}
	n, err := s.conn.Write(buf)
	s.lastSent = time.Now()
	return n > 0, err
}

func (s *session) quietFor(d time.Duration) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return time.Since(s.lastSent) >= d
}

func (s *session) fieldList(recordType string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fields[recordType]
	return f, ok
}

// link keeps the FIAS link to the lock system: connecting or accepting,
// link start, keep-alive and reconnection. Records that are not link
// management go to onRecord.
type link struct {
	cfg   *Config
	log   zerolog.Logger
	noisy zerolog.Logger // sampled, for complaints a bad peer can repeat endlessly
	loc   *time.Location
	// incoming brings the connections the listener accepted for us.
	incoming chan net.Conn
	allow    []netip.Prefix // who may connect
	onRecord func(*session, Record)
	// stopped is closed when the encoder closes; nobody waits for the link
	// after that.
	stopped <-chan struct{}

	mu      sync.Mutex
	cur     *session // the session whose link is up; nil while down
	since   time.Time
	changed chan struct{} // closed and replaced at every up/down change, and when why changes
	// While the link is down, what the dial loop is doing (step, since
	// stepSince) and why its last attempt failed, in words: Health says
	// "cannot connect to ...: no answer in 10s", not just "down".
	step      dialStep
	stepSince time.Time
	why       string
}

// dialStep is how far a connection attempt has got.
type dialStep int

const (
	stepIdle       dialStep = iota // between attempts
	stepConnecting                 // TCP connect, or opening the port, under way
	stepStarting                   // connected, our LS waits for the lock's link start
)

func newLink(cfg *Config, log zerolog.Logger, loc *time.Location, onRecord func(*session, Record)) *link {
	allow, _ := cfg.allowFrom() // validated
	return &link{
		cfg:      cfg,
		incoming: make(chan net.Conn),
		allow:    allow,
		log:      log,
		noisy:    log.Sample(&zerolog.BurstSampler{Burst: 3, Period: time.Minute}),
		loc:      loc,
		onRecord: onRecord,
		since:    time.Now(),
		changed:  make(chan struct{}),
	}
}

// run keeps the link until ctx is done.
func (l *link) run(ctx context.Context) {
	if l.cfg.Listen != "" {
		l.acceptLoop(ctx)
		return
	}
	l.dialLoop(ctx)
}

func (l *link) dialLoop(ctx context.Context) {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(l.cfg.ReconnectMin.D()),
		backoff.WithMaxInterval(l.cfg.ReconnectMax.D()),
		backoff.WithMaxElapsedTime(0),
	)
	failures := 0
	for {
		l.setStep(stepConnecting)
		began := time.Now()
		conn, err := l.dial(ctx)
		switch {
		case ctx.Err() != nil:
			if conn != nil {
				conn.Close()
			}
			return
		case err != nil:
			l.failed(l.dialFailure(time.Since(began), err))
			failures++
			ev := l.log.Debug()
			if failures == 1 {
				ev = l.log.Warn()
			}
			ev.Err(err).Int("attempt", failures).Msg("cannot reach lock system; retrying")
		default:
			l.log.Debug().Str(logAddr, l.peer()).Msg("connected to lock system")
			l.setStep(stepStarting)
			upAt, reason := l.serve(ctx, conn, l.peer())
			if !upAt.IsZero() {
				l.failed(reason)
				failures = 0
				if time.Since(upAt) >= stableAfter {
					b.Reset()
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			l.failed(l.notStarted(reason))
			failures++
			ev := l.log.Debug()
			if failures == 1 {
				ev = l.log.Warn()
			}
			ev.Str("reason", reason).Int("attempt", failures).Msg("lock system accepted the connection but did not start the link; retrying")
		}
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// acceptLoop serves every connection the listener hands us from an allowed
// address, each in a session of its own. A lock system that connects again
// has given up on its old connection, whatever our side still believes; but
// a connection takes the link over only when its link start completes
// (setUp), so a port scan, a peer that sends garbage or one that forges
// answers never disturbs the link, and serve drops it when it has not
// started the link in time.
func (l *link) acceptLoop(ctx context.Context) {
	var sessions sync.WaitGroup
	defer sessions.Wait()
	for {
		var conn net.Conn
		select {
		case <-ctx.Done():
			return
		case conn = <-l.incoming:
		}
		if !l.admit(conn) {
			continue
		}
		sessions.Go(func() {
			if upAt, reason := l.serve(ctx, conn, conn.RemoteAddr().String()); upAt.IsZero() && ctx.Err() == nil {
				l.noisy.Warn().Str(logAddr, conn.RemoteAddr().String()).Str("reason", reason).
					Msg("a connection ended before it started the link")
			}
		})
	}
}

// admit closes a connection from an address allow_from does not list, at
// once and before a byte is sent: anyone else who could start the link
// could answer our key requests.
func (l *link) admit(conn net.Conn) bool {
	from := conn.RemoteAddr().String()
	if ap, err := netip.ParseAddrPort(from); err == nil && allowed(l.allow, ap.Addr()) {
		l.log.Info().Str(logAddr, from).Msg("lock system connected")
		return true
	}
	// Sampled: a port scan must not flood the log.
	l.noisy.Warn().Str(logAddr, from).Msg("refused a connection from an address not in allow_from")
	conn.Close()
	return false
}

// serve runs the link over one connection until it breaks, the lock system
// ends it, the peer falls silent or does not start the link within
// keepalive, a newer connection takes the link over, or ctx is done. It returns when the link
// came up (zero if it never did) and why it ended.
func (l *link) serve(ctx context.Context, conn stream, peer string) (upAt time.Time, reason string) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	s := &session{conn: conn, peer: peer, stop: stop, done: make(chan struct{})}
	recs := make(chan Record)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() { readErr <- l.read(conn, recs, quit) })

	reason = "connection closed"
	defer func() {
		close(quit)
		conn.Close()
		reader.Wait()
		// Down before done: a request that gives up on this session must
		// not find it still up when it tries again.
		l.setDown(s, reason)
		close(s.done)
	}()

	keepalive := l.cfg.Keepalive.D()
	h := handshake{awaiting: true}
	if _, err := s.send(l.stamp(NewRecord("LS"))); err != nil {
		reason = "link start failed: " + err.Error()
		return upAt, reason
	}
	timer := time.NewTimer(keepalive)
	defer timer.Stop()
	probing := true
	for {
		select {
		case <-ctx.Done():
			// Best effort, and brief: tell the lock system this is an orderly
			// end, without letting a peer that stopped reading hold up Close.
			s.sendWithin(l.stamp(NewRecord("LE")), time.Second)
			reason = "closed"
			return upAt, reason
		case err := <-readErr:
			reason = "connection lost: " + err.Error()
			return upAt, reason
		case r := <-recs:
			end, err := l.handle(s, r, &h)
			if err != nil {
				reason = "write failed: " + err.Error()
				return upAt, reason
			}
			if end {
				reason = "lock system ended the link"
				return upAt, reason
			}
			if upAt.IsZero() {
				// Records before the link start completes do not keep the
				// connection: a peer that only sends noise goes the way of
				// one that sends nothing.
				if !l.isUp(s) {
					continue
				}
				upAt = time.Now()
			}
			timer.Reset(keepalive)
			probing = false
		case <-timer.C:
			if upAt.IsZero() {
				reason = "no link start within " + keepalive.String()
				return upAt, reason
			}
			if probing {
				reason = "no answer to LS within " + keepalive.String()
				return upAt, reason
			}
			h.awaiting = true
			if _, err := s.send(l.stamp(NewRecord("LS"))); err != nil {
				reason = "keep-alive failed: " + err.Error()
				return upAt, reason
			}
			probing = true
			timer.Reset(keepalive)
		}
	}
}

// read hands decoded records to recs until the connection fails or quit is
// closed.
func (l *link) read(conn io.Reader, recs chan<- Record, quit <-chan struct{}) error {
	fr := NewFrameReader(conn)
	var last FrameStats
	for {
		b, err := fr.Next()
		if err != nil {
			return err
		}
		if st := fr.Stats(); st != last {
			l.noisy.Warn().Int("garbage_bytes", st.Garbage-last.Garbage).Int("oversize_frames", st.Oversize-last.Oversize).
				Msg("discarded data from lock system that was not a FIAS record")
			last = st
		}
		r, err := DecodeRecord(b)
		if err != nil {
			l.noisy.Warn().Err(err).Msg("skipped a malformed record from lock system")
			continue
		}
		l.log.Debug().Stringer("record", r).Msg("received")
		select {
		case recs <- r:
		case <-quit:
			return nil
		}
	}
}

func (l *link) setUp(s *session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == s {
		return
	}
	if l.cur != nil {
		l.log.Info().Str(logAddr, s.peer).Msg("lock system started the link on a new connection; ending the old one")
		l.cur.stop()
	}
	l.cur, l.since = s, time.Now()
	l.step, l.why = stepIdle, ""
	l.signalLocked()
	l.log.Info().Str(logAddr, s.peer).Msg("lock system link up")
}

func (l *link) setDown(s *session, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != s {
		return
	}
	l.cur, l.since = nil, time.Now()
	l.signalLocked()
	if reason == "closed" {
		l.log.Info().Msg("lock system link closed")
		return
	}
	l.log.Warn().Str("reason", reason).Msg("lock system link down")
}

func (l *link) isUp(s *session) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur == s
}

// state returns the current session (nil while down) and a channel closed
// at the next change.
func (l *link) state() (*session, time.Time, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur, l.since, l.changed
}

// Causes of a request that found no link.
var (
	errOffline = errors.New("link down")
	errClosed  = errors.New("encoder closed")
)

// waitUp returns the session of an up link, waiting at most max for one.
func (l *link) waitUp(ctx context.Context, max time.Duration) (*session, error) {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		s, _, changed := l.state()
		if s != nil {
			return s, nil
		}
		select {
		case <-changed:
		case <-t.C:
			return nil, errOffline
		case <-l.stopped:
			return nil, errClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *link) health() keys.Health {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		return keys.Health{OK: true, Detail: "lock system link up", Since: l.since}
	}
	detail := "lock system link down"
	if why := l.whyDown(); why != "" {
		detail += ": " + why
	}
	return keys.Health{OK: false, Detail: detail, Since: l.since}
}

// whyDown says what keeps the link down: the attempt under way when it
// has been waiting, else how the last one failed. l.mu is held.
func (l *link) whyDown() string {
	waited := time.Since(l.stepSince)
	switch {
	case l.step == stepStarting:
		return l.silence("the link start (LS)", waited)
	case l.step == stepConnecting && l.why == "" && l.cfg.Serial == "":
		return netcause.NoAnswer(l.cfg.Address, waited)
	}
	return l.why
}

// setStep records how far the dial loop's attempt has got.
func (l *link) setStep(step dialStep) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.step, l.stepSince = step, time.Now()
	l.signalLocked()
}

// failed records why the last attempt failed, or why the link went down.
func (l *link) failed(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.step, l.why = stepIdle, why
	l.signalLocked()
}

// signalLocked wakes whoever waits for a change; l.mu is held.
func (l *link) signalLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}
