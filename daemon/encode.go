package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// markTimeout bounds the Processing update sent before encoding. It takes
// a fraction of a second when Mews is well; a slow or absent Mews must not
// keep a guest waiting at the desk much longer.
const markTimeout = 2 * time.Second

// runStation runs one station's queue until ctx ends (or, for a station a
// reload retired, until its queue is empty). Stopping never starts another
// card: what is still queued stays accepted in the journal and is resumed
// by the next start, where a command Mews cancelled meanwhile is dropped.
func (d *Daemon) runStation(ctx context.Context, st *station) {
	defer close(st.finished)
	for {
		j, ok := st.next(ctx)
		if !ok {
			break
		}
		d.encode(ctx, st, j)
	}
	if n := st.depth(); n > 0 {
		st.log.Info().Int("queued", n).Msg("stopping with commands queued; they are cut after the next start")
	}
	// A station a reload replaced is nobody else's to close.
	if st.isRetired() {
		d.closeStation(st)
	}
}

// encode runs one command through its encoder. The order is what makes a
// crash safe: Mews hears Processing first (and can still tell us the command
// was cancelled), then the journal records that the encoder is about to be
// called, then the encoder runs, then the result is journalled before Mews
// is told.
func (d *Daemon) encode(ctx context.Context, st *station, j job) {
	log := st.log.With().Str(fieldCommand, j.cmd.ID).Logger()
	ioStart := time.Now()
	// The station has taken this card: a stop from here on lets it finish,
	// so the Processing update is not cut short either.
	if gone := d.markProcessing(context.WithoutCancel(ctx), j.cmd.ID); gone != nil {
		log.Info().Err(gone).Msg("command was closed in Mews before encoding; not cutting")
		if err := d.journal.Abandon(j.cmd.ID, gone.Error()); err != nil {
			log.Error().Err(err).Msg("recording abandoned command")
		}
		return
	}
	if err := d.journal.StartEncode(j.cmd.ID); err != nil {
		log.Error().Err(err).Msg("cannot journal the encode; not cutting")
		if errors.Is(err, journal.ErrInvalidTransition) {
			// The journal has the command further along: whoever moved it
			// there reports it. A second report could contradict theirs.
			return
		}
		d.reportWithoutJournal(ctx, j.cmd.ID, mews.CommandError, "mews-keyd cannot write its journal (disk full?); no key was cut")
		return
	}
	j.io += time.Since(ioStart)
	req := cardRequest(&j.cmd, j.data, st.name, d.route.Load().rooms, d.isFirstKey(j.data.ReservationID, j.data.LockIDs))
	// Shutdown does not abort a card being encoded: the encoder's own
	// timeout bounds it.
	encCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.timeout)
	start := d.now()
	latency := start.Sub(j.seen)
	res, encErr := st.enc.Issue(encCtx, req)
	cancel()
	took := d.now().Sub(start)
	d.metrics.ObserveEncode(st.name, took)

	out := Outcome{CommandID: j.cmd.ID, Encoder: st.name, Latency: latency, Queued: j.waited, IO: j.io, Duration: took}
	result := journal.Result{OK: encErr == nil}
	if encErr == nil {
		out.State, out.Note = mews.CommandProcessed, processedNote(res, j.data.KeyCount, j.data.LockIDs)
		result.Note = out.Note
		for _, k := range res.Keys {
			result.Keys = append(result.Keys, journal.Key{ID: k.ID, Type: string(k.Type), Value: k.Value})
		}
		if req.NewKey {
			d.rememberFirstKey(j.data.ReservationID, j.data.LockIDs, j.data.EndUtc)
		}
		log.Info().Int64(fieldLatencyMS, latency.Milliseconds()).Dur("encode_ms", took).Str("note", out.Note).Msg("key encoded")
	} else {
		out.State, out.Note = mews.CommandError, errorNote(encErr, st.timeout)
		result.Error, result.MaybeCut = out.Note, keys.MaybeCut(encErr)
		log.Warn().Err(encErr).Int64(fieldLatencyMS, latency.Milliseconds()).Str("note", out.Note).Msg("key not encoded")
	}
	// Before the report is queued, so that whoever sees the final state in
	// Mews has seen the outcome too.
	if d.deps.OnEncoded != nil {
		d.deps.OnEncoded(out)
	}
	if err := d.journal.FinishEncode(j.cmd.ID, result, string(out.State), out.Note); err != nil {
		// The card exists but the journal cannot say so: tell Mews directly,
		// the only place left to record it.
		log.Error().Err(err).Msg("cannot journal the encode result")
		d.reportWithoutJournal(ctx, j.cmd.ID, out.State, out.Note)
	}
	d.wakeOutbox()
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
func (d *Daemon) markProcessing(ctx context.Context, id string) error {
	if d.updatesFailing.Load() {
		d.log.Debug().Str(fieldCommand, id).Msg("Mews is failing updates; encoding without the Processing update")
		return nil
	}
	mctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	err := d.api.UpdateCommand(mctx, mews.CommandUpdate{ID: id, State: mews.CommandProcessing})
	switch {
	case err == nil:
		return nil
	case refused(err):
		rctx, cancel := context.WithTimeout(ctx, markTimeout)
		defer cancel()
		if closed := d.closedInMews(rctx, id); closed != nil {
			return fmt.Errorf("%w (%w)", closed, err)
		}
		d.log.Warn().Err(err).Str(fieldCommand, id).Msg("Mews refused the Processing update but still shows the command active; encoding anyway")
		return nil
	default:
		d.updatesFailing.Store(true)
		d.log.Warn().Err(err).Str(fieldCommand, id).Msg("could not mark the command Processing in Mews; encoding anyway")
		return nil
	}
}

// refused reports whether Mews refused an update (400, 403). Such a refusal
// alone does not prove the command is closed — a note Mews did not like
// gets the same answer — so closedInMews reads it back.
func refused(err error) bool {
	return errors.Is(err, mews.ErrForbidden) || errors.Is(err, mews.ErrBadRequest)
}

// closedInMews reads a command back after Mews refused an update for it. It
// returns why the command is closed (final in Mews, or gone), or nil when
// it is still active or the read-back failed: then nothing may be given up.
func (d *Daemon) closedInMews(ctx context.Context, id string) error {
	cmds, err := d.api.CommandsByIDs(ctx, []string{id})
	if err != nil {
		d.log.Warn().Err(err).Str(fieldCommand, id).Msg("could not read the command back from Mews")
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

func (d *Daemon) reportWithoutJournal(ctx context.Context, id string, state mews.CommandState, note string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	if err := d.api.UpdateCommand(rctx, mews.CommandUpdate{ID: id, State: state, Notes: capNote(note)}); err != nil {
		d.log.Error().Err(err).Str(fieldCommand, id).Msg("could not report the command to Mews either")
	}
}

// A reservation's first card for a set of rooms is new (FIAS KT=N); later
// ones for the same rooms are duplicates (journal.FirstKey). The rooms are
// Mews's lock ids, which a [rooms] change leaves alone.
func (d *Daemon) isFirstKey(reservationID string, lockIDs []string) bool {
	if reservationID == "" {
		return true
	}
	k, ok, err := d.journal.FirstKey(reservationID)
	return err != nil || !ok || !k.For(lockIDs)
}

func (d *Daemon) rememberFirstKey(reservationID string, lockIDs []string, end time.Time) {
	if reservationID == "" {
		return
	}
	if err := d.journal.PutFirstKey(reservationID, lockIDs, end); err != nil {
		d.log.Warn().Err(err).Msg("recording the reservation's first key")
	}
}
