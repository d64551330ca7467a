package fias

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// A listening socket is shared by the encoders of this process that listen
// on the same address. A config reload opens the new encoder while the old
// one still drains its queue, and closes the old one after; a second bind
// of the address would fail with "address in use", and closing the socket
// in between would refuse the lock system. So the newest encoder on an
// address gets every connection accepted from the time it opens, and the
// socket closes with its last user.
//
// The live link is not handed over with the socket: the old encoder keeps
// its connection, and the requests waiting on it, until its Close ends the
// link with LE; the lock system, which connects again after a link end,
// then reaches the new encoder on the same socket and starts the link with
// it, under the new config. That costs one reconnect, which the lock system
// and a request waiting up to connect_timeout for the link ride out, but it
// keeps every session with the one encoder that started it.
//
// Only an encoder of the same name takes a socket over: two encoders set to
// listen on one address are a mistake, which must fail as loudly as a
// second bind would, not leave one of them without a lock system.
type listener struct {
	ln      net.Listener
	encoder string   // the name of the encoder using it
	names   []string // its keys in listeners
	users   []*link  // in the order they opened; the last gets new connections
	// closed is closed, with ln, when the last user leaves; done when the
	// accept loop has ended.
	closed, done chan struct{}
}

var listeners = struct {
	sync.Mutex
	byAddr map[string]*listener
}{byAddr: map[string]*listener{}}

// listen returns the socket on addr, now serving l of the named encoder:
// the one an earlier instance of that encoder holds (shared is true), or a
// new one.
func listen(addr, encoder string, l *link) (sl *listener, shared bool, err error) {
	listeners.Lock()
	defer listeners.Unlock()
	if sl, ok := listeners.byAddr[addr]; ok {
		if sl.encoder != encoder {
			return nil, false, fmt.Errorf("%s is in use by encoder %q", addr, sl.encoder)
		}
		sl.users = append(sl.users, l)
		return sl, true, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	sl = &listener{ln: ln, encoder: encoder, users: []*link{l}, closed: make(chan struct{}), done: make(chan struct{})}
	// Found under the address it got, which a config may name after a
	// first start on port 0, and under the one asked for, unless that is
	// port 0, which asks for a new port every time.
	sl.names = []string{ln.Addr().String()}
	if _, port, _ := net.SplitHostPort(addr); port != "0" && addr != sl.names[0] {
		sl.names = append(sl.names, addr)
	}
	for _, n := range sl.names {
		listeners.byAddr[n] = sl
	}
	go sl.acceptLoop()
	return sl, false, nil
}

// release takes l off the socket, and closes the socket if l was its last
// user. After release no connection is handed to l.
func (sl *listener) release(l *link) {
	listeners.Lock()
	sl.users = slices.DeleteFunc(sl.users, func(u *link) bool { return u == l })
	last := len(sl.users) == 0
	if last {
		for _, n := range sl.names {
			delete(listeners.byAddr, n)
		}
		// Under the lock: an encoder opened on the address right after
		// must find it free.
		close(sl.closed)
		sl.ln.Close()
	}
	listeners.Unlock()
	if last {
		<-sl.done
	}
}

// newest returns the user that gets new connections; nil once the last has
// left.
func (sl *listener) newest() *link {
	listeners.Lock()
	defer listeners.Unlock()
	if len(sl.users) == 0 {
		return nil
	}
	return sl.users[len(sl.users)-1]
}

func (sl *listener) acceptLoop() {
	defer close(sl.done)
	for {
		conn, err := sl.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if l := sl.newest(); l != nil {
				l.noisy.Warn().Err(err).Msg("accepting lock system connection failed")
			}
			// A pause, so that running out of file descriptors is not a hot loop.
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-sl.closed:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		sl.hand(conn)
	}
}

// hand gives conn to the newest user. A user that is closing has left the
// users before it stops, so a stopped one sends us to the next.
func (sl *listener) hand(conn net.Conn) {
	for {
		l := sl.newest()
		if l == nil {
			conn.Close()
			return
		}
		select {
		case l.incoming <- conn:
			return
		case <-l.stopped:
		}
	}
}
