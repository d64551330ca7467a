package fias_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/fias"
	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
)

// logBuffer collects log lines for tests that assert on them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// listening opens a listen-mode encoder, with its log also in logs when
// logs is not nil, and connects a simulated lock system to it.
func listening(t *testing.T, logs *logBuffer, mod func(*fias.Config)) (*fias.Encoder, *fiastest.Lock) {
	t.Helper()
	cfg := testConfig()
	cfg.Listen = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	en := env(t)
	if logs != nil {
		en.Logger = zerolog.New(io.MultiWriter(logs, zerolog.NewTestWriter(t))).Level(zerolog.InfoLevel)
	}
	e, err := fias.New(cfg, en)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	lock := fiastest.Dial(e.ListenAddr().String(), fiastest.Options{})
	t.Cleanup(func() { lock.Close() })
	if err := e.WaitLink(ctxT(t), true); err != nil {
		t.Fatalf("link did not come up: %v", err)
	}
	return e, lock
}

// dialFrom connects to addr from the local address from ("127.0.0.2";
// every 127/8 address is local on Linux).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.DialContext(ctxT(t), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// No read in these tests may outlast the test's patience.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// undisturbed checks that the lock system's one connection is still the
// link and still cuts keys.
func undisturbed(t *testing.T, e *fias.Encoder, lock *fiastest.Lock) {
	t.Helper()
	if _, err := e.Issue(ctxT(t), request()); err != nil {
		t.Fatalf("Issue over the live link: %v", err)
	}
	if n, ends := lock.Connects(), fiastest.Count(lock.Received(), "LE"); n != 1 || ends != 0 {
		t.Errorf("lock system saw %d connections and %d LE, want its first connection kept", n, ends)
	}
}

func TestListenRefusesStrangers(t *testing.T) {
	var logs logBuffer
	e, lock := listening(t, &logs, func(c *fias.Config) { c.AllowFrom = []string{"127.0.0.1"} })
	stranger := dialFrom(t, "127.0.0.2", e.ListenAddr().String())
	b, err := io.ReadAll(stranger)
	if err != nil {
		t.Fatalf("stranger's connection: %v", err)
	}
	if len(b) != 0 {
		t.Errorf("stranger received %q, want the connection closed at once", b)
	}
	if l := logs.String(); !strings.Contains(l, `"level":"warn"`) || !strings.Contains(l, "127.0.0.2:") {
		t.Errorf("log = %s\nwant a warning naming the stranger's address", l)
	}
	undisturbed(t, e, lock)
}

func TestListenDefaultsToLoopback(t *testing.T) {
	for _, tc := range []struct {
		allowFrom []string
		in, out   []string
	}{
		{nil, []string{"127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"}, []string{"192.168.1.20", "10.0.0.1", "::2"}},
		{[]string{"192.168.1.20", "10.0.5.0/24"}, []string{"192.168.1.20", "10.0.5.77", "::ffff:10.0.5.1"}, []string{"127.0.0.1", "::1", "192.168.1.21", "10.0.6.1"}},
		{[]string{"fd00::/8"}, []string{"fd12::1"}, []string{"fe80::1", "127.0.0.1"}},
	} {
		c := fias.DefaultConfig()
		c.Listen, c.AllowFrom = ":5010", tc.allowFrom
		if err := c.Validate(); err != nil {
			t.Fatalf("allow_from %q: %v", tc.allowFrom, err)
		}
		for _, ip := range tc.in {
			if !c.Allows(ip) {
				t.Errorf("allow_from %q refuses %s", tc.allowFrom, ip)
			}
		}
		for _, ip := range tc.out {
			if c.Allows(ip) {
				t.Errorf("allow_from %q lets %s in", tc.allowFrom, ip)
			}
		}
	}
}

// A connection that never starts the link, whatever it sends, is dropped
// after keepalive and never takes the link's place.
func TestListenNewcomerWithoutLinkStart(t *testing.T) {
	for _, garbage := range []bool{false, true} {
		name := map[bool]string{false: "silent", true: "garbage"}[garbage]
		t.Run(name, func(t *testing.T) {
			e, lock := listening(t, nil, func(c *fias.Config) { c.Keepalive = keys.Duration(500 * time.Millisecond) })
			raw := dialFrom(t, "127.0.0.1", e.ListenAddr().String())
			readUntil(t, fias.NewFrameReader(raw), "LS")
			writing := make(chan struct{})
			go func() {
				defer close(writing)
				// Records that are no link start, more often than keepalive,
				// until we hang up.
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for garbage {
					if _, err := raw.Write([]byte("noise\x02XX|\x03\x02KA|ASOK|KC1|WS1|\x03")); err != nil {
						return
					}
					<-tick.C
				}
			}()
			// Closed with our garbage unread, the connection may end in a
			// reset rather than EOF; only our own deadline is a failure.
			if _, err := io.Copy(io.Discard, raw); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("newcomer's connection was not closed: %v", err)
			}
			<-writing
			undisturbed(t, e, lock)
		})
	}
}

