package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/internal/testaddr"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// checkTimeout keeps the diagnosis tests quick; check's default is 10s.
const checkTimeout = 500 * time.Millisecond

// runCheck runs `mews-keyd check` with args and returns its exit code and
// output.
func runCheck(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = NewMain(&out, &errOut).Run(context.Background(), append([]string{"check"}, args...))
	return code, out.String(), errOut.String()
}

// customMews is a [mews] table for the given endpoints and the simulator's
// tokens.
func customMews(apiURL, wsURL string) string {
	return fmt.Sprintf("[mews]\nenvironment = \"custom\"\napi_url = %q\nws_url = %q\nclient_token = %q\naccess_token = %q\n",
		apiURL, wsURL, mewstest.ClientToken, mewstest.AccessToken)
}

// silentPort returns a loopback address that takes every connection and
// never answers, like a service that hangs behind an open firewall.
func silentPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// wantLine fails unless one line of out holds every part.
func wantLine(t *testing.T, out string, parts ...string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if containsAll(line, parts) {
			return
		}
	}
	t.Errorf("no line with %q in:\n%s", parts, out)
}

// TestCheckDiagnosesEachFailure: every way the first hour goes wrong is
// named in words on the probe's line, within the timeout.
func TestCheckDiagnosesEachFailure(t *testing.T) {
	timeout := "--timeout=" + checkTimeout.String()
	t.Run("unresolvable host", func(t *testing.T) {
		path := writeCheckConfig(t, customMews("https://api.mews-keyd.invalid", "wss://ws.mews-keyd.invalid"), "")
		code, out, _ := runCheck(t, timeout, "--config", path)
		if code != exitFail {
			t.Errorf("exit %d, want %d", code, exitFail)
		}
		wantLine(t, out, "FAIL  Mews API https://api.mews-keyd.invalid", "cannot resolve api.mews-keyd.invalid", "DNS")
		wantLine(t, out, "FAIL  Mews WebSocket wss://ws.mews-keyd.invalid", "cannot resolve ws.mews-keyd.invalid")
	})
	t.Run("refused port", func(t *testing.T) {
		addr := testaddr.Free(t)
		path := writeCheckConfig(t, customMews("http://"+addr, "ws://"+addr), "")
		code, out, _ := runCheck(t, timeout, "--config", path)
		if code != exitFail {
			t.Errorf("exit %d, want %d", code, exitFail)
		}
		wantLine(t, out, "FAIL  Mews API", "cannot connect to "+addr+": connection refused", "firewall")
		wantLine(t, out, "FAIL  Mews WebSocket", "cannot connect to "+addr+": connection refused")
	})
	t.Run("silent port", func(t *testing.T) {
		api, lock, salto := silentPort(t), silentPort(t), silentPort(t)
		path := writeCheckConfig(t, customMews("http://"+api, "ws://"+api), fmt.Sprintf(`
[[encoders]]
name = "lobby"
driver = "fias"
address = %q

[[encoders]]
name = "spa"
driver = "salto"
address = %q

[[key_cutters]]
identifier = "frontdesk-2"
encoder = "lobby"

[[key_cutters]]
identifier = "spa-1"
encoder = "spa"
`, lock, salto))
		code, out, _ := runCheck(t, timeout, "--config", path)
		if code != exitFail {
			t.Errorf("exit %d, want %d", code, exitFail)
		}
		wantLine(t, out, "FAIL  Mews API", api+" accepted the connection but did not answer the request in 500ms")
		wantLine(t, out, "FAIL  Mews WebSocket", api+" accepted the connection but did not answer the WebSocket handshake in 500ms")
		wantLine(t, out, "FAIL  encoder lobby (fias): lock system link down: "+lock+" accepted the connection but did not answer the link start (LS) in ")
		wantLine(t, out, "FAIL  encoder spa (salto): Salto interface not answering: "+salto+" accepted the connection but did not answer ENQ in 500ms")
		if strings.Contains(out, "context deadline exceeded") {
			t.Errorf("a bare context error:\n%s", out)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		srv := mewstest.NewServer()
		t.Cleanup(srv.Close)
		const wrong = "wrong-access-token-0123"
		path := writeCheckConfig(t, strings.Replace(srv.MewsTOML(), mewstest.AccessToken, wrong, 1), "")
		code, out, errOut := runCheck(t, timeout, "--config", path)
		if code != exitFail {
			t.Errorf("exit %d, want %d", code, exitFail)
		}
		wantLine(t, out, "FAIL  Mews API", "Mews refused the AccessToken (from mews.access_token in "+path+"): Invalid AccessToken.")
		wantLine(t, out, "FAIL  Mews WebSocket", "Mews refused the tokens at the WebSocket handshake")
		if strings.Contains(out+errOut, wrong) {
			t.Errorf("the token is in the output:\n%s", out)
		}
	})
	t.Run("self-signed certificate", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
		srv.StartTLS()
		t.Cleanup(srv.Close)
		wsURL := "wss://" + strings.TrimPrefix(srv.URL, "https://")
		code, out, _ := runCheck(t, timeout, "--config", writeCheckConfig(t, customMews(srv.URL, wsURL), ""))
		if code != exitFail {
			t.Errorf("exit %d, want %d", code, exitFail)
		}
		wantLine(t, out, "FAIL  Mews API", "the certificate of 127.0.0.1 is signed by an unknown authority", "proxy or firewall that inspects TLS")
		wantLine(t, out, "FAIL  Mews WebSocket", "the certificate of 127.0.0.1 is signed by an unknown authority")
	})
	t.Run("key cutter not in Mews", func(t *testing.T) {
		srv := mewstest.NewServer()
		t.Cleanup(srv.Close)
		const missing = "0f3c2a1e-0000-4000-8000-000000000001"
		path := checkConfig(t, srv, fmt.Sprintf("\n[[key_cutters]]\ndevice_id = %q\nencoder = \"desk-1\"\n", missing))
		code, out, _ := runCheck(t, timeout, "--config", path)
		if code != exitFail {
			t.Errorf("exit %d, want %d", code, exitFail)
		}
		wantLine(t, out, "FAIL  key cutter "+missing+": no device with this id is linked to this integration in Mews; Mews lists",
			fmt.Sprintf("%q (KeyCutter, id %s, identifier %s)", mewstest.KeyCutter2.Name, mewstest.KeyCutter2.ID, mewstest.KeyCutter2.Identifier))
		wantLine(t, out, "ok    key cutter "+mewstest.KeyCutter1.ID)
	})
}

