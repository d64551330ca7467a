// Package netcause says in an operator's words why a network connection
// failed: the host name does not resolve, the port refuses, nothing
// answers, the certificate is not trusted. `mews-keyd check` and the lock
// system drivers' health reports speak with it, so that the same fault
// reads the same everywhere.
package netcause

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Cause names a kind of failure in one word, for scripts (check --json).
type Cause string

// Causes.
const (
	DNS         Cause = "dns"         // the host name does not resolve
	Refused     Cause = "refused"     // nothing listens on the port, or a firewall refuses
	Timeout     Cause = "timeout"     // the connection got no answer: a firewall drops it, or the host is off
	Unreachable Cause = "unreachable" // no route to the host or its network
	Silent      Cause = "silent"      // connected, then no answer
	TLS         Cause = "tls"         // the certificate or the TLS handshake failed
	Proxy       Cause = "proxy"       // the proxy could not be reached
	Other       Cause = "network"     // anything else
)

// Explain words err, the failure of a connection to addr ("host:port") that
// took waited. A timeout is read as a connect that got no answer; a caller
// that knows the connection was made says so with Silence instead.
func Explain(addr string, waited time.Duration, err error) (Cause, string) {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "proxyconnect" {
		proxy := addr
		var inner *net.OpError
		if errors.As(opErr.Err, &inner) && inner.Addr != nil {
			proxy = inner.Addr.String()
		}
		_, words := Explain(proxy, waited, opErr.Err)
		return Proxy, "the proxy failed: " + words
	}
	if cause, words, ok := dnsWords(addr, waited, err); ok {
		return cause, words
	}
	if words, ok := tlsWords(addr, err); ok {
		return TLS, words
	}
	switch {
	case refused(err):
		return Refused, fmt.Sprintf("cannot connect to %s: connection refused (nothing listens on that port, or a firewall refuses)", addr)
	case IsTimeout(err):
		return Timeout, NoAnswer(addr, waited)
	case unreachable(err):
		return Unreachable, fmt.Sprintf("cannot connect to %s: no route to the host (check the network)", addr)
	}
	inner := err
	if opErr != nil {
		inner = opErr.Err // without "dial tcp ADDR:", said already
	}
	return Other, fmt.Sprintf("cannot connect to %s: %v", addr, inner)
}

// NoAnswer words a connect to addr that has had no answer for waited.
func NoAnswer(addr string, waited time.Duration) string {
	return fmt.Sprintf("cannot connect to %s: no answer in %s (a firewall drops the connection, or the host is down)", addr, Round(waited))
}

// Silence words a peer at addr that took the connection but did not answer
// what (e.g. "the link start (LS)") in waited.
func Silence(addr, what string, waited time.Duration) string {
	return fmt.Sprintf("%s accepted the connection but did not answer %s in %s", addr, what, Round(waited))
}

// IsTimeout reports whether err ended at a deadline, the context's or the
// connection's own, so that a caller that knows how far the exchange got
// can say what did not answer.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func dnsWords(addr string, waited time.Duration, err error) (Cause, string, bool) {
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		return "", "", false
	}
	host := dnsErr.Name
	if host == "" {
		host = hostOf(addr)
	}
	switch {
	case dnsErr.IsNotFound:
		return DNS, fmt.Sprintf("cannot resolve %s: no such host (check the name, DNS, or the proxy)", host), true
	case dnsErr.IsTimeout || errors.Is(err, context.DeadlineExceeded):
		return DNS, fmt.Sprintf("cannot resolve %s: no answer from DNS in %s (check DNS or the proxy)", host, Round(waited)), true
	}
	return DNS, fmt.Sprintf("cannot resolve %s: %s (check DNS or the proxy)", host, dnsErr.Err), true
}

// tlsWords names the certificate problem: who signed it, whom it is for,
// when it is valid; a proxy or firewall that inspects TLS is the usual
// cause of the first two.
func tlsWords(addr string, err error) (string, bool) {
	host := hostOf(addr)
	var (
		unknown x509.UnknownAuthorityError
		name    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
		verify  *tls.CertificateVerificationError
		alert   tls.AlertError
	)
	switch {
	case errors.As(err, &unknown):
		issuer := ""
		if unknown.Cert != nil {
			issuer = fmt.Sprintf(" (issued by %q)", unknown.Cert.Issuer.String())
		}
		return fmt.Sprintf("the certificate of %s is signed by an unknown authority%s: a proxy or firewall that inspects TLS? Its root certificate must be trusted by this machine", host, issuer), true
	case errors.As(err, &name):
		return fmt.Sprintf("the certificate presented for %s is for %s: a proxy in the way, or the wrong address?", name.Host, certNames(name.Certificate)), true
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Sprintf("the certificate of %s is expired or not yet valid: check this machine's clock (%s)", host, invalid.Detail), true
	case errors.As(err, &invalid):
		return fmt.Sprintf("the certificate of %s is not valid: %v", host, invalid), true
	case errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http turns the record error into text when the answer looks like HTTP.
		return fmt.Sprintf("%s does not speak TLS: a proxy, or the wrong port?", addr), true
	case errors.As(err, &verify):
		return fmt.Sprintf("the certificate of %s cannot be verified: %v", host, verify.Err), true
	case errors.As(err, &alert):
		return fmt.Sprintf("the TLS handshake with %s failed: %v", addr, alert), true
	}
	return "", false
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return "another name"
	}
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return strings.Join(names, ", ")
}

func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// Round writes a measured wait as people set timeouts: 10s rather than
// 9.987s, 300ms rather than 304ms.
func Round(d time.Duration) string {
	if d >= time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