// A KA from a connection that has not started the link is no answer, not
// even to a request that waits for one.
func TestListenForgedAnswer(t *testing.T) {
	e, lock := listening(t, nil, nil)
	lock.SetMode(fiastest.ModeNoAnswer)
	ctx := ctxT(t)
	type result struct {
		res keys.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := e.Issue(ctx, request())
		done <- result{res, err}
	}()
	if err := lock.Wait(ctx, func(rs []fias.Record) bool { return fiastest.Count(rs, "KR") == 1 }); err != nil {
		t.Fatal(err)
	}
	forger := dialFrom(t, "127.0.0.1", e.ListenAddr().String())
	fr := fias.NewFrameReader(forger)
	readUntil(t, fr, "LS")
	// DR is answered in order: once DE is back, the KA has been read.
	var out []byte
	out = fias.NewRecord("KA", "AS", "OK", "KC", "1", "WS", "1", "G#", "1234", "$1", "FORGED").AppendFrame(out)
	out = fias.NewRecord("DR").AppendFrame(out)
	if _, err := forger.Write(out); err != nil {
		t.Fatal(err)
	}
	readUntil(t, fr, "DE")
	if err := lock.Send(fias.NewRecord("KA", "AS", "OK", "KC", "1", "WS", "1", "G#", "1234", "$1", "REAL")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Issue: %v", r.err)
	}
	if len(r.res.Keys) != 1 || r.res.Keys[0].ID != "REAL" {
		t.Errorf("keys = %+v, want the lock system's", r.res.Keys)
	}
}

// readUntil reads records until one of type typ.
func readUntil(t *testing.T, fr *fias.FrameReader, typ string) {
	t.Helper()
	for {
		b, err := fr.Next()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if r, err := fias.DecodeRecord(b); err == nil && r.Type == typ {
			return
		}
	}
}

// A lock system that connects again and starts the link replaces the old
// connection, which is ended with LE.
func TestListenReconnectTakesOver(t *testing.T) {
	cfg := testConfig()
	cfg.Listen = "127.0.0.1:0"
	e := open(t, cfg)
	first := dialFrom(t, "127.0.0.1", e.ListenAddr().String())
	fr := fias.NewFrameReader(first)
	readUntil(t, fr, "LS")
	if _, err := first.Write(fias.NewRecord("LA").AppendFrame(nil)); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitLink(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	lock := fiastest.Dial(e.ListenAddr().String(), fiastest.Options{})
	defer lock.Close()
	readUntil(t, fr, "LE")
	if _, err := e.Issue(ctxT(t), request()); err != nil {
		t.Fatal(err)
	}
	if _, ok := fiastest.Last(lock.Received(), "KR"); !ok {
		t.Error("the new connection received no KR")
	}
}

func TestAllowFromConfig(t *testing.T) {
	d, _ := keys.Lookup("fias")
	cfg := d.NewConfig().(*fias.Config)
	if _, err := toml.Decode(`
listen = "0.0.0.0:5010"
allow_from = ["192.168.1.20", "10.0.5.0/24", "lockserver", "10.0.6.0/33"]
`, cfg); err != nil {
		t.Fatal(err)
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted entries that are no address")
	}
	// One line per bad entry, each naming it; the good ones are not blamed.
	for _, want := range []string{`allow_from: "lockserver" is `, `allow_from: "10.0.6.0/33" is `} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "192.168.1.20") || strings.Contains(err.Error(), "10.0.5.0/24") {
		t.Errorf("Validate = %v, blames a good entry", err)
	}
	cfg.AllowFrom = cfg.AllowFrom[:2]
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// A reload opens the new encoder while the old one still drains its queue:
// the new one takes the listening socket over, and the lock system, whose
// link the old one ends with LE on Close, connects again to the same socket.
func TestListenHandover(t *testing.T) {
	cfg := testConfig()
	cfg.Listen = "127.0.0.1:0"
	a := open(t, cfg)
	addr := a.ListenAddr().String()
	lock := fiastest.Dial(addr, fiastest.Options{})
	defer lock.Close()
	if err := a.WaitLink(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = addr
	b, err := fias.New(cfg, env(t))
	if err != nil {
		t.Fatalf("second encoder on %s: %v", addr, err)
	}
	defer b.Close()
	if got := b.ListenAddr().String(); got != addr {
		t.Errorf("second encoder listens on %s, want %s", got, addr)
	}
	// The old encoder still has the link and still works.
	if _, err := a.Issue(ctxT(t), request()); err != nil {
		t.Fatalf("old encoder before its Close: %v", err)
	}
	a.Close()
	if _, err := b.Issue(ctxT(t), request()); err != nil {
		t.Fatalf("new encoder after the old one closed: %v", err)
	}
	if n := fiastest.Count(lock.Received(), "KR"); n != 2 {
		t.Errorf("lock system received %d KR, want 2", n)
	}

	// The socket closes with its last user.
	b.Close()
	lock.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still taken after the last encoder closed: %v", err)
	}
	ln.Close()
}

// A new encoder that is closed first (a reload that failed further on)
// leaves the socket to the one before it.
func TestListenHandoverBack(t *testing.T) {
	cfg := testConfig()
	cfg.Listen = "127.0.0.1:0"
	a := open(t, cfg)
	cfg.Listen = a.ListenAddr().String()
	b := open(t, cfg)
	b.Close()
	lock := fiastest.Dial(cfg.Listen, fiastest.Options{})
	defer lock.Close()
	if _, err := a.Issue(ctxT(t), request()); err != nil {
		t.Fatalf("old encoder after the new one closed: %v", err)
	}
}

// Only a reload of the same encoder takes a socket over: two encoders set to
// listen on one address is a mistake the operator must hear about.
func TestListenAddressOfAnotherEncoder(t *testing.T) {
	cfg := testConfig()
	cfg.Listen = "127.0.0.1:0"
	a := open(t, cfg)
	cfg.Listen = a.ListenAddr().String()
	en := env(t)
	en.Name = "backoffice"
	b, err := fias.New(cfg, en)
	if err == nil {
		b.Close()
		t.Fatal("a second encoder took over the first one's socket")
	}
	if want := `in use by encoder "frontdesk"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want %q", err, want)
	}
}
