package daemon

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
)

const (
	reportTimeout = 30 * time.Second
	// finalFlush bounds the last delivery attempt at shutdown.
	finalFlush = 5 * time.Second
	// idleWait is how long the outbox sleeps with nothing queued; every
	// queued report wakes it anyway.
	idleWait = time.Hour
)

func (d *Daemon) wakeOutbox() {
	select {
	case d.outboxWake <- struct{}{}:
	default:
	}
}

// runOutbox delivers journalled state updates to Mews until each is
// accepted or Mews shows the command closed. A Mews outage only delays
// reports; it never blocks encoding and never loses an outcome: the reports
// stay in the journal, across restarts too.
//
// While Mews fails, the outbox backs off as a whole (one request per step
// of the schedule, not one per queued report), and every new report is one
// more probe; the first delivery that succeeds sends the whole backlog at
// once. A report Mews refuses (400, 403) while the command is still active
// is a problem of that report alone: it is retried on its own schedule and
// the others go on.
func (d *Daemon) runOutbox(ctx context.Context) {
	ob := outboxState{refused: map[string]time.Time{}}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := d.deliverAll(ctx, &ob)
		if ctx.Err() != nil {
			// One last try, retry schedule or not: the journal keeps
			// whatever still fails for the next start.
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlush)
			d.deliverAll(flush, &ob)
			cancel()
			return
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
		case <-d.outboxWake:
		case <-timer.C:
		}
	}
}

// outboxState is the outbox goroutine's own.
type outboxState struct {
	failures int // consecutive failed deliveries
	// refused holds, per command, when a report Mews refused although the
	// command is still active may be tried again.
	refused map[string]time.Time
}

// deliverAll sends the queued reports in order until one fails for a
// reason that may pass: the others would fail the same way and wait with
// it. It returns when to try again.
func (d *Daemon) deliverAll(ctx context.Context, ob *outboxState) time.Time {
	pending, err := d.journal.Outbox()
	if err != nil {
		d.log.Error().Err(err).Msg("reading the outbox")
		return d.now().Add(d.retry.After(1))
	}
	left := len(pending)
	defer func() {
		d.metrics.SetOutboxDepth(left)
		d.refusedReports.Store(int64(len(ob.refused)))
	}()
	next := d.now().Add(idleWait)
	queued := make(map[string]bool, len(pending))
	for _, e := range pending {
		queued[e.CommandID] = true
	}
	maps.DeleteFunc(ob.refused, func(id string, _ time.Time) bool { return !queued[id] })
	for _, e := range pending {
		if ctx.Err() != nil {
			break
		}
		if at, ok := ob.refused[e.CommandID]; ok && d.now().Before(at) {
			next = minTime(next, at)
			continue
		}
		err := d.deliver(ctx, e)
		if ctx.Err() != nil {
			// Shutting down, not a Mews failure: the report stays queued.
			break
		}
		log := d.log.With().Str(fieldCommand, e.CommandID).Str(fieldEncoder, e.Encoder).Str(fieldState, e.Report.State).Logger()
		var refusedErr *refusedReport
		switch {
		case err == nil:
			left--
			delete(ob.refused, e.CommandID)
			ob.failures = 0
			d.updatesFailing.Store(false)
			continue
		case errors.As(err, &refusedErr):
			retry := d.now().Add(d.retry.After(e.Attempts + 1))
			ob.refused[e.CommandID] = retry
			next = minTime(next, retry)
			if jerr := d.journal.ReportFailed(e.CommandID, err, retry); jerr != nil {
				log.Error().Err(jerr).Msg("recording the failed report")
			}
			log.Error().Err(err).Int("attempt", e.Attempts+1).Time("retry_at", retry).
				Msg("Mews refused the report although the command is still active; retrying it, other reports go on")
			continue
		}
		ob.failures++
		d.updatesFailing.Store(true)
		retry := d.now().Add(d.retry.After(ob.failures))
		if jerr := d.journal.ReportFailed(e.CommandID, err, retry); jerr != nil {
			log.Error().Err(jerr).Msg("recording the failed report")
		}
		log.Warn().Err(err).Int("attempt", e.Attempts+1).Int("queued", left).Time("retry_at", retry).
			Msg("report to Mews failed; the outbox retries")
		return minTime(next, retry)
	}
	return next
}

// refusedReport is a report Mews refused (400, 403) for a command it still
// shows active: retrying may help (the refusal may pass), dropping it would
// leave the command hanging in Mews.
type refusedReport struct{ err error }

func (r *refusedReport) Error() string { return r.err.Error() }
func (r *refusedReport) Unwrap() error { return r.err }

// deliver sends one report. It returns nil once the report is done with:
// accepted, or refused because the command is closed in Mews (already
// final — perhaps by this very report before a crash — or gone), where
// retrying cannot help.
func (d *Daemon) deliver(ctx context.Context, e journal.Entry) error {
	log := d.log.With().Str(fieldCommand, e.CommandID).Str(fieldEncoder, e.Encoder).Str(fieldState, e.Report.State).Logger()
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	err := d.api.UpdateCommand(rctx, mews.CommandUpdate{
		ID:    e.CommandID,
		State: mews.CommandState(e.Report.State),
		Notes: capNote(e.Report.Notes),
	})
	switch {
	case err == nil:
		d.metrics.CommandFinished(e.Report.State)
		log.Info().Msg("reported to Mews")
	case refused(err):
		closed := d.closedInMews(rctx, e.CommandID)
		if closed == nil {
			return &refusedReport{err: err}
		}
		log.Warn().Err(err).AnErr("reason", closed).Msg("Mews no longer accepts an update for this command; dropping the report")
	default:
		return err
	}
	if err := d.journal.MarkReported(e.CommandID); err != nil {
		log.Error().Err(err).Msg("recording the delivered report")
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
