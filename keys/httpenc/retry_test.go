package httpenc

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/internal/testaddr"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/keystest"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

// countDials opens an encoder for addr whose dials are counted; after each
// real dial, then is called with the dial's number.
func countDials(t *testing.T, addr string, then func(n int32)) (*Encoder, *atomic.Int32) {
	t.Helper()
	enc, err := New(Config{URL: "http://" + addr + "/encode", MaxResponseBytes: DefaultMaxResponseBytes}, keys.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	var dials atomic.Int32
	dial := enc.transport.DialContext
	enc.transport.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		conn, err := dial(ctx, network, a)
		then(dials.Add(1))
		return conn, err
	}
	return enc, &dials
}

func TestRefusedConnectionRetriedOnce(t *testing.T) {
	addr := testaddr.Free(t)
	enc, dials := countDials(t, addr, func(int32) {})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := enc.Issue(ctx, keystest.SampleRequest(keys.KindCard))
	if keys.Message(err) != "cannot reach the encoder server at "+addr || keys.MaybeCut(err) {
		t.Errorf("err = %#v", err)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d connection attempts, want 2", n)
	}
}

func TestRetryReachesServerThatCameUp(t *testing.T) {
	addr := testaddr.Free(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(wire.Success(keys.Result{Note: "late but fine"}))
	})}
	served := make(chan struct{})
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	enc, dials := countDials(t, addr, func(n int32) {
		if n != 1 {
			return
		}
		// The vendor service finishes restarting between the two attempts.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			close(served)
			t.Error(err)
			return
		}
		go func() {
			defer close(served)
			srv.Serve(ln)
		}()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := enc.Issue(ctx, keystest.SampleRequest(keys.KindCard))
	if err != nil || res.Note != "late but fine" {
		t.Fatalf("Issue = %+v, %v", res, err)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d connection attempts, want 2", n)
	}
}

// A connection that breaks after the request went out is never retried:
// the server may have cut the card.
func TestBrokenConnectionNotRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 4096)
		conn.Read(buf) // the request arrives
		conn.Close()
	}()
	t.Cleanup(func() { ln.Close(); <-accepted })
	enc, dials := countDials(t, ln.Addr().String(), func(int32) {})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = enc.Issue(ctx, keystest.SampleRequest(keys.KindCard))
	if keys.Message(err) != "lost the connection to the encoder server" || !keys.MaybeCut(err) {
		t.Errorf("err = %#v", err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connection attempts, want 1", n)
	}
}
