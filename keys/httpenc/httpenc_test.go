package httpenc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/httpenc"
	"github.com/mews-keyd/mews-keyd/keys/keystest"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// vendor is a fake encoder server.
type vendor struct {
	behaviour keystest.Behaviour
	counter   keystest.Counter

	mu       sync.Mutex
	requests int
	headers  http.Header
	path     string
	req      wire.Request
}

func (v *vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	leave := v.counter.Enter()
	defer leave()
	v.mu.Lock()
	v.requests++
	v.mu.Unlock()
	var req wire.Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	v.mu.Lock()
	v.headers, v.path, v.req = r.Header.Clone(), r.URL.Path, req
	v.mu.Unlock()
	var a wire.Answer
	switch v.behaviour {
	case keystest.Fail:
		a = wire.Failure("no card presented")
	case keystest.Hang:
		<-r.Context().Done()
		return
	case keystest.Slow:
		time.Sleep(30 * time.Millisecond)
		fallthrough
	default:
		a = wire.Success(keys.Result{Note: "issued", Keys: []keys.Key{{ID: "1", Type: keys.KeyRfidTag, Value: "04A1"}}})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a)
}

// caFile writes the certificate of a TLS test server where tls_ca_file can
// point.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newEncoder(t *testing.T, cfg httpenc.Config, log zerolog.Logger) *httpenc.Encoder {
	t.Helper()
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = httpenc.DefaultMaxResponseBytes
	}
	enc, err := httpenc.New(cfg, keys.Env{Name: "frontdesk", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return enc
}

// The suite runs over TLS with the server's certificate as tls_ca_file,
// the way a vendor with its own CA is set up.
func TestConformance(t *testing.T) {
	keystest.Run(t, keystest.Harness{
		FailMessage: "no card presented",
		Open: func(t *testing.T, b keystest.Behaviour) keystest.Rig {
			v := &vendor{behaviour: b}
			srv := httptest.NewTLSServer(v)
			t.Cleanup(srv.Close)
			enc, err := httpenc.New(httpenc.Config{
				URL:              srv.URL + "/encode",
				TLSCAFile:        caFile(t, srv),
				MaxResponseBytes: httpenc.DefaultMaxResponseBytes,
			}, keys.Env{Name: "frontdesk", Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			return keystest.Rig{Encoder: enc, Peak: v.counter.Peak}
		},
	})
}

func issue(t *testing.T, enc *httpenc.Encoder, req keys.Request, timeout time.Duration) (keys.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return enc.Issue(ctx, req)
}

func TestHeadersSentNeverLogged(t *testing.T) {
	v := &vendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	var logs bytes.Buffer
	cfg := httpenc.Config{URL: srv.URL + "/v1/keys", Headers: httpenc.Headers{"Authorization": "Bearer s3cret", "X-Site": "prague"}}
	enc := newEncoder(t, cfg, zerolog.New(&logs).Level(zerolog.DebugLevel))
	if _, err := issue(t, enc, keystest.SampleRequest(keys.KindCard), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.headers.Get("Authorization") != "Bearer s3cret" || v.headers.Get("X-Site") != "prague" ||
		v.headers.Get("Content-Type") != "application/json" || v.path != "/v1/keys" {
		t.Errorf("server saw path %q headers %v", v.path, v.headers)
	}
	if v.req.Operation != wire.Issue || v.req.Encoder != "frontdesk" || v.req.KeyCount != 2 {
		t.Errorf("server saw request %+v", v.req)
	}
	for _, s := range []string{logs.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("header value leaked: %s", s)
		}
	}
}

func TestServerAnswers(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		msg      string
		maybeCut bool
	}{
		{"bad gateway", 502, "<html>Bad Gateway</html>", "encoder server answered 502", true},
		{"unauthorized", 401, "denied", "encoder server answered 401", false},
		{"refusal with status", 409, `{"ok":false,"error":"room 0101 unknown to the lock system"}`, "room 0101 unknown to the lock system", false},
		{"redirect", 302, "", "encoder server answered 302", true},
		{"refusal", 200, `{"ok":false,"error":"encoder busy"}`, "encoder busy", false},
		{"garbage", 200, `Card OK`, "encoder server gave no valid answer", true},
		{"ok missing", 200, `{"keys":[]}`, "encoder server gave no valid answer", true},
		{"too long", 200, `{"ok":true,"note":"` + strings.Repeat("x", 2000) + `"}`, "encoder server gave no valid answer", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			enc := newEncoder(t, httpenc.Config{URL: srv.URL, MaxResponseBytes: 1024}, zerolog.Nop())
			_, err := issue(t, enc, keystest.SampleRequest(keys.KindCard), 10*time.Second)
			var ke *keys.Error
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v (%T), want *keys.Error", err, err)
			}
			if ke.Msg != tt.msg || ke.MaybeCut != tt.maybeCut {
				t.Errorf("got %q MaybeCut %v, want %q %v", ke.Msg, ke.MaybeCut, tt.msg, tt.maybeCut)
			}
		})
	}
}

