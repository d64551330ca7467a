package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/netcause"
)

// step is how far an HTTP exchange has got.
type step int

const (
	stepStart      step = iota
	stepResolving       // DNS lookup under way
	stepConnecting      // TCP connect under way
	stepTLS             // connected, TLS handshake under way
	stepAnswer          // connected (and TLS done), the request waits for its answer
)

// phases follows one HTTP exchange (an API call or a WebSocket handshake)
// through httptrace, so that a timeout can say what did not answer: DNS,
// the connect, the TLS handshake or the server. A deadline alone only
// says that time ran out.
type phases struct {
	mu        sync.Mutex
	step      step
	host      string    // the name being resolved
	since     time.Time // when the current step began
	connected time.Time
}

// follow returns ctx with the tracing hooks.
func (p *phases) follow(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart: func(i httptrace.DNSStartInfo) {
			p.set(stepResolving, func() { p.host = i.Host })
		},
		ConnectStart: func(string, string) { p.set(stepConnecting, nil) },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				p.set(stepAnswer, func() { p.connected = time.Now() })
			}
		},
		TLSHandshakeStart: func() { p.set(stepTLS, nil) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				p.set(stepAnswer, nil)
			}
		},
	})
}

func (p *phases) set(s step, also func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step, p.since = s, time.Now()
	if also != nil {
		also()
	}
}

// explain words err, the failure of an exchange with addr; awaited is what
// the server owes once connected ("the request").
func (p *phases) explain(addr, awaited string, err error) (netcause.Cause, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	waited := time.Since(p.since)
	if netcause.IsTimeout(err) {
		switch p.step {
		case stepResolving:
			return netcause.Explain(addr, waited, &net.DNSError{Name: p.host, Err: "timeout", IsTimeout: true})
		case stepConnecting:
			return netcause.Timeout, netcause.NoAnswer(addr, waited)
		case stepTLS:
			return netcause.Silent, netcause.Silence(addr, "the TLS handshake", time.Since(p.connected))
		case stepAnswer:
			return netcause.Silent, netcause.Silence(addr, awaited, time.Since(p.connected))
		}
	}
	cause, words := netcause.Explain(addr, waited, err)
	if cause == netcause.Other && p.step >= stepTLS {
		// Not a failure to connect: the exchange failed after it.
		words = fmt.Sprintf("the exchange with %s failed: %v", addr, err)
	}
	return cause, words
}

// hostPort is the address rawURL connects to.
func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	if u.Port() != "" {
		return u.Host
	}
	port := "443"
	if u.Scheme == "http" || u.Scheme == "ws" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// proxyFor returns the proxy the environment (HTTPS_PROXY and friends)
// sends rawURL through, password hidden; "" for none. A WebSocket goes
// through the proxy of its https:// form.
func proxyFor(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	case "ws":
		u.Scheme = "http"
	}
	proxy, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	if err != nil || proxy == nil {
		return ""
	}
	return proxy.Redacted()
}
