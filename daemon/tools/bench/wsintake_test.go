package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/mews"
)

// BenchmarkWSIntake is the WebSocket client's throughput, events handed to
// the daemon per second, next to a floor measured in the same run: a bare
// coder/websocket read loop decoding each frame into a minimal struct. The
// server streams one prepared frame as fast as the client reads.
func BenchmarkWSIntake(b *testing.B) {
	for _, perFrame := range []int{100, 1} {
		b.Run(fmt.Sprintf("%d per frame", perFrame), func(b *testing.B) {
			frame := eventFrame(perFrame)
			events := 200_000
			if perFrame == 1 {
				events = 50_000
			}
			srv := frameServer(b, frame)
			var bare, ours intake
			for b.Loop() {
				bare.add(measureIntake(b, events, func(ctx context.Context, count func(int)) { bareLoop(ctx, b, srv.URL, count) }))
				ours.add(measureIntake(b, events, func(ctx context.Context, count func(int)) { clientLoop(ctx, b, srv.URL, count) }))
			}
			ratio := ours.perSecond() / bare.perSecond()
			bar := map[int]float64{100: 0.8, 1: 0.7}[perFrame]
			report(b, record{Samples: ours.events, Metrics: []metric{
				plain("bare loop (floor)", bare.perSecond(), "bare-events/s"),
				plain("mews-keyd WebSocket client", ours.perSecond(), "events/s"),
				atLeast("client / bare loop", ratio, "ratio", bar),
				plain("allocations per event, bare loop", bare.allocsPerEvent(), "bare-allocs/event"),
				plain("allocations per event, client", ours.allocsPerEvent(), "allocs/event"),
			}})
		})
	}
}

// intake sums the measurements of one side.
type intake struct {
	events  int
	took    time.Duration
	mallocs uint64
}

func (in *intake) add(m intake) {
	in.events += m.events
	in.took += m.took
	in.mallocs += m.mallocs
}

func (in *intake) perSecond() float64      { return float64(in.events) / in.took.Seconds() }
func (in *intake) allocsPerEvent() float64 { return float64(in.mallocs) / float64(in.events) }

// measureIntake runs loop until it has counted events events.
func measureIntake(b *testing.B, events int, loop func(ctx context.Context, count func(int))) intake {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Int64
	done := make(chan struct{})
	count := func(n int) {
		if got.Add(int64(n)) >= int64(events) && got.Load()-int64(n) < int64(events) {
			close(done)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	finished := make(chan struct{})
	go func() { defer close(finished); loop(ctx, count) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		b.Fatalf("only %d of %d events arrived", got.Load(), events)
	}
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	cancel()
	<-finished
	return intake{events: events, took: took, mallocs: after.Mallocs - before.Mallocs}
}

func eventFrame(n int) []byte {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = fmt.Sprintf(`{"Type":"DeviceCommand","Id":"8f2b6a1e-4c3d-4e5f-9a0b-%012d","State":"Pending"}`, i)
	}
	return []byte(`{"Events":[` + strings.Join(evs, ",") + `]}`)
}

// frameServer accepts any WebSocket and writes frame to it until it closes.
func frameServer(b *testing.B, frame []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := conn.CloseRead(r.Context())
		for ctx.Err() == nil {
			if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	return srv
}

// bareLoop is the floor: read, decode into the least that is needed, count.
func bareLoop(ctx context.Context, b *testing.B, url string, count func(int)) {
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), nil)
	if err != nil {
		b.Error(err)
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var msg struct {
			Events []struct{ Type, Id, State string }
		}
		if err := json.Unmarshal(data, &msg); err != nil {
			b.Error(err)
			return
		}
		count(len(msg.Events))
	}
}

// clientLoop is what the daemon runs: mews.WSClient handing events on.
func clientLoop(ctx context.Context, b *testing.B, url string, count func(int)) {
	w, err := mews.NewWSClient(mews.WSConfig{URL: "ws" + strings.TrimPrefix(url, "http"),
		ClientToken: "client-token", AccessToken: "access-token", Logger: zerolog.Nop()})
	if err != nil {
		b.Error(err)
		return
	}
	if err := w.Run(ctx, mews.WSHandler{OnEvents: func(evs []mews.Event) { count(len(evs)) }}); err != nil {
		b.Error(err)
	}
}
