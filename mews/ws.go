package mews

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
)

// wsPath is the WebSocket endpoint below the WebSocket base address.
const wsPath = "ws/connector"

// wsReadLimit is the largest frame accepted. Mews frames hold a handful of ids;
// anything near this size is not a Mews frame, and coder/websocket's 32 KiB
// default would be an accident rather than a decision.
const wsReadLimit = 1 << 20

// Defaults of WSConfig.
const (
	DefaultPingInterval     = 20 * time.Second
	DefaultPingTimeout      = 15 * time.Second
	DefaultMinBackoff       = 500 * time.Millisecond
	DefaultMaxBackoff       = 60 * time.Second
	DefaultStableAfter      = time.Minute
	DefaultAuthRetry        = 5 * time.Minute
	DefaultHandshakeTimeout = 30 * time.Second
)

// wsJitter spreads reconnects of many daemons after a Mews outage. The
// exponential interval is capped at MaxBackoff/(1+wsJitter) so that the
// jittered pause never exceeds MaxBackoff.
const (
	wsJitter     = 0.5
	wsMultiplier = 2
)

// Log field names of the WebSocket client.
const (
	wsLogComponent    = "component"
	wsLogURL          = "url"
	wsLogFailures     = "failed_attempts"
	wsLogRetryIn      = "retry_in"
	wsLogConnectedFor = "connected_for"
	wsLogFrameLen     = "frame_len"
	wsLogFrameHead    = "frame_head"
	wsLogSkipped      = "skipped"
	wsLogSuppressed   = "suppressed"
	wsLogReason       = "reason"
	wsLogIndex        = "index"
	wsLogEvents       = "events"
)

// wsFrameHeadLen bounds how much of a bad frame reaches the debug log.
const wsFrameHeadLen = 32

// ErrHandshakeUnauthorized means Mews answered the WebSocket handshake with
// 401 or 403: the ClientToken or AccessToken was refused. Retrying quickly
// cannot help; an operator has to fix the tokens.
var ErrHandshakeUnauthorized = errors.New("mews refused the WebSocket handshake: ClientToken or AccessToken is invalid or lacks permission")

// ErrWSUnresponsive means the connection was given up because Mews did not
// answer a ping within PingTimeout: the link is dead even if TCP did not say so.
var ErrWSUnresponsive = errors.New("mews WebSocket did not answer a ping in time")

// WSConfig configures a WSClient. Zero durations take the defaults above.
type WSConfig struct {
	// URL is the WebSocket base address, e.g. Production.WS; the endpoint
	// path /ws/connector is appended. ws:// is accepted for loopback only.
	URL         string
	ClientToken Secret
	AccessToken Secret
	Logger      zerolog.Logger

	// PingInterval and PingTimeout bound how long a dead link goes
	// unnoticed: at most PingInterval+PingTimeout (35 s by default).
	PingInterval time.Duration
	PingTimeout  time.Duration

	// Reconnect schedule: exponential with jitter between MinBackoff and
	// MaxBackoff, back to MinBackoff once a connection stayed up StableAfter.
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	StableAfter time.Duration
	// AuthRetry is the pause after Mews refused the tokens.
	AuthRetry time.Duration
	// HandshakeTimeout bounds one dial including TLS and the upgrade.
	HandshakeTimeout time.Duration

	// HTTPClient carries the handshake (proxies, TLS roots). nil: a private
	// client cloned from http.DefaultTransport.
	HTTPClient *http.Client
}

// WSHandler receives what happens on the connection. Every field may be
// nil. All callbacks run on Run's single reading goroutine, one at a time
// and in order, so they must return quickly: while one runs, no frame is
// read and pongs are not processed, and a callback blocked longer than
// PingTimeout costs the connection. Hand work off to a channel or goroutine.
type WSHandler struct {
	// OnConnect is called after every successful (re)connection, before the
	// first event of that connection. Events created while disconnected are
	// never replayed, so this is where to catch up (commands/getAllActive).
	OnConnect func()
	// OnEvents receives the usable events of one frame, in frame order.
	// The slice is not reused by the client.
	OnEvents func([]Event)
	// OnDisconnect is called exactly once for every OnConnect, when that
	// connection ends; err says why (context.Canceled on shutdown).
	// Failed connection attempts are reported through Status and the log.
	OnDisconnect func(err error)
}

