// Package httpenc is the encoder driver that POSTs each key operation to a
// vendor's encoder server (SPEC §6): the same JSON as the exec driver, one
// request, one answer. It registers as "http".
package httpenc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/wire"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Log field names.
const (
	fieldEncoder        = "encoder"
	fieldOp             = "op"
	fieldIdempotencyKey = "idempotency_key"
	fieldStatus         = "status"
	fieldBody           = "body"
)

func init() {
	keys.Register("http", keys.DriverOf(func() Config { return Config{MaxResponseBytes: DefaultMaxResponseBytes} }, New))
}

// DefaultMaxResponseBytes bounds an answer unless configured.
const DefaultMaxResponseBytes = 1 << 20

// Config is the encoder's TOML table.
type Config struct {
	// URL receives the POSTs, unless UseCommandAPIURL is set.
	URL string `toml:"url"`
	// UseCommandAPIURL posts to the ApiUrl of each Mews command instead,
	// for vendors configured per key cutter in Mews.
	UseCommandAPIURL bool `toml:"use_command_api_url"`
	// APIURLPrefixes are the URLs a command's ApiUrl must start with (as
	// scheme, host and path), required with UseCommandAPIURL: whoever can
	// edit a key cutter in Mews must not be able to collect the headers.
	APIURLPrefixes []string `toml:"api_url_prefixes"`
	// Headers are sent with every request; they usually hold credentials.
	Headers Headers `toml:"headers"`
	// TLSCAFile adds the vendor's CA (PEM) to the system's trusted roots.
	TLSCAFile string `toml:"tls_ca_file"`
	// TLSInsecureSkipVerify turns off certificate checks: a last resort.
	TLSInsecureSkipVerify bool  `toml:"tls_insecure_skip_verify"`
	MaxResponseBytes      int64 `toml:"max_response_bytes"`
}

// Headers are extra request headers. Their values are treated as secrets:
// printing Headers shows only the names.
type Headers map[string]string

func (h Headers) String() string {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name+"=[redacted]")
	}
	slices.Sort(names)
	return "{" + strings.Join(names, " ") + "}"
}

// GoString keeps %#v from printing the values too.
func (h Headers) GoString() string { return "httpenc.Headers" + h.String() }

// Validate checks what TOML cannot.
func (c *Config) Validate() error {
	switch {
	case c.UseCommandAPIURL && c.URL != "":
		return errors.New("url: must be empty when use_command_api_url = true")
	case !c.UseCommandAPIURL && c.URL == "":
		return errors.New("url: required unless use_command_api_url = true")
	case c.URL != "":
		// Requests carry guest data and the headers credentials: plain
		// http only to this machine.
		if _, err := mews.CheckURL(c.URL, "https"); err != nil {
			return fmt.Errorf("url: %w", err)
		}
	}
	switch {
	case c.UseCommandAPIURL && len(c.APIURLPrefixes) == 0:
		return errors.New("api_url_prefixes: required when use_command_api_url = true: the URLs the key cutters' API URLs in Mews may start with (the headers go there)")
	case !c.UseCommandAPIURL && len(c.APIURLPrefixes) > 0:
		return errors.New("api_url_prefixes: only used with use_command_api_url = true")
	}
	if _, err := parsePrefixes(c.APIURLPrefixes); err != nil {
		return fmt.Errorf("api_url_prefixes: %w", err)
	}
	for name := range c.Headers {
		if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) {
			return fmt.Errorf("headers: %q is not a valid header name", name)
		}
	}
	if c.MaxResponseBytes <= 0 {
		return fmt.Errorf("max_response_bytes: must be positive, not %d", c.MaxResponseBytes)
	}
	return nil
}

const (
	who = "encoder server"
	// retryDelay separates the two attempts at a connection that was
	// refused: long enough for a restarting vendor service, short against
	// the receptionist's wait.
	retryDelay = 250 * time.Millisecond
)

// Encoder posts operations to the vendor's server, one at a time.
type Encoder struct {
	url       string
	prefixes  []urlPrefix // where a command's ApiUrl may point, when url is empty
	headers   http.Header
	maxAnswer int64
	client    *http.Client
	transport *http.Transport
	log       zerolog.Logger
	// station admits one operation at a time: the server drives one
	// encoder. A channel rather than a mutex so that waiting honours ctx.
	station chan struct{}
}

var (
	_ keys.Encoder = (*Encoder)(nil)
	_ keys.Updater = (*Encoder)(nil)
	_ keys.Revoker = (*Encoder)(nil)
)

// New returns an encoder posting to the configured server. It does not
// contact the server.
func New(cfg Config, env keys.Env) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	prefixes, err := parsePrefixes(cfg.APIURLPrefixes)
	if err != nil {
		return nil, fmt.Errorf("api_url_prefixes: %w", err)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file: no PEM certificate in %s", cfg.TLSCAFile)
		}
		tlsCfg.RootCAs = pool
	}
	if cfg.TLSInsecureSkipVerify {
		tlsCfg.InsecureSkipVerify = true
		env.Logger.Warn().Str(fieldEncoder, env.Name).
			Msg("tls_insecure_skip_verify is on: the encoder server's certificate is NOT checked, anyone on the network path can read guest data and credentials; use tls_ca_file instead")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	headers := make(http.Header, len(cfg.Headers)+3)
	headers.Set("Content-Type", "application/json")
	headers.Set("Accept", "application/json")
	headers.Set("User-Agent", "mews-keyd")
	for name, value := range cfg.Headers {
		headers.Set(name, value)
	}
	return &Encoder{
		url:       cfg.URL,
		prefixes:  prefixes,
		headers:   headers,
		maxAnswer: cfg.MaxResponseBytes,
		client: &http.Client{
			Transport: tr,
			// A redirected POST turns into a GET; an encoder server has no
			// business redirecting, so its answer is taken as it is.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: tr,
		log:       env.Logger,
		station:   make(chan struct{}, 1),
	}, nil
}

// Issue posts operation "issue".
func (e *Encoder) Issue(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, wire.Issue, req)
}

