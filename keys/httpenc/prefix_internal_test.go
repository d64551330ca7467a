package httpenc

import (
	"net/url"
	"testing"
)

// A prefix is a scheme, a host and a path prefix, not a string prefix: a
// host that merely starts like the vendor's is someone else's.
func TestPrefixMatchesWholeHostAndPathSegments(t *testing.T) {
	for _, tt := range []struct {
		prefix, url string
		ok          bool
	}{
		{"https://locks.example.com", "https://locks.example.com/api/x", true},
		{"https://locks.example.com", "https://locks.example.com.evil.net/api", false},
		{"https://locks.example.com", "https://LOCKS.Example.com/api", true},
		{"https://locks.example.com", "https://locks.example.com:443/api", true},
		{"https://locks.example.com", "https://locks.example.com:8443/api", false},
		{"https://locks.example.com:8443/", "https://locks.example.com:8443/api", true},
		{"https://locks.example.com/api", "https://locks.example.com/api", true},
		{"https://locks.example.com/api", "https://locks.example.com/api/cutters/1", true},
		{"https://locks.example.com/api", "https://locks.example.com/apix", false},
		{"https://locks.example.com/api/", "https://locks.example.com/api/1", true},
		{"https://locks.example.com/api/", "https://locks.example.com/api", false},
		{"https://locks.example.com/api", "https://locks.example.com/api/../admin", false},
		{"https://locks.example.com/api", "https://locks.example.com/api/%2e%2e/admin", false},
		{"https://locks.example.com/api", `https://locks.example.com/api\..\admin`, false},
		{"https://locks.example.com/api", "https://locks.example.com/api/v1..2", true},
		{"http://127.0.0.1:8080/api", "https://127.0.0.1:8080/api", false},
	} {
		p, err := parsePrefix(tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		ok := p.covers(u)
		if ok != tt.ok {
			t.Errorf("%s under %s = %v, want %v", tt.url, tt.prefix, ok, tt.ok)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for raw, want := range map[string]string{
		"http://locks.lan/api":       `URL "http://locks.lan/api": http:// is only allowed for loopback hosts, use https://`,
		"https://locks.lan/api?x=1":  `"https://locks.lan/api": a prefix has no query or fragment`,
		"https://locks.lan/api#x":    `"https://locks.lan/api": a prefix has no query or fragment`,
		"https://u:pw@locks.lan/api": `"https://locks.lan/api": a prefix has no user or password (credentials go in headers)`,
		"https://locks.lan/api/../x": `"https://locks.lan/api/../x": a prefix has no "." or ".." segments`,
	} {
		if _, err := parsePrefix(raw); err == nil || err.Error() != want {
			t.Errorf("parsePrefix(%q) = %v, want %q", raw, err, want)
		}
	}
}
