package httpenc

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// urlPrefix is one api_url_prefixes entry: the only places a command's
// ApiUrl may send the configured headers (credentials) to. It is matched
// as URL parts, never as a string, so that "https://locks.example.com"
// does not cover "https://locks.example.com.evil.net".
type urlPrefix struct {
	scheme string
	host   string // lower case, with the port, the scheme's default if none
	path   string
}

// parsePrefixes parses api_url_prefixes; errors name the entry, without
// what could be a credential.
func parsePrefixes(raw []string) ([]urlPrefix, error) {
	prefixes := make([]urlPrefix, 0, len(raw))
	for _, r := range raw {
		p, err := parsePrefix(r)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, p)
	}
	return prefixes, nil
}

func parsePrefix(raw string) (urlPrefix, error) {
	u, err := mews.CheckURL(raw, "https")
	if err != nil {
		return urlPrefix{}, err
	}
	switch {
	case u.User != nil:
		return urlPrefix{}, fmt.Errorf("%q: a prefix has no user or password (credentials go in headers)", mews.Shown(u))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return urlPrefix{}, fmt.Errorf("%q: a prefix has no query or fragment", mews.Shown(u))
	case dotSegments(u.Path):
		return urlPrefix{}, fmt.Errorf("%q: a prefix has no \".\" or \"..\" segments", mews.Shown(u))
	}
	return urlPrefix{scheme: u.Scheme, host: hostPort(u), path: u.Path}, nil
}

// covers reports whether u is under p: the same scheme and host, and a path
// that is p's or continues it at a "/". A path with dot segments is never
// covered: the server may resolve it to anywhere on the host.
func (p urlPrefix) covers(u *url.URL) bool {
	if u.Scheme != p.scheme || hostPort(u) != p.host || dotSegments(u.Path) {
		return false
	}
	rest, ok := strings.CutPrefix(u.Path, p.path)
	return ok && (rest == "" || strings.HasSuffix(p.path, "/") || strings.HasPrefix(rest, "/"))
}

// checkAPIURL refuses a command's ApiUrl outside the prefixes, before
// anything is sent.
func checkAPIURL(u *url.URL, prefixes []urlPrefix) error {
	if slices.ContainsFunc(prefixes, func(p urlPrefix) bool { return p.covers(u) }) {
		return nil
	}
	return keys.Failf("the key cutter's API URL in Mews, %s, is not under this encoder's api_url_prefixes", mews.Shown(u))
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// dotSegments reports whether path has a "." or ".." segment; a backslash
// separates segments too, as some servers (IIS) take it.
func dotSegments(path string) bool {
	segments := strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '\\' })
	return slices.ContainsFunc(segments, func(s string) bool { return s == "." || s == ".." })
}
