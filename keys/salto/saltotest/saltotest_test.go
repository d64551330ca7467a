package saltotest_test

import (
	"net"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/keys/salto"
	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cn is a well-formed CN2 for room 101.
var cn = salto.Message{"CN2", "Enc 1", "R", "101", "", "", "", "", "", "1400271126", "1100291126", "mews-keyd", "NOVAK JAN", "", "", "2"}

func start(t *testing.T, opts saltotest.Options) (*saltotest.Interface, net.Conn, *salto.Reader) {
	t.Helper()
	s, err := saltotest.Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return s, c, salto.NewReader(c)
}

func send(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, rd *salto.Reader) salto.Unit {
	t.Helper()
	u, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestProtocol(t *testing.T) {
	s, c, rd := start(t, saltotest.Options{})

	send(t, c, []byte{salto.ENQ})
	if u := next(t, rd); u.Control != salto.ACK {
		t.Fatalf("ENQ answered %+v, want ACK", u)
	}

	// A wrong LRC is refused with NAK and nothing is done.
	bad := cn.AppendFrame(nil, true)
	bad[len(bad)-1] ^= 0x01
	send(t, c, bad)
	if u := next(t, rd); u.Control != salto.NAK {
		t.Fatalf("bad LRC answered %+v, want NAK", u)
	}
	if s.BadFrames() != 1 || len(s.Received()) != 0 {
		t.Errorf("bad frames %d, received %v", s.BadFrames(), s.Received())
	}

	// 0x0D in place of the LRC is accepted.
	send(t, c, cn.AppendFrame(nil, false))
	if u := next(t, rd); u.Control != salto.ACK {
		t.Fatalf("message answered %+v, want ACK", u)
	}
	u := next(t, rd)
	if want := (salto.Message{"CN2", "Enc 1", "SN000001", "SN000002"}); !slices.Equal(u.Msg, want) {
		t.Errorf("answer %+v, want %q", u, want)
	}
	if r, ok := saltotest.Last(s.Received(), "CN"); !ok || !slices.Equal(r.Msg, cn) || r.Refused || r.Checked {
		t.Errorf("recorded %+v, want %q", r, cn)
	}

	// A message Salto would not understand is answered ES.
	send(t, c, salto.Message{"XX", "Enc 1"}.AppendFrame(nil, true))
	next(t, rd) // ACK
	if u := next(t, rd); !slices.Equal(u.Msg, salto.Message{"ES"}) {
		t.Errorf("unknown command answered %+v, want ES", u)
	}
}

// A copy for a room checked out with CO is refused with EA; a new card
// checks the room in again.
func TestCheckOut(t *testing.T) {
	_, c, rd := start(t, saltotest.Options{NoLRC: true})
	exchange := func(m salto.Message) salto.Message {
		t.Helper()
		send(t, c, m.AppendFrame(nil, true))
		if u := next(t, rd); u.Control != salto.ACK {
			t.Fatalf("%s answered %+v, want ACK", m, u)
		}
		return next(t, rd).Msg
	}
	cc := slices.Clone(cn)
	cc[0] = "CC"
	if a := exchange(salto.Message{"CO", "0", "101"}); !slices.Equal(a, salto.Message{"CO", "0"}) {
		t.Errorf("CO answered %q", a)
	}
	if a := exchange(cc); a.Field(0) != "EA" {
		t.Errorf("CC after CO answered %q, want EA", a)
	}
	exchange(cn)
	if a := exchange(cc); a.Field(0) != "CC" || len(a) != 3 {
		t.Errorf("CC after CN answered %q, want CC with a serial", a)
	}
}

func TestBusyAndNAK(t *testing.T) {
	s, c, rd := start(t, saltotest.Options{})
	s.SetBusy(true)
	send(t, c, []byte{salto.ENQ})
	if u := next(t, rd); u.Control != salto.NAK {
		t.Fatalf("busy ENQ answered %+v, want NAK", u)
	}
	s.SetBusy(false)
	s.SetNAK(1)
	send(t, c, cn.AppendFrame(nil, true))
	if u := next(t, rd); u.Control != salto.NAK {
		t.Fatalf("first message answered %+v, want NAK", u)
	}
	send(t, c, cn.AppendFrame(nil, true))
	if u := next(t, rd); u.Control != salto.ACK {
		t.Fatalf("second message answered %+v, want ACK", u)
	}
	recs := s.Received()
	if len(recs) != 2 || !recs[0].Refused || recs[1].Refused {
		t.Errorf("records %+v, want the first refused", recs)
	}
}