// Update posts operation "update".
func (e *Encoder) Update(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, wire.Update, req)
}

// Revoke posts operation "revoke".
func (e *Encoder) Revoke(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, wire.Revoke, req)
}

// Close drops idle connections to the server.
func (e *Encoder) Close() error {
	e.transport.CloseIdleConnections()
	return nil
}

func (e *Encoder) run(ctx context.Context, op wire.Operation, req keys.Request) (keys.Result, error) {
	began := time.Now()
	select {
	case e.station <- struct{}{}:
	case <-ctx.Done():
		return keys.Result{}, wire.NotStarted(ctx)
	}
	defer func() { <-e.station }()
	if ctx.Err() != nil {
		return keys.Result{}, wire.NotStarted(ctx)
	}

	target := e.url
	if target == "" {
		if req.APIURL == "" {
			return keys.Result{}, keys.Failf("the key cutter has no API URL in Mews")
		}
		u, err := mews.CheckURL(req.APIURL, "https")
		if err != nil {
			return keys.Result{}, &keys.Error{Msg: "the key cutter's API URL in Mews is not usable", Err: err}
		}
		if err := checkAPIURL(u, e.prefixes); err != nil {
			return keys.Result{}, err
		}
		target = req.APIURL
	}
	body, err := json.Marshal(wire.NewRequest(op, req))
	if err != nil {
		return keys.Result{}, keys.Failf("could not encode the request: %v", err)
	}
	resp, err := e.send(ctx, target, body, began)
	if err != nil {
		return keys.Result{}, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, e.maxAnswer+1))
	if err != nil {
		if ctx.Err() != nil {
			return keys.Result{}, wire.NoAnswer(ctx, who, began)
		}
		return keys.Result{}, &keys.Error{Msg: "lost the connection to the encoder server", MaybeCut: true, Err: transportErr(err)}
	}
	if int64(len(answer)) > e.maxAnswer {
		return keys.Result{}, wire.Invalid(who, fmt.Errorf("answer longer than %d bytes", e.maxAnswer))
	}
	return e.outcome(resp.StatusCode, answer, op, req)
}

// send posts body, once more if the first connection was refused: only then
// is it certain the server never saw the request.
func (e *Encoder) send(ctx context.Context, target string, body []byte, began time.Time) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return nil, keys.Failf("could not build the request: %v", err)
		}
		hreq.Header = e.headers.Clone()
		resp, err := e.client.Do(hreq)
		if err == nil {
			return resp, nil
		}
		unsent := notSent(err)
		switch {
		case ctx.Err() != nil && unsent:
			return nil, wire.NotStarted(ctx)
		case ctx.Err() != nil:
			return nil, wire.NoAnswer(ctx, who, began)
		case untrusted(err):
			return nil, &keys.Error{Msg: "the encoder server's certificate is not trusted", Err: transportErr(err)}
		case !unsent:
			return nil, &keys.Error{Msg: "lost the connection to the encoder server", MaybeCut: true, Err: transportErr(err)}
		case attempt == 2:
			return nil, &keys.Error{Msg: "cannot reach the encoder server at " + hreq.URL.Host, Err: transportErr(err)}
		}
		t := time.NewTimer(retryDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, wire.NotStarted(ctx)
		}
	}
}

func (e *Encoder) outcome(status int, answer []byte, op wire.Operation, req keys.Request) (keys.Result, error) {
	res, err := wire.ParseAnswer(answer)
	if status >= 200 && status < 300 {
		if errors.Is(err, wire.ErrNoValidAnswer) {
			return keys.Result{}, wire.Invalid(who, err)
		}
		return res, err
	}
	var ke *keys.Error
	if errors.As(err, &ke) && !ke.MaybeCut {
		return keys.Result{}, err // the vendor's own refusal explains the status best
	}
	// Bodies of error pages may echo the request, guest data included.
	e.log.Debug().Str(fieldOp, string(op)).Str(fieldIdempotencyKey, req.IdempotencyKey).Int(fieldStatus, status).
		Str(fieldBody, string(answer[:min(len(answer), 512)])).Msg("encoder server error answer")
	// A 4xx says the request was refused as it stood; after a 5xx or a
	// redirect nobody can tell what happened behind the server.
	return keys.Result{}, &keys.Error{
		Msg:      fmt.Sprintf("encoder server answered %d", status),
		MaybeCut: status < 400 || status >= 500,
	}
}

// notSent reports whether err happened before any byte of the request can
// have reached the server: no connection was made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect")
}

func untrusted(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname)
}

// transportErr drops the *url.Error layer: it repeats the URL, and URLs of
// vendor servers sometimes carry credentials in the query.
func transportErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