// TestCheckProbesRunAtOnce: with everything dead, check still answers in
// about one timeout, not one per probe, and says what it is waiting for
// before it waits.
func TestCheckProbesRunAtOnce(t *testing.T) {
	api := silentPort(t)
	extra := ""
	for i := range 3 {
		extra += fmt.Sprintf("\n[[encoders]]\nname = \"lock-%d\"\ndriver = \"fias\"\naddress = %q\n\n[[key_cutters]]\nidentifier = \"desk-%d\"\nencoder = \"lock-%d\"\n",
			i, silentPort(t), i, i)
	}
	extra += fmt.Sprintf("\n[[encoders]]\nname = \"spa\"\ndriver = \"salto\"\naddress = %q\n\n[[key_cutters]]\nidentifier = \"spa-1\"\nencoder = \"spa\"\n", silentPort(t))
	path := writeCheckConfig(t, customMews("http://"+api, "ws://"+api), extra)

	began := time.Now()
	code, out, _ := runCheck(t, "--timeout", checkTimeout.String(), "--config", path)
	took := time.Since(began)
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if took > 3*checkTimeout {
		t.Errorf("check took %s with a %s timeout: the probes did not run at once", took, checkTimeout)
	}
	for _, name := range []string{"Mews API", "Mews WebSocket", "encoder lock-0 (fias)", "encoder lock-1 (fias)", "encoder lock-2 (fias)", "encoder spa (salto)"} {
		start, verdict := strings.Index(out, "...   "+name), strings.Index(out, "FAIL  "+name)
		if start < 0 || verdict < start {
			t.Errorf("%s: no start line before its verdict:\n%s", name, out)
		}
	}
}

