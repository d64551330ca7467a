package mews

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"
)

// Defaults of ClientConfig.
const (
	DefaultRequestLimit  = 200              // Mews's published limit per access token ...
	DefaultRequestWindow = 30 * time.Second // ... per this window
	DefaultMaxElapsed    = 2 * time.Minute
	DefaultRetryInitial  = 500 * time.Millisecond
	defaultHTTPTimeout   = 60 * time.Second
	defaultClientName    = "mews-keyd"
	maxResponseBytes     = 64 << 20 // far above 1000 reservations; stops a broken proxy from eating memory
	maxErrorBytes        = 64 << 10

	// MaxPause bounds any pause Mews asks for with Retry-After. Its limit
	// window is 30 s, so a longer request is a fault; obeying an hour
	// would freeze key cutting until the watchdog stepped in.
	MaxPause = 60 * time.Second
)

// Log field names.
const (
	logOp        = "op"
	logStatus    = "status"
	logDuration  = "duration"
	logRequestID = "request_id"
	logAttempt   = "attempt"
	logWait      = "wait"
)

// ClientConfig configures a Client. Zero values take the defaults.
type ClientConfig struct {
	APIURL      string // e.g. Production.API; http:// only for loopback
	ClientToken Secret
	AccessToken Secret
	Client      string // name and version sent to Mews, e.g. "mews-keyd 1.2.3"

	// Mews allows RequestLimit requests per RequestWindow per access token.
	RequestLimit  int
	RequestWindow time.Duration

	// PageSize is the number of items asked per page of a paginated
	// operation, 1..1000 (default 1000, the fewest requests).
	PageSize int

	HTTPClient *http.Client // default: one with a 60 s timeout per attempt
	Logger     zerolog.Logger

	// MaxElapsed bounds the retries of one call; the context's deadline
	// bounds it too. RetryInitial is the first backoff step (tests shorten it).
	MaxElapsed   time.Duration
	RetryInitial time.Duration

	// OnRequest, if set, is called after every HTTP attempt, e.g. to count
	// requests for metrics. status is 0 when no answer came. It must be quick.
	OnRequest func(op string, status int, d time.Duration)
}

