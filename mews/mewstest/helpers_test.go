package mewstest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const cookie = "ClientToken=" + mewstest.ClientToken + "; AccessToken=" + mewstest.AccessToken

// newServer starts a simulator closed at the end of the test.
func newServer(t *testing.T, opts ...mewstest.Option) *mewstest.Server {
	t.Helper()
	s := mewstest.NewServer(opts...)
	t.Cleanup(s.Close)
	return s
}

// testCtx bounds every wait of a test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// call posts body (tokens and Client added) to op.
func call(t *testing.T, s *mewstest.Server, op string, body map[string]any) answer {
	t.Helper()
	full := map[string]any{"ClientToken": mewstest.ClientToken, "AccessToken": mewstest.AccessToken, "Client": "test 1.0"}
	for k, v := range body {
		full[k] = v
	}
	return post(t, s, op, full)
}

// post sends body exactly as given.
func post(t *testing.T, s *mewstest.Server, op string, body map[string]any) answer {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, s.URL()+"/api/connector/v1/"+op, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: buf.Bytes()}
	if err := json.Unmarshal(a.raw, &a.body); err != nil {
		t.Fatalf("%s: answer is not a JSON object: %q", op, a.raw)
	}
	return a
}

// mustCall is call that expects 200 and decodes the answer into out.
func mustCall(t *testing.T, s *mewstest.Server, op string, body map[string]any, out any) {
	t.Helper()
	a := call(t, s, op, body)
	if a.status != http.StatusOK {
		t.Fatalf("%s: status %d: %s", op, a.status, a.raw)
	}
	if out != nil {
		if err := json.Unmarshal(a.raw, out); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
}

// dial connects a WebSocket with the given Cookie header.
func dial(ctx context.Context, s *mewstest.Server, cookieHeader string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if cookieHeader != "" {
		h.Set("Cookie", cookieHeader)
	}
	return websocket.Dial(ctx, s.WSURL()+"/ws/connector", &websocket.DialOptions{HTTPHeader: h})
}

// connect dials with the right cookie and waits until the server counts the
// socket, so pushes that follow reach it.
func connect(t *testing.T, s *mewstest.Server) *websocket.Conn {
	t.Helper()
	ctx := testCtx(t)
	before := s.Sockets()
	c, _, err := dial(ctx, s, cookie)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := s.Wait(ctx, func(s *mewstest.Server) bool { return s.Sockets() > before }); err != nil {
		t.Fatalf("socket never registered: %v", err)
	}
	return c
}

// readEvents reads one frame and decodes it.
func readEvents(t *testing.T, ctx context.Context, c *websocket.Conn) []mews.Event {
	t.Helper()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("frame type %v, want text", typ)
	}
	evs, skipped, err := mews.DecodeFrame(data)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("frame %s: %v %v", data, err, skipped)
	}
	return evs
}

// newCommand creates a Pending key cutter command on a fixture reservation.
func newCommand(t *testing.T, s *mewstest.Server) string {
	t.Helper()
	id, err := s.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationCheckedIn, 2)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// equalJSON compares two values by their JSON encoding.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// jsonBody encodes v for a request body.
func jsonBody(v any) *bytes.Reader {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(data)
}
