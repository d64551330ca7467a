package mewstest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/mews-keyd/mews-keyd/mews"
)

// Handshake is one WebSocket handshake attempt. Cookie is the header exactly
// as received (it holds the tokens: keep it out of logs).
type Handshake struct {
	Time   time.Time
	Cookie string
	Status int
}

// frame is one queued WebSocket message.
type frame struct {
	typ  websocket.MessageType
	data []byte
}

// socket is one connected client. Pushes go into its own queue, drained by
// its own writer, so a slow client never blocks the server's lock.
type socket struct {
	conn *websocket.Conn

	mu    sync.Mutex
	queue []frame
	wake  chan struct{} // capacity 1: "queue not empty"
}

func (k *socket) enqueue(f frame) {
	k.mu.Lock()
	k.queue = append(k.queue, f)
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// drop closes the TCP connection without a close frame, as a network
// failure would; the reader and writer then fail and clean up.
func (k *socket) drop() {
	_ = k.conn.CloseNow() // already closed is fine
}

func (k *socket) writeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
		}
		k.mu.Lock()
		batch := k.queue
		k.queue = nil
		k.mu.Unlock()
		for _, f := range batch {
			if err := k.conn.Write(ctx, f.typ, f.data); err != nil {
				k.drop()
				return
			}
		}
	}
}

// cookieOK accepts only the exact form Mews requires:
// "ClientToken=<ct>; AccessToken=<at>" (either order), one Cookie header,
// no spaces around "=", nothing else.
func cookieOK(h http.Header) bool {
	vals := h.Values("Cookie")
	if len(vals) != 1 {
		return false
	}
	parts := strings.Split(vals[0], "; ")
	if len(parts) != 2 {
		return false
	}
	want := map[string]string{"ClientToken": ClientToken, "AccessToken": AccessToken}
	for _, p := range parts {
		name, value, ok := strings.Cut(p, "=")
		if !ok || want[name] == "" || want[name] != value {
			return false
		}
		delete(want, name)
	}
	return len(want) == 0
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	hs := Handshake{Time: s.now(), Cookie: r.Header.Get("Cookie")}
	s.mu.Lock()
	refuse := 0
	if s.refuseN > 0 {
		s.refuseN--
		refuse = s.refuseCode
	}
	s.mu.Unlock()
	if refuse == 0 && !cookieOK(r.Header) {
		refuse = http.StatusUnauthorized
	}
	if refuse != 0 {
		s.recordHandshake(hs, refuse)
		http.Error(w, http.StatusText(refuse), refuse)
		return
	}

	// Recorded before Accept answers, so a client that connected finds its
	// handshake in the list.
	at := s.recordHandshake(hs, http.StatusSwitchingProtocols)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// A silent server is a dead peer: no pong.
		OnPingReceived: func(context.Context, []byte) bool { return !s.isSilent() },
	})
	if err != nil {
		// Accept has answered already: not a valid upgrade request.
		s.mu.Lock()
		s.handshakes[at].Status = http.StatusBadRequest
		s.notifyLocked()
		s.mu.Unlock()
		return
	}

	sock := &socket{conn: conn, wake: make(chan struct{}, 1)}
	if !s.addSocket(sock) {
		sock.drop()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	var writer sync.WaitGroup
	writer.Go(func() { sock.writeLoop(ctx) })

	// Mews clients send nothing, but someone must read for pings and the
	// close handshake; a read error means the socket is gone.
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			break
		}
	}
	cancel()
	sock.drop()
	writer.Wait()
	s.removeSocket(sock)
	s.log.Debug().Msg("socket gone")
}

// recordHandshake appends h and returns its index.
func (s *Server) recordHandshake(h Handshake, status int) int {
	h.Status = status
	s.log.Debug().Int("status", status).Msg("handshake") // never the cookie: it holds the tokens
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handshakes = append(s.handshakes, h)
	s.notifyLocked()
	return len(s.handshakes) - 1
}

// addSocket registers a connected socket, unless the server is closing.
func (s *Server) addSocket(k *socket) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sockets[k] = struct{}{}
	s.notifyLocked()
	return true
}

func (s *Server) removeSocket(k *socket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sockets, k)
	s.notifyLocked()
}

func (s *Server) socketList() []*socket {
	out := make([]*socket, 0, len(s.sockets))
	for k := range s.sockets {
		out = append(out, k)
	}
	return out
}

func (s *Server) isSilent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.silent
}

// sendLocked queues a frame on every socket (twice with duplicate events
// on); a silent server sends nothing, so the frame is lost as it would be
// to a dead peer.
func (s *Server) sendLocked(f frame) {
	if s.silent {
		return
	}
	for k := range s.sockets {
		k.enqueue(f)
		if s.duplicate {
			k.enqueue(f)
		}
	}
}

// pushLocked sends events as one {"Events":[...]} frame.
func (s *Server) pushLocked(evs ...mews.Event) {
	data, err := json.Marshal(struct {
		Events []mews.Event `json:"Events"`
	}{evs})
	if err != nil {
		panic("mewstest: encode events: " + err.Error()) // mews.Event always encodes
	}
	s.sendLocked(frame{typ: websocket.MessageText, data: data})
}

// PushEvents sends evs as one frame to every connected socket.
func (s *Server) PushEvents(evs ...mews.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushLocked(evs...)
}

// PushRaw sends frame as a text message, unchecked: garbage, oversize
// frames, wrong types.
func (s *Server) PushRaw(frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendLocked(frameOf(websocket.MessageText, frame))
}

// PushBinary sends frame as a binary message, which Mews never does.
func (s *Server) PushBinary(frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendLocked(frameOf(websocket.MessageBinary, frame))
}

func frameOf(typ websocket.MessageType, data []byte) frame {
	return frame{typ: typ, data: append([]byte(nil), data...)}
}

// DropSockets closes every socket's TCP connection without a close frame.
func (s *Server) DropSockets() {
	s.mu.Lock()
	socks := s.socketList()
	s.mu.Unlock()
	for _, k := range socks {
		k.drop()
	}
}

// RefuseUpgrades answers the next n handshakes with status instead of
// upgrading.
func (s *Server) RefuseUpgrades(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseN, s.refuseCode = n, status
}

// SetDuplicateEvents makes every frame go out twice.
func (s *Server) SetDuplicateEvents(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.duplicate = on
}

// SetSilent makes the server a dead peer on every socket, present and
// future: pings get no pong and nothing is sent (frames pushed meanwhile are
// lost). A client's close frame is still answered, so clients that give up
// close promptly.
func (s *Server) SetSilent(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent = on
}

// Sockets counts the connected sockets. A socket counts from just after
// the handshake answer, so a test that pushes right after dialing should
// Wait for the count first.
func (s *Server) Sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// Handshakes returns every handshake attempt so far.
func (s *Server) Handshakes() []Handshake {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Handshake(nil), s.handshakes...)
}