// Client calls the Mews Connector API for one access token. It is safe for
// concurrent use; all callers share one rate limiter.
type Client struct {
	base    string // ends in "/api/connector/v1/"
	ct, at  Secret
	name    string
	http    *http.Client
	limiter *Limiter
	log     zerolog.Logger

	pageSize     int
	maxElapsed   time.Duration
	retryInitial time.Duration
	onRequest    func(string, int, time.Duration)

	// skew is Mews's clock minus ours, from the last 200 answer with a
	// Date header; nil until there was one.
	skew atomic.Pointer[time.Duration]
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := CheckURL(cfg.APIURL, "https")
	if err != nil {
		return nil, fmt.Errorf("mews API: %w", err)
	}
	if cfg.ClientToken == "" || cfg.AccessToken == "" {
		return nil, errors.New("mews API: ClientToken and AccessToken are required")
	}
	limiter, err := NewLimiter(orDefault(cfg.RequestLimit, DefaultRequestLimit), orDefault(cfg.RequestWindow, DefaultRequestWindow))
	if err != nil {
		return nil, fmt.Errorf("mews API: %w", err)
	}
	c := &Client{
		base:         strings.TrimRight(u.String(), "/") + "/api/connector/v1/",
		ct:           cfg.ClientToken,
		at:           cfg.AccessToken,
		name:         cfg.Client,
		http:         cfg.HTTPClient,
		limiter:      limiter,
		log:          cfg.Logger,
		pageSize:     min(orDefault(cfg.PageSize, maxBatch), maxBatch),
		maxElapsed:   orDefault(cfg.MaxElapsed, DefaultMaxElapsed),
		retryInitial: orDefault(cfg.RetryInitial, DefaultRetryInitial),
		onRequest:    cfg.OnRequest,
	}
	if c.name == "" {
		c.name = defaultClientName
	}
	if c.http == nil {
		// An own transport, so Close drops only this client's connections.
		c.http = &http.Client{Timeout: defaultHTTPTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Close drops the client's idle connections. Calls in progress are not
// affected; ending them is their contexts' job.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// ClockSkew returns Mews's clock minus ours (positive: Mews is ahead), as
// measured from the Date header of the most recent successful answer
// against our clock at the middle of that request. known is false until an
// answer carried a readable Date. Date has whole seconds, so the skew is
// only good to about a second (plus half the request's round trip); it is
// meant for telling a PC clock that is minutes off, not for fine timing.
func (c *Client) ClockSkew() (skew time.Duration, known bool) {
	if p := c.skew.Load(); p != nil {
		return *p, true
	}
	return 0, false
}

// Limiter returns the rate limiter shared by the client's calls.
func (c *Client) Limiter() *Limiter { return c.limiter }

// call sends one operation and decodes its answer into out (nil: ignore
// it), retrying what may succeed later with exponential backoff and jitter,
// within c.maxElapsed and ctx. idempotent says whether the operation may be
// repeated after Mews might already have carried it out; if not, only
// answers that prove it did not (429, or a connection never made) are
// retried, so a retry can never create a second key command or token.
func (c *Client) call(ctx context.Context, op string, idempotent bool, in, out any) error {
	body, err := c.encode(in)
	if err != nil {
		return fmt.Errorf("mews %s: encode request: %w", op, err)
	}
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(c.retryInitial),
		backoff.WithMaxInterval(30*time.Second),
		backoff.WithMaxElapsedTime(0), // the budget is checked below, Retry-After included
	)
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := c.attempt(ctx, op, attempt, body, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("mews %s: %w", op, ctx.Err())
		}
		if onlyOnce(ctx) {
			return err
		}
		if l, ok := in.(lightener); ok && errors.Is(err, ErrTimeout) && l.lighten() {
			// Mews found it too heavy: the same request would fail again.
			if body, err = c.encode(in); err != nil {
				return fmt.Errorf("mews %s: encode request: %w", op, err)
			}
			c.log.Warn().Str(logOp, op).Int(logAttempt, attempt).Msg("mews request too heavy, asking for less")
			continue
		}
		if !retryable(err, idempotent) {
			return err
		}
		wait := b.NextBackOff()
		var apiErr *APIError
		rateLimited := errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests
		if rateLimited && apiErr.RetryAfter > 0 {
			wait = min(apiErr.RetryAfter, MaxPause) // attempt already paused the limiter for it
		}
		if time.Since(start)+wait > c.maxElapsed {
			return fmt.Errorf("%w (gave up after %d attempts in %s)", err, attempt, time.Since(start).Round(time.Millisecond))
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("%w (gave up after %d attempts: the deadline comes before the next)", err, attempt)
		}
		c.log.Warn().Str(logOp, op).Err(err).Int(logAttempt, attempt).Dur(logWait, wait).Msg("mews request failed, retrying")
		if rateLimited {
			if apiErr.RetryAfter <= 0 {
				c.limiter.Pause(wait)
			}
			continue // the limiter holds the next attempt back
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("mews %s: %w (last error: %w)", op, ctx.Err(), err)
		case <-t.C:
		}
	}
}

type onceKey struct{}

// WithoutRetries marks the calls made with the returned context as asking
// once: the first failure comes back as it is, however retryable. It is for
// `mews-keyd check`, which must answer within seconds and say what went
// wrong, where the daemon's calls keep retrying within MaxElapsed.
func WithoutRetries(ctx context.Context) context.Context {
	return context.WithValue(ctx, onceKey{}, true)
}

func onlyOnce(ctx context.Context) bool {
	once, _ := ctx.Value(onceKey{}).(bool)
	return once
}

// lightener is a request that can ask for less, e.g. a smaller page, when
// Mews answers 408 (too heavy); false when it cannot.
type lightener interface{ lighten() bool }

func retryable(err error, idempotent bool) bool {
	if idempotent {
		return Retryable(err)
	}
	if errors.Is(err, ErrRateLimited) {
		return true
	}
	var te *transportError
	return errors.As(err, &te) && te.unsent
}

// encode builds the body: the authentication fields followed by in's. The
// tokens are spliced in here, the one place they leave their Secret type.
func (c *Client) encode(in any) ([]byte, error) {
	auth, err := json.Marshal(struct {
		ClientToken string
		AccessToken string
		Client      string
	}{c.ct.Reveal(), c.at.Reveal(), c.name})
	if err != nil {
		return nil, err
	}
	params := []byte("{}")
	if in != nil {
		if params, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	if len(params) < 2 || params[0] != '{' {
		return nil, errors.New("parameters are not a JSON object")
	}
	if string(params) == "{}" {
		return auth, nil
	}
	// auth without its closing brace, a comma, params without its opening one.
	body := append(auth[:len(auth)-1], ',')
	return append(body, params[1:]...), nil
}

func (c *Client) attempt(ctx context.Context, op string, attempt int, body []byte, out any) error {
	release, err := c.limiter.Wait(ctx)
	if err != nil {
		return err
	}
	defer release()

	// WroteRequest runs on the transport's goroutine.
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, c.base+op, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("mews %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	began := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe(op, 0, began)
		c.log.Debug().Str(logOp, op).Int(logAttempt, attempt).Dur(logDuration, time.Since(began)).Err(err).Msg("mews request")
		return &transportError{op: op, err: err, unsent: !sent.Load()}
	}
	defer resp.Body.Close()
	requestID := resp.Header.Get("Request-Id")

	if resp.StatusCode != http.StatusOK {
		apiErr := c.apiError(op, resp)
		if apiErr.RetryAfter > 0 {
			// The limit is per access token: hold every caller back at
			// once, before anyone else can send.
			c.limiter.Pause(apiErr.RetryAfter)
		}
		c.observe(op, resp.StatusCode, began)
		c.log.Debug().Str(logOp, op).Int(logAttempt, attempt).Int(logStatus, resp.StatusCode).Dur(logDuration, time.Since(began)).Str(logRequestID, apiErr.RequestID).Msg("mews request")
		return apiErr
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	serverTime := c.noteDate(resp.Header.Get("Date"), began, time.Now())
	c.observe(op, resp.StatusCode, began)
	c.log.Debug().Str(logOp, op).Int(logAttempt, attempt).Int(logStatus, resp.StatusCode).Dur(logDuration, time.Since(began)).Str(logRequestID, requestID).Msg("mews request")
	switch {
	case err != nil:
		// Mews answered, so the operation happened; only reads may repeat.
		return &transportError{op: op, err: fmt.Errorf("read response: %w", err)}
	case len(data) > maxResponseBytes:
		return fmt.Errorf("mews %s: %w: larger than %d bytes (request %s)", op, ErrResponse, maxResponseBytes, requestID)
	case out == nil:
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("mews %s: %w: %v (request %s)", op, ErrResponse, err, requestID)
	}
	if d, ok := out.(dated); ok {
		d.setServerTime(serverTime)
	}
	return nil
}

// dated is an answer that keeps Mews's time of answering, e.g. so that a
// command's age can be measured by Mews's clock rather than the PC's.
type dated interface{ setServerTime(time.Time) }

// noteDate reads a successful answer's Date header (zero time if absent or
// unreadable) and, if readable, records the clock skew against the middle
// of the request. Date is Mews's time cut to the second, so Mews's clock
// was half a second past it on average.
func (c *Client) noteDate(header string, began, answered time.Time) time.Time {
	date, err := http.ParseTime(header)
	if err != nil {
		return time.Time{}
	}
	mid := began.Add(answered.Sub(began) / 2)
	skew := date.Add(time.Second / 2).Sub(mid)
	c.skew.Store(&skew)
	return date.UTC()
}

func (c *Client) observe(op string, status int, began time.Time) {
	if c.onRequest != nil {
		c.onRequest(op, status, time.Since(began))
	}
}

// apiError reads a Mews error answer. Only Message is kept; should Mews ever
// echo a token in it, the token is cut out.
func (c *Client) apiError(op string, resp *http.Response) *APIError {
	e := &APIError{Op: op, Status: resp.StatusCode, RequestID: resp.Header.Get("Request-Id")}
	var body struct {
		Message   string `json:"Message"`
		RequestID string `json:"RequestId"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if json.Unmarshal(data, &body) == nil {
		e.Message = c.scrub(body.Message)
		if e.RequestID == "" {
			e.RequestID = body.RequestID
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter, _ = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

func (c *Client) scrub(s string) string {
	for _, tok := range []Secret{c.ct, c.at} {
		s = strings.ReplaceAll(s, tok.Reveal(), redacted)
	}
	return s
}
