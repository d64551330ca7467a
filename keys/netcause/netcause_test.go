package netcause_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/internal/testaddr"
	"github.com/mews-keyd/mews-keyd/keys/netcause"
)

func wantWords(t *testing.T, cause netcause.Cause, words string, wantCause netcause.Cause, want ...string) {
	t.Helper()
	if cause != wantCause {
		t.Errorf("cause %q, want %q (%s)", cause, wantCause, words)
	}
	for _, w := range want {
		if !strings.Contains(words, w) {
			t.Errorf("%q lacks %q", words, w)
		}
	}
}

// TestExplainDial: the faults of a TCP connect, each from a real dial.
func TestExplainDial(t *testing.T) {
	t.Run("unresolvable", func(t *testing.T) {
		const addr = "lock.mews-keyd.invalid:5010" // .invalid never resolves (RFC 6761)
		_, err := net.Dial("tcp", addr)
		cause, words := netcause.Explain(addr, time.Second, err)
		wantWords(t, cause, words, netcause.DNS, "cannot resolve lock.mews-keyd.invalid", "DNS")
	})
	t.Run("refused", func(t *testing.T) {
		addr := testaddr.Free(t)
		_, err := net.Dial("tcp", addr)
		cause, words := netcause.Explain(addr, time.Millisecond, err)
		wantWords(t, cause, words, netcause.Refused, "cannot connect to "+addr+": connection refused")
	})
	t.Run("no answer", func(t *testing.T) {
		// A deadline already past ends the dial as a dropped SYN would.
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		const addr = "192.168.10.20:5010"
		var d net.Dialer
		_, err := d.DialContext(ctx, "tcp", addr)
		cause, words := netcause.Explain(addr, 9987*time.Millisecond, err)
		wantWords(t, cause, words, netcause.Timeout, "cannot connect to 192.168.10.20:5010: no answer in 10s")
	})
}

// TestExplainHTTPS: certificate problems and proxies, as an HTTP client
// meets them.
func TestExplainHTTPS(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	get := func(client *http.Client, rawURL string) error {
		t.Helper()
		resp, err := client.Get(rawURL)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded", rawURL)
		}
		return err
	}
	hostPort := func(raw string) string { u, _ := url.Parse(raw); return u.Host }

	t.Run("self-signed", func(t *testing.T) {
		err := get(&http.Client{Transport: &http.Transport{}}, tlsSrv.URL)
		cause, words := netcause.Explain(hostPort(tlsSrv.URL), time.Second, err)
		wantWords(t, cause, words, netcause.TLS, "certificate of 127.0.0.1 is signed by an unknown authority", `"O=Acme Co"`, "proxy or firewall")
	})
	t.Run("another name", func(t *testing.T) {
		tr := tlsSrv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.ServerName = "api.mews.com"
		err := get(&http.Client{Transport: tr}, tlsSrv.URL)
		cause, words := netcause.Explain(hostPort(tlsSrv.URL), time.Second, err)
		wantWords(t, cause, words, netcause.TLS, "presented for api.mews.com is for example.com, *.example.com, 127.0.0.1")
	})
	t.Run("not TLS", func(t *testing.T) {
		addr := hostPort(plain.URL)
		err := get(&http.Client{Transport: &http.Transport{}}, "https://"+addr)
		cause, words := netcause.Explain(addr, time.Second, err)
		wantWords(t, cause, words, netcause.TLS, addr+" does not speak TLS")
	})
	t.Run("proxy down", func(t *testing.T) {
		proxy := testaddr.Free(t)
		tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy}), TLSClientConfig: &tls.Config{}}
		err := get(&http.Client{Transport: tr}, "https://api.mews.invalid")
		cause, words := netcause.Explain("api.mews.invalid:443", time.Second, err)
		wantWords(t, cause, words, netcause.Proxy, "the proxy failed: cannot connect to "+proxy+": connection refused")
	})
}

func TestSilenceAndRound(t *testing.T) {
	if got, want := netcause.Silence("10.0.0.5:3000", "ENQ", 498*time.Millisecond), "10.0.0.5:3000 accepted the connection but did not answer ENQ in 500ms"; got != want {
		t.Errorf("Silence = %q, want %q", got, want)
	}
	for d, want := range map[time.Duration]string{
		10*time.Second + 40*time.Millisecond: "10s",
		9600 * time.Millisecond:              "10s",
		90 * time.Second:                     "1m30s",
		503 * time.Millisecond:               "500ms",
	} {
		if got := netcause.Round(d); got != want {
			t.Errorf("Round(%s) = %s, want %s", d, got, want)
		}
	}
	if !netcause.IsTimeout(context.DeadlineExceeded) || netcause.IsTimeout(context.Canceled) {
		t.Error("IsTimeout wrong about the context's errors")
	}
}
