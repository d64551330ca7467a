package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/daemon/status"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// cutter is what every station needs to cut a card: the journal, Mews's
// updates, the outbox. Set up by Run once the journal is open; its fields
// do not change after, so every station's goroutine may use it.
type cutter struct {
	journal   *journal.Journal
	updates   *updates
	outbox    *outbox
	metrics   *status.Metrics
	rooms     func() map[string]string // [rooms] in force
	now       func() time.Time
	onEncoded func(Outcome)
}

// runStation runs one station's queue until ctx ends (or, for a station a
// reload retired, until its queue is empty). Stopping never starts another
// card: what is still queued stays accepted in the journal and is resumed
// by the next start, where a command Mews cancelled meanwhile is dropped.
func (c *cutter) runStation(ctx context.Context, st *station) {
	defer close(st.finished)
	for {
		j, ok := st.next(ctx)
		if !ok {
			break
		}
		c.encode(ctx, st, j)
	}
	if n := st.depth(); n > 0 {
		st.log.Info().Int("queued", n).Msg("stopping with commands queued; they are cut after the next start")
	}
	// A station a reload replaced is nobody else's to close.
	if st.isRetired() {
		st.close()
	}
}

// noJournalNote is reported when the journal cannot record an encode.
const noJournalNote = "mews-keyd cannot write its journal (disk full?); no key was cut"

// encode runs one command through its encoder. The order is what makes a
// crash safe: the journal records that the encoder is about to be called
// while Mews hears Processing (and can still tell us the command was
// cancelled), then the encoder runs, then the result is journalled before
// Mews is told.
func (c *cutter) encode(ctx context.Context, st *station, j job) {
	log := st.log.With().Str(fieldCommand, j.cmd.ID).Logger()
	ioStart := time.Now()
	// The station has taken this card: a stop from here on lets it finish,
	// so the Processing update is not cut short either.
	ctx = context.WithoutCancel(ctx)
	if !c.start(ctx, st, j, log) {
		return
	}
	j.io += time.Since(ioStart)
	req := cardRequest(&j.cmd, j.data, st.name, c.rooms(), c.isFirstKey(j.data.ReservationID, j.data.LockIDs))
	// Shutdown does not abort a card being encoded: the encoder's own
	// timeout bounds it.
	encCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.timeout)
	start := c.now()
	latency := start.Sub(j.seen)
	res, encErr := st.enc.Issue(encCtx, req)
	cancel()
	took := c.now().Sub(start)
	c.metrics.ObserveEncode(st.name, took)

	out := Outcome{CommandID: j.cmd.ID, Encoder: st.name, Latency: latency, Queued: j.waited, IO: j.io, Duration: took}
	result := journal.Result{OK: encErr == nil}
	if encErr == nil {
		out.State, out.Note = mews.CommandProcessed, processedNote(res, j.data.KeyCount, j.data.LockIDs)
		result.Note = out.Note
		for _, k := range res.Keys {
			result.Keys = append(result.Keys, journal.Key{ID: k.ID, Type: string(k.Type), Value: k.Value})
		}
		if req.NewKey {
			c.rememberFirstKey(j.data.ReservationID, j.data.LockIDs, j.data.EndUtc, log)
		}
		log.Info().Int64(fieldLatencyMS, latency.Milliseconds()).Dur("encode_ms", took).Str("note", out.Note).Msg("key encoded")
	} else {
		out.State, out.Note = mews.CommandError, errorNote(encErr, st.timeout)
		result.Error, result.MaybeCut = out.Note, keys.MaybeCut(encErr)
		log.Warn().Err(encErr).Int64(fieldLatencyMS, latency.Milliseconds()).Str("note", out.Note).Msg("key not encoded")
	}
	// Before the report is queued, so that whoever sees the final state in
	// Mews has seen the outcome too.
	if c.onEncoded != nil {
		c.onEncoded(out)
	}
	if err := c.journal.FinishEncode(j.cmd.ID, result, string(out.State), out.Note); err != nil {
		// The card exists but the journal cannot say so: tell Mews directly,
		// the only place left to record it.
		log.Error().Err(err).Msg("cannot journal the encode result")
		c.updates.reportDirect(ctx, j.cmd.ID, out.State, out.Note)
	}
	c.outbox.wake()
}

// start gets a command ready to cut: the journal records the encode as
// started (a command the journal does not know yet, handed to an idle
// encoder, as accepted and started at once) while Mews hears Processing,
// and the encoder is called once both are done. Each is one flush of the
// start log, or one round trip. A crash in between leaves either a started
// encode (reported "interrupted", as ever) or, for a fresh command, one
// Mews shows Processing that the journal does not know (reported "lost
// track"): in neither case is a card cut twice. It reports whether to call
// the encoder.
func (c *cutter) start(ctx context.Context, st *station, j job, log zerolog.Logger) bool {
	marked := make(chan error, 1)
	go func() { marked <- c.updates.markProcessing(ctx, j.cmd.ID) }()
	isNew := true // a queued command is in the journal already
	var err error
	if j.fresh {
		isNew, err = c.journal.AcceptStarted(j.cmd.ID, st.name, j.cmd.Device.Name)
	} else {
		err = c.journal.StartEncode(j.cmd.ID)
	}
	gone := <-marked
	switch {
	case errors.Is(err, journal.ErrInvalidTransition), err == nil && !isNew:
		// Only the intake hands commands over, and the journal has this
		// one further along: whoever moved it there reports it. A second
		// report could contradict theirs.
		log.Error().Err(err).Msg("the journal already had this command started or done; not cutting")
		return false
	case err != nil:
		log.Error().Err(err).Msg("cannot journal the encode; not cutting")
		if gone == nil {
			c.updates.reportDirect(ctx, j.cmd.ID, mews.CommandError, noJournalNote)
		}
		return false
	case gone != nil:
		log.Info().Err(gone).Msg("command was closed in Mews before encoding; not cutting")
		if err := c.journal.Withdraw(j.cmd.ID, gone.Error()); err != nil {
			log.Error().Err(err).Msg("recording withdrawn command")
		}
		return false
	}
	return true
}

// A reservation's first card for a set of rooms is new (FIAS KT=N); later
// ones for the same rooms are duplicates (journal.FirstKey). The rooms are
// Mews's lock ids, which a [rooms] change leaves alone.
func (c *cutter) isFirstKey(reservationID string, lockIDs []string) bool {
	if reservationID == "" {
		return true
	}
	k, ok, err := c.journal.FirstKey(reservationID)
	return err != nil || !ok || !k.For(lockIDs)
}

func (c *cutter) rememberFirstKey(reservationID string, lockIDs []string, end time.Time, log zerolog.Logger) {
	if reservationID == "" {
		return
	}
	if err := c.journal.PutFirstKey(reservationID, lockIDs, end); err != nil {
		log.Warn().Err(err).Msg("recording the reservation's first key")
	}
}
