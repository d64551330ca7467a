package mews_test

import (
	"strings"
	"testing"

	"github.com/mews-keyd/mews-keyd/mews"
)

// TestCheckURL: tokens travel only encrypted, except to this machine. Names
// that merely look local are not loopback.
func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url, secure string
		ok          bool
	}{
		{"https://api.mews.com", "https", true},
		{"wss://ws.mews.com", "wss", true},
		{"http://127.0.0.1:8080", "https", true},
		{"http://127.3.4.5", "https", true},
		{"http://[::1]:9000", "https", true},
		{"ws://localhost:8081", "wss", true},
		{"http://api.mews.com", "https", false},
		{"ws://ws.mews.com", "wss", false},
		{"http://10.0.0.1", "https", false},
		{"http://localhost.example.com", "https", false},
		{"http://127.0.0.1.nip.io", "https", false},
		{"http://[::ffff:10.0.0.1]", "https", false},
		{"ws://api.mews.com", "https", false},
		{"https://ws.mews.com", "wss", false},
		{"ftp://127.0.0.1", "https", false},
		{"https://", "https", false},
		{"api.mews.com", "https", false},
		{"https://api.mews.com/%zz", "https", false},
	} {
		t.Run(tc.url+" as "+tc.secure, func(t *testing.T) {
			_, err := mews.CheckURL(tc.url, tc.secure)
			if ok := err == nil; ok != tc.ok {
				t.Errorf("CheckURL(%q, %q) = %v, want ok=%v", tc.url, tc.secure, err, tc.ok)
			}
		})
	}
}

// TestCheckURLErrorsHideSecrets: whatever is wrong with a URL, the error
// never repeats its password or query, which may hold a key.
func TestCheckURLErrorsHideSecrets(t *testing.T) {
	for _, raw := range []string{
		"https://user:s3cret@locks.example.com/%zz?key=s3cret",
		"https://user:s3cret@/?key=s3cret",
		"http://user:s3cret@10.0.0.5/api?key=s3cret",
		"https://user:s3cret@locks.example.com:port/?key=s3cret",
	} {
		_, err := mews.CheckURL(raw, "https")
		if err == nil {
			t.Errorf("CheckURL(%q) accepted it", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckURL error repeats a secret: %v", err)
		}
	}
}
