package mews

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// Endpoints are the two base addresses of a Mews environment: the WebSocket
// host differs from the API host.
type Endpoints struct {
	API string
	WS  string
}

// Published Mews environments.
var (
	Production = Endpoints{API: "https://api.mews.com", WS: "wss://ws.mews.com"}
	Demo       = Endpoints{API: "https://api.mews-demo.com", WS: "wss://ws.mews-demo.com"}
)

// CheckURL parses a base URL and refuses plain-text schemes (http, ws) unless
// the host is a loopback address: tokens must never cross a network
// unencrypted. secure is the scheme required otherwise ("https" or "wss").
func CheckURL(raw, secure string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password and query included:
		// only the reason may reach a log.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if u.Host == "" {
		shown := raw // nothing secret in it, and what the operator typed
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			shown = Shown(u)
		}
		return nil, fmt.Errorf("invalid URL %q: no host", shown)
	}
	plain := map[string]string{"https": "http", "wss": "ws"}[secure]
	// Redacted: a password in the URL must not reach an error message.
	switch u.Scheme {
	case secure:
		return u, nil
	case plain:
		if IsLoopback(u.Hostname()) {
			return u, nil
		}
		return nil, fmt.Errorf("URL %q: %s:// is only allowed for loopback hosts, use %s://", Shown(u), plain, secure)
	default:
		return nil, fmt.Errorf("URL %q: scheme must be %s", Shown(u), secure)
	}
}

// IsLoopback reports whether host (a name or an IP, no port) is the local
// machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Shown is u fit for a log or a note: without user info, query or
// fragment, any of which may hold a secret.
func Shown(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}