// WSStatus is a snapshot for health endpoints.
type WSStatus struct {
	Connected bool
	// Since is when the current state (connected or not) began.
	Since     time.Time
	LastEvent time.Time
	// Reconnects counts successful connections after the first one.
	Reconnects int
	// LastError describes why the last connection or attempt failed; it
	// is kept after a successful reconnect, as history for the operator.
	LastError string
}

// WSClient keeps one WebSocket connection to Mews open and reconnects it.
type WSClient struct {
	cfg     WSConfig
	url     string
	header  http.Header
	client  *http.Client
	log     zerolog.Logger
	running atomic.Bool
	// warn is touched by the reading goroutine only; it lives here so that
	// a peer sending garbage on every new connection stays rate-limited.
	warn wsWarnLimiter
	// renew carries Reconnect's request to the live connection.
	renew chan struct{}

	mu          sync.Mutex
	status      WSStatus
	connections int
}

// NewWSClient validates cfg and fills in defaults. It does not connect.
func NewWSClient(cfg WSConfig) (*WSClient, error) {
	base, err := CheckURL(cfg.URL, "wss")
	if err != nil {
		return nil, fmt.Errorf("websocket config: %w", err)
	}
	for name, tok := range map[string]Secret{"ClientToken": cfg.ClientToken, "AccessToken": cfg.AccessToken} {
		if err := checkCookieToken(tok.Reveal()); err != nil {
			return nil, fmt.Errorf("websocket config: %s %w", name, err)
		}
	}
	setDefault(&cfg.PingInterval, DefaultPingInterval)
	setDefault(&cfg.PingTimeout, DefaultPingTimeout)
	setDefault(&cfg.MinBackoff, DefaultMinBackoff)
	setDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	setDefault(&cfg.StableAfter, DefaultStableAfter)
	setDefault(&cfg.AuthRetry, DefaultAuthRetry)
	setDefault(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	if cfg.MinBackoff > cfg.MaxBackoff {
		return nil, fmt.Errorf("websocket config: MinBackoff %s exceeds MaxBackoff %s", cfg.MinBackoff, cfg.MaxBackoff)
	}
	client := cfg.HTTPClient
	if client == nil {
		// A private transport, so closing its idle connections when Run
		// ends cannot disturb anyone else's.
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	w := &WSClient{
		cfg: cfg,
		url: base.JoinPath(wsPath).String(),
		// Mews refuses the cookies unless they read exactly like this, so
		// the header is built by hand rather than through a cookie jar.
		header: http.Header{"Cookie": {"ClientToken=" + cfg.ClientToken.Reveal() + "; AccessToken=" + cfg.AccessToken.Reveal()}},
		client: client,
		renew:  make(chan struct{}, 1),
	}
	w.log = cfg.Logger.With().Str(wsLogComponent, "mews-ws").Str(wsLogURL, w.url).Logger()
	w.status.Since = time.Now()
	return w, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// checkCookieToken refuses what cannot travel as a cookie value (RFC 6265
// cookie-octet): such a token would silently corrupt the Cookie header.
// The token itself never appears in the error.
func checkCookieToken(tok string) error {
	if tok == "" {
		return errors.New("is empty")
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return fmt.Errorf("contains a character not allowed in a cookie (position %d)", i+1)
		}
	}
	return nil
}

// Status returns a snapshot of the connection state; safe for concurrent use.
func (w *WSClient) Status() WSStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// CheckHandshake dials once, closes the connection normally and reports
// whether the handshake succeeded; for `mews-keyd check`. A refused token
// is ErrHandshakeUnauthorized.
func (w *WSClient) CheckHandshake(ctx context.Context) error {
	defer w.client.CloseIdleConnections()
	conn, err := w.dial(ctx)
	if err != nil {
		return err
	}
	// Close waits for the peer's close frame, which only a reader sees.
	conn.CloseRead(context.Background())
	if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		return fmt.Errorf("close websocket: %w", err)
	}
	return nil
}

// ErrReconnectRequested is why a connection that Reconnect renewed ended
// (WSHandler.OnDisconnect).
var ErrReconnectRequested = errors.New("reconnect requested")

// Reconnect closes the current connection with a normal closure and opens
// a new one at once, without backoff: Mews's device-integration guide asks
// for a fresh connection when the devices a connector serves change. While
// disconnected it does nothing; the next connection is fresh anyway.
func (w *WSClient) Reconnect() {
	select {
	case w.renew <- struct{}{}:
	default:
	}
}

// Run keeps the connection open until ctx is done, reconnecting after every
// failure; it never gives up on its own. When ctx is done it closes the
// connection with a normal closure (waiting at most about 10 s for a dead
// peer) and returns nil. Run must not be called concurrently with itself.
func (w *WSClient) Run(ctx context.Context, h WSHandler) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("websocket: Run is already running")
	}
	defer w.running.Store(false)
	defer w.client.CloseIdleConnections()

	sched := newWSSchedule(w.cfg)
	failures := 0 // consecutive attempts that never connected
	for {
		connectedFor, err := w.session(ctx, h)
		if ctx.Err() != nil {
			w.setDisconnected(nil)
			return nil
		}
		w.setDisconnected(err)
		if errors.Is(err, ErrReconnectRequested) {
			w.log.Info().Msg("mews websocket reconnecting as asked")
			continue
		}
		wait := sched.next(connectedFor)
		msg := "mews websocket connection lost, reconnecting"
		if connectedFor == 0 {
			failures++
			msg = "mews websocket connection attempt failed, retrying"
		} else {
			failures = 0
		}
		ev := w.log.Warn()
		switch {
		case errors.Is(err, ErrHandshakeUnauthorized):
			wait = w.cfg.AuthRetry
			ev = w.log.Error()
			msg = "Mews refused the WebSocket tokens: check ClientToken and AccessToken; retrying slowly"
		case errors.Is(err, websocket.ErrMessageTooBig):
			msg = fmt.Sprintf("mews websocket frame larger than %d bytes refused (closed with status 1009), reconnecting", wsReadLimit)
		}
		ev.Err(err).Int(wsLogFailures, failures).Dur(wsLogConnectedFor, connectedFor).Dur(wsLogRetryIn, wait).Msg(msg)

		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session dials, serves one connection until it ends and reports how long
// it was up (0 if the dial failed) and why it ended.
func (w *WSClient) session(ctx context.Context, h WSHandler) (time.Duration, error) {
	conn, err := w.dial(ctx)
	if err != nil {
		return 0, err
	}
	conn.SetReadLimit(wsReadLimit)
	// A renewal asked for while disconnected is served by this connection.
	select {
	case <-w.renew:
	default:
	}
	start := w.setConnected()
	w.log.Info().Msg("mews websocket connected")
	if h.OnConnect != nil {
		h.OnConnect()
	}

	// The long read must not end with ctx: a cancelled read makes
	// coder/websocket drop the socket without a close frame. Nor does it
	// take a cancellable context at all, which costs a watcher per read.
	// The pinger ends it by closing the connection: properly on shutdown,
	// at once (with ErrWSUnresponsive as connCtx's cause) when the peer is
	// dead.
	connCtx, cancelConn := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelConn(nil)
	readerDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.keepAlive(ctx, conn, readerDone, cancelConn) })

	err = w.readLoop(conn, h)
	close(readerDone)
	wg.Wait()
	// Release the socket whatever ended the read; a no-op after Close.
	_ = conn.CloseNow()

	switch cause := context.Cause(connCtx); {
	case ctx.Err() != nil:
		err = ctx.Err()
	case cause != nil:
		err = cause
	}
	if h.OnDisconnect != nil {
		h.OnDisconnect(err)
	}
	return time.Since(start), err
}