// checkJSON is the shape `check --json` documents in the README.
type checkJSON struct {
	OK        bool   `json:"ok"`
	Version   string `json:"version"`
	Config    string `json:"config"`
	TimeoutMS *int64 `json:"timeout_ms"`
	ElapsedMS *int64 `json:"elapsed_ms"`
	Results   []struct {
		Probe     string `json:"probe"`
		Name      string `json:"name"`
		Status    string `json:"status"`
		Cause     string `json:"cause"`
		Detail    string `json:"detail"`
		ElapsedMS *int64 `json:"elapsed_ms"`
	} `json:"results"`
}

// decodeCheckJSON reads stdout as exactly one JSON document.
func decodeCheckJSON(t *testing.T, stdout string) checkJSON {
	t.Helper()
	var doc checkJSON
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not the documented JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document on stdout:\n%s", stdout)
	}
	return doc
}

// TestCheckJSON: `check --json` prints one document for scripts and support
// tickets: every probe in a fixed order, with its verdict, and nothing else.
func TestCheckJSON(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	dead := testaddr.Free(t)
	path := checkConfig(t, srv, fmt.Sprintf(`
[[encoders]]
name = "lobby"
driver = "fias"
address = %q

[[key_cutters]]
identifier = "frontdesk-2"
encoder = "lobby"
`, dead))
	code, out, _ := runCheck(t, "--json", "--timeout", checkTimeout.String(), "--config", path)
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	doc := decodeCheckJSON(t, out)
	if doc.OK || doc.Config != path || doc.Version == "" || doc.TimeoutMS == nil || *doc.TimeoutMS != 500 || doc.ElapsedMS == nil {
		t.Errorf("document head: ok %v, config %q, version %q, timeout %v, elapsed %v", doc.OK, doc.Config, doc.Version, doc.TimeoutMS, doc.ElapsedMS)
	}
	var got []string
	for _, r := range doc.Results {
		if folderWarning(r.Detail) {
			continue
		}
		got = append(got, r.Probe+" "+r.Status)
		if r.ElapsedMS == nil {
			t.Errorf("%s: no elapsed_ms", r.Name)
		}
	}
	want := []string{"config ok", "mews-api ok", "key-cutter ok", "key-cutter ok", "mews-commands ok", "mews-key-cutter ok", "mews-key-cutter ok", "mews-websocket ok", "encoder ok", "encoder fail"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("results %q, want %q", got, want)
	}
	if last := doc.Results[len(doc.Results)-1]; last.Name != "encoder lobby (fias)" || !strings.Contains(last.Detail, "cannot connect to "+dead+": connection refused") {
		t.Errorf("the dead encoder: %+v", last)
	}

	t.Run("network failure has a cause", func(t *testing.T) {
		addr := testaddr.Free(t)
		code, out, _ := runCheck(t, "--json", "--timeout", checkTimeout.String(), "--config", writeCheckConfig(t, customMews("http://"+addr, "ws://"+addr), ""))
		if code != exitFail {
			t.Errorf("exit %d, want %d", code, exitFail)
		}
		for _, r := range decodeCheckJSON(t, out).Results {
			if (r.Probe == "mews-api" || r.Probe == "mews-websocket") && (r.Status != "fail" || r.Cause != "refused") {
				t.Errorf("%s: status %q cause %q, want fail, refused", r.Probe, r.Status, r.Cause)
			}
		}
	})
	t.Run("broken config", func(t *testing.T) {
		bad := writeCheckConfig(t, srv.MewsTOML(), "\n[daemon2]\n")
		code, out, _ := runCheck(t, "--json", "--config", bad)
		if code != exitConfig {
			t.Errorf("exit %d, want %d", code, exitConfig)
		}
		doc := decodeCheckJSON(t, out)
		if doc.OK || len(doc.Results) != 1 || doc.Results[0].Probe != "config" || doc.Results[0].Status != "fail" || !strings.Contains(doc.Results[0].Detail, "daemon2") {
			t.Errorf("broken config: %+v", doc)
		}
	})
}

// TestCheckTimeoutFlag: a timeout that bounds nothing is a usage error.
func TestCheckTimeoutFlag(t *testing.T) {
	for _, bad := range []string{"0s", "-1s", "soon"} {
		if code, _, errOut := runCheck(t, "--timeout", bad); code != exitUsage || !strings.Contains(errOut, "timeout") {
			t.Errorf("--timeout %s: exit %d, stderr %q", bad, code, errOut)
		}
	}
}