func TestTimeoutAfterSending(t *testing.T) {
	srv := httptest.NewServer(&vendor{behaviour: keystest.Hang})
	defer srv.Close()
	enc := newEncoder(t, httpenc.Config{URL: srv.URL}, zerolog.Nop())
	_, err := issue(t, enc, keystest.SampleRequest(keys.KindCard), 300*time.Millisecond)
	if keys.Message(err) != "no answer from encoder server within 300ms" || !keys.MaybeCut(err) {
		t.Errorf("err = %#v", err)
	}
}

func TestCommandAPIURL(t *testing.T) {
	v := &vendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	enc := newEncoder(t, httpenc.Config{UseCommandAPIURL: true, APIURLPrefixes: []string{srv.URL + "/cutters/"}}, zerolog.Nop())
	req := keystest.SampleRequest(keys.KindCard)
	req.APIURL = srv.URL + "/cutters/7"
	if _, err := issue(t, enc, req, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	if v.path != "/cutters/7" || v.req.APIURL != req.APIURL {
		t.Errorf("server saw path %q api_url %q", v.path, v.req.APIURL)
	}
	v.mu.Unlock()

	for apiURL, msg := range map[string]string{
		"":                        "the key cutter has no API URL in Mews",
		"http://192.0.2.7/encode": "the key cutter's API URL in Mews is not usable",
		"ftp://127.0.0.1/encode":  "the key cutter's API URL in Mews is not usable",
	} {
		req.APIURL = apiURL
		_, err := issue(t, enc, req, 10*time.Second)
		if keys.Message(err) != msg || keys.MaybeCut(err) {
			t.Errorf("ApiUrl %q: err = %v", apiURL, err)
		}
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(&vendor{})
	defer srv.Close()
	t.Run("untrusted", func(t *testing.T) {
		enc := newEncoder(t, httpenc.Config{URL: srv.URL}, zerolog.Nop())
		_, err := issue(t, enc, keystest.SampleRequest(keys.KindCard), 10*time.Second)
		if keys.Message(err) != "the encoder server's certificate is not trusted" || keys.MaybeCut(err) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("insecure skip verify warns", func(t *testing.T) {
		var logs bytes.Buffer
		enc := newEncoder(t, httpenc.Config{URL: srv.URL, TLSInsecureSkipVerify: true}, zerolog.New(&logs).Level(zerolog.InfoLevel))
		if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), "tls_insecure_skip_verify") {
			t.Errorf("no warning at Open: %s", logs.String())
		}
		if _, err := issue(t, enc, keystest.SampleRequest(keys.KindCard), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad CA file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ca.pem")
		os.WriteFile(path, []byte("not a certificate"), 0o600)
		_, err := httpenc.New(httpenc.Config{URL: srv.URL, TLSCAFile: path, MaxResponseBytes: 1}, keys.Env{})
		if err == nil || !strings.HasPrefix(err.Error(), "tls_ca_file: ") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  httpenc.Config
		want string
	}{
		{httpenc.Config{MaxResponseBytes: 1}, "url: required unless use_command_api_url = true"},
		{httpenc.Config{URL: "https://x", UseCommandAPIURL: true, MaxResponseBytes: 1}, "url: must be empty when use_command_api_url = true"},
		{httpenc.Config{URL: "http://encoder.lan/api", MaxResponseBytes: 1}, `url: URL "http://encoder.lan/api": http:// is only allowed for loopback hosts, use https://`},
		{httpenc.Config{URL: "https:///api", MaxResponseBytes: 1}, `url: invalid URL "https:///api": no host`},
		{httpenc.Config{URL: "https://x", Headers: httpenc.Headers{"Bad Name": "v"}, MaxResponseBytes: 1}, `headers: "Bad Name" is not a valid header name`},
		{httpenc.Config{UseCommandAPIURL: true, MaxResponseBytes: 1},
			`api_url_prefixes: required when use_command_api_url = true: the URLs the key cutters' API URLs in Mews may start with (the headers go there)`},
		{httpenc.Config{URL: "https://x", APIURLPrefixes: []string{"https://x"}, MaxResponseBytes: 1}, "api_url_prefixes: only used with use_command_api_url = true"},
		{httpenc.Config{UseCommandAPIURL: true, APIURLPrefixes: []string{"https://locks.lan/a?k=1"}, MaxResponseBytes: 1},
			`api_url_prefixes: "https://locks.lan/a": a prefix has no query or fragment`},
		{httpenc.Config{URL: "https://x"}, "max_response_bytes: must be positive, not 0"},
	} {
		if err := tt.cfg.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]/x", "https://encoder.lan/api"} {
		if err := (&httpenc.Config{URL: ok, MaxResponseBytes: 1}).Validate(); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

func TestRegisteredConfig(t *testing.T) {
	d, ok := keys.Lookup("http")
	if !ok {
		t.Fatal(`driver "http" not registered`)
	}
	cfg := d.NewConfig()
	doc := "url = \"https://encoder.lan/api\"\ntls_ca_file = \"\"\n[headers]\nAuthorization = \"Bearer x\"\n"
	if _, err := toml.Decode(doc, cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.(*httpenc.Config)
	if c.URL != "https://encoder.lan/api" || c.Headers["Authorization"] != "Bearer x" || c.MaxResponseBytes != httpenc.DefaultMaxResponseBytes {
		t.Fatalf("decoded %#v", c)
	}
	enc, err := d.Open(cfg, keys.Env{Name: "frontdesk"})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
}