// dial performs the handshake, translating a refused token into
// ErrHandshakeUnauthorized.
func (w *WSClient) dial(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, w.cfg.HandshakeTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, w.url, &websocket.DialOptions{
		HTTPClient: w.client,
		HTTPHeader: w.header.Clone(),
	})
	if err == nil {
		return conn, nil
	}
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return nil, fmt.Errorf("websocket handshake: HTTP %d: %w", resp.StatusCode, ErrHandshakeUnauthorized)
		case http.StatusSwitchingProtocols:
		default:
			// The Request-Id lets Mews support find the refusal.
			if id := resp.Header.Get("Request-Id"); id != "" {
				return nil, fmt.Errorf("websocket handshake: HTTP %d (Request-Id %s): %w", resp.StatusCode, id, err)
			}
			return nil, fmt.Errorf("websocket handshake: HTTP %d: %w", resp.StatusCode, err)
		}
	}
	return nil, fmt.Errorf("websocket handshake: %w", err)
}

// keepAlive pings while the reader runs and closes the connection on
// shutdown. A ping error other than a missing pong means the connection is
// already closed, and the reader reports why.
func (w *WSClient) keepAlive(ctx context.Context, conn *websocket.Conn, readerDone <-chan struct{}, cancelConn context.CancelCauseFunc) {
	t := time.NewTicker(w.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-readerDone:
			return
		case <-ctx.Done():
			w.closeNormally(conn, "shutting down")
			return
		case <-w.renew:
			w.closeNormally(conn, "reconnecting")
			cancelConn(ErrReconnectRequested)
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, w.cfg.PingTimeout)
		err := conn.Ping(pctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			w.closeNormally(conn, "shutting down")
			return
		case errors.Is(err, context.DeadlineExceeded):
			cancelConn(fmt.Errorf("%w (no pong within %s)", ErrWSUnresponsive, w.cfg.PingTimeout))
			_ = conn.CloseNow()
			return
		default:
			return
		}
	}
}

