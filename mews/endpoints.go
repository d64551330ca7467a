package mews

import (
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
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q: no host", raw)
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
		return nil, fmt.Errorf("URL %q: %s:// is only allowed for loopback hosts, use %s://", u.Redacted(), plain, secure)
	default:
		return nil, fmt.Errorf("URL %q: scheme must be %s", u.Redacted(), secure)
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
