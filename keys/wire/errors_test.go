package wire_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

func TestNoAnswer(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), began.Add(60*time.Second-time.Millisecond))
	cancel() // a context cancelled by hand is not at its deadline
	if got := wire.NoAnswer(ctx, "encoder program", began); got.Msg != "encoder program stopped: operation cancelled" || !got.MaybeCut {
		t.Errorf("cancelled: %#v", got)
	}

	ctx, cancel = context.WithDeadline(context.Background(), began.Add(-time.Hour))
	defer cancel()
	got := wire.NoAnswer(ctx, "encoder server", began.Add(-time.Hour-60*time.Second+time.Millisecond))
	if got.Msg != "no answer from encoder server within 60s" || !got.MaybeCut || !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("deadline: %#v", got)
	}
	got = wire.NoAnswer(ctx, "encoder server", began.Add(-time.Hour-300*time.Millisecond))
	if got.Msg != "no answer from encoder server within 300ms" {
		t.Errorf("short deadline: %q", got.Msg)
	}
}

func TestNotStarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := wire.NotStarted(ctx); keys.MaybeCut(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("NotStarted = %#v", err)
	}
}