func (w *WSClient) closeNormally(conn *websocket.Conn, reason string) {
	if err := conn.Close(websocket.StatusNormalClosure, reason); err != nil {
		w.log.Debug().Err(err).Msg("mews websocket close handshake incomplete")
	}
}

// readLoop reads frames until the connection fails. Frames that cannot be
// used are logged and skipped: one bad frame must not cost the connection.
func (w *WSClient) readLoop(conn *websocket.Conn, h WSHandler) error {
	for {
		typ, data, err := conn.Read(context.Background())
		if err != nil {
			return fmt.Errorf("read websocket frame: %w", err)
		}
		if typ != websocket.MessageText {
			w.skipFrame(data, "binary frame")
			continue
		}
		events, skipped, err := DecodeFrame(data)
		if err != nil {
			w.skipFrame(data, err.Error())
			continue
		}
		if len(skipped) > 0 {
			if ok, suppressed := w.warn.allow(time.Now()); ok {
				w.log.Warn().Int(wsLogSkipped, len(skipped)).Int(wsLogEvents, len(events)).
					Int(wsLogIndex, skipped[0].Index).Str(wsLogReason, skipped[0].Reason).Int(wsLogSuppressed, suppressed).
					Msg("mews websocket events skipped")
			}
		}
		if len(events) == 0 {
			continue
		}
		w.setLastEvent()
		if h.OnEvents != nil {
			h.OnEvents(events)
		}
	}
}

func (w *WSClient) skipFrame(data []byte, reason string) {
	if ok, suppressed := w.warn.allow(time.Now()); ok {
		w.log.Warn().Str(wsLogReason, reason).Int(wsLogFrameLen, len(data)).Int(wsLogSuppressed, suppressed).
			Msg("mews websocket frame skipped")
	}
	w.log.Debug().Int(wsLogFrameLen, len(data)).Bytes(wsLogFrameHead, data[:min(len(data), wsFrameHeadLen)]).
		Msg("skipped frame starts with")
}

func (w *WSClient) setConnected() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.connections > 0 {
		w.status.Reconnects++
	}
	w.connections++
	w.status.Connected = true
	w.status.Since = now
	return now
}

func (w *WSClient) setDisconnected(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status.Connected {
		w.status.Connected = false
		w.status.Since = time.Now()
	}
	if err != nil {
		w.status.LastError = err.Error()
	}
}

func (w *WSClient) setLastEvent() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status.LastEvent = time.Now()
}
