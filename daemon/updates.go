package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/mews"
)

// updates is what the stations and the outbox share about changing
// commands in Mews: whether Mews is failing our updates now, and how to
// read a command back when it refuses one. Safe for concurrent use.
type updates struct {
	api *mews.Client
	log zerolog.Logger
	// failing is set while Mews refuses our state updates: the Processing
	// update is then skipped, so an outage does not keep guests waiting at
	// the desk. The outbox clears it when a report goes through.
	failing atomic.Bool
}

// markProcessing tells Mews the command is being worked on. It returns an
// error only when Mews shows the command closed (cancelled, already final
// or gone); any other failure is logged and the encode goes ahead, because
// an outage must not stop keys being cut.
//
// While Mews is failing our updates (the outbox's last delivery, or the
// last Processing update, failed) the update is not even tried: each key
// cut during an outage would otherwise wait markTimeout for nothing. The
// final state still reaches Mews through the outbox.
func (u *updates) markProcessing(ctx context.Context, id string) error {
	if u.failing.Load() {
		u.log.Debug().Str(fieldCommand, id).Msg("Mews is failing updates; encoding without the Processing update")
		return nil
	}
	mctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	err := u.api.UpdateCommand(mctx, mews.CommandUpdate{ID: id, State: mews.CommandProcessing})
	switch {
	case err == nil:
		return nil
	case refused(err):
		rctx, cancel := context.WithTimeout(ctx, markTimeout)
		defer cancel()
		if closed := u.closedInMews(rctx, id); closed != nil {
			return fmt.Errorf("%w (%w)", closed, err)
		}
		u.log.Warn().Err(err).Str(fieldCommand, id).Msg("Mews refused the Processing update but still shows the command active; encoding anyway")
		return nil
	default:
		u.failing.Store(true)
		u.log.Warn().Err(err).Str(fieldCommand, id).Msg("could not mark the command Processing in Mews; encoding anyway")
		return nil
	}
}

// markTimeout bounds the Processing update sent before encoding. It takes
// a fraction of a second when Mews is well; a slow or absent Mews must not
// keep a guest waiting at the desk much longer.
const markTimeout = 2 * time.Second

// refused reports whether Mews refused an update (400, 403). Such a refusal
// alone does not prove the command is closed — a note Mews did not like
// gets the same answer — so closedInMews reads it back.
func refused(err error) bool {
	return errors.Is(err, mews.ErrForbidden) || errors.Is(err, mews.ErrBadRequest)
}

// closedInMews reads a command back after Mews refused an update for it. It
// returns why the command is closed (final in Mews, or gone), or nil when
// it is still active or the read-back failed: then nothing may be given up.
func (u *updates) closedInMews(ctx context.Context, id string) error {
	cmds, err := u.api.CommandsByIDs(ctx, []string{id})
	if err != nil {
		u.log.Warn().Err(err).Str(fieldCommand, id).Msg("could not read the command back from Mews")
		return nil
	}
	for _, c := range cmds {
		if c.ID == id {
			if c.State.Final() {
				return fmt.Errorf("command is %s in Mews", c.State)
			}
			return nil
		}
	}
	return errors.New("command no longer exists in Mews")
}

func (u *updates) reportDirect(ctx context.Context, id string, state mews.CommandState, note string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	if err := u.api.UpdateCommand(rctx, mews.CommandUpdate{ID: id, State: state, Notes: capNote(note)}); err != nil {
		u.log.Error().Err(err).Str(fieldCommand, id).Msg("could not report the command to Mews either")
	}
}
