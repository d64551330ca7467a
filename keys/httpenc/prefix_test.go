package httpenc_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/httpenc"
	"github.com/mews-keyd/mews-keyd/keys/keystest"
)

// TestCommandAPIURLOutsidePrefixesRefused: with use_command_api_url, Mews
// names where the credential headers go; only URLs under api_url_prefixes
// get them. Others are refused with a note naming the URL, and nothing is
// sent.
func TestCommandAPIURLOutsidePrefixesRefused(t *testing.T) {
	v := &vendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	cfg := httpenc.Config{
		UseCommandAPIURL: true,
		APIURLPrefixes:   []string{srv.URL + "/cutters"},
		Headers:          httpenc.Headers{"Authorization": "Bearer s3cret"},
	}
	enc := newEncoder(t, cfg, zerolog.Nop())
	host := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(host, ":")
	otherHost := "http://localhost:" + port + "/cutters/7" // the same server, not the configured host
	for apiURL, shown := range map[string]string{
		srv.URL + "/cuttersX/7":                  srv.URL + "/cuttersX/7",
		srv.URL + "/admin?token=abc":             srv.URL + "/admin",
		"http://user:pw@" + host + "/other#frag": srv.URL + "/other",
		srv.URL + "/cutters/../admin":            srv.URL + "/cutters/../admin",
		otherHost:                                otherHost,
	} {
		req := keystest.SampleRequest(keys.KindCard)
		req.APIURL = apiURL
		_, err := issue(t, enc, req, 10*time.Second)
		want := "the key cutter's API URL in Mews, " + shown + ", is not under this encoder's api_url_prefixes"
		if err == nil || keys.Message(err) != want || keys.MaybeCut(err) {
			t.Errorf("ApiUrl %s: err = %v, want note %q", apiURL, err, want)
			continue
		}
		for _, secret := range []string{"abc", "pw", "frag"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("ApiUrl %s: error shows %q: %v", apiURL, secret, err)
			}
		}
	}
	v.mu.Lock()
	if v.requests != 0 {
		t.Errorf("the server received %d requests for refused URLs", v.requests)
	}
	v.mu.Unlock()

	for _, allowed := range []string{srv.URL + "/cutters", srv.URL + "/cutters/7", strings.Replace(srv.URL, "http://", "HTTP://", 1) + "/cutters/8"} {
		req := keystest.SampleRequest(keys.KindCard)
		req.APIURL = allowed
		if _, err := issue(t, enc, req, 10*time.Second); err != nil {
			t.Errorf("ApiUrl %s: %v", allowed, err)
		}
	}
}
