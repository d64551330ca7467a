package daemon

import (
	"context"
	"errors"
	"maps"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/daemon/retry"
	"github.com/mews-keyd/mews-keyd/daemon/status"
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

// outbox delivers the final states the journal holds to Mews. Its
// goroutine (run) owns everything but wakeCh and refused, which anyone may
// touch through wake and refusedCount.
type outbox struct {
	journal *journal.Journal
	updates *updates
	metrics *status.Metrics
	retry   retry.Schedule
	now     func() time.Time
	log     zerolog.Logger

	wakeCh chan struct{}
	// refused counts the reports Mews refused for commands it still shows
	// active, for /healthz.
	refused atomic.Int64
}

func newOutbox(j *journal.Journal, u *updates, m *status.Metrics, r retry.Schedule, now func() time.Time, log zerolog.Logger) *outbox {
	return &outbox{journal: j, updates: u, metrics: m, retry: r, now: now, log: log, wakeCh: make(chan struct{}, 1)}
}

// wake makes the outbox look at the journal now: a report was queued.
func (o *outbox) wake() {
	select {
	case o.wakeCh <- struct{}{}:
	default:
	}
}

// refusedCount is how many queued reports Mews refuses for commands it
// still shows active.
func (o *outbox) refusedCount() int { return int(o.refused.Load()) }

// run delivers journalled state updates to Mews until each is
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
func (o *outbox) run(ctx context.Context) {
	ob := outboxState{refused: map[string]time.Time{}}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := o.deliverAll(ctx, &ob)
		if ctx.Err() != nil {
			// One last try, retry schedule or not: the journal keeps
			// whatever still fails for the next start.
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlush)
			o.deliverAll(flush, &ob)
			cancel()
			return
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
		case <-o.wakeCh:
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
func (o *outbox) deliverAll(ctx context.Context, ob *outboxState) time.Time {
	pending, err := o.journal.Outbox()
	if err != nil {
		o.log.Error().Err(err).Msg("reading the outbox")
		return o.now().Add(o.retry.After(1))
	}
	left := len(pending)
	defer func() {
		o.metrics.SetOutboxDepth(left)
		o.refused.Store(int64(len(ob.refused)))
	}()
	next := o.now().Add(idleWait)
	queued := make(map[string]bool, len(pending))
	for _, e := range pending {
		queued[e.CommandID] = true
	}
	maps.DeleteFunc(ob.refused, func(id string, _ time.Time) bool { return !queued[id] })
	for _, e := range pending {
		if ctx.Err() != nil {
			break
		}
		if at, ok := ob.refused[e.CommandID]; ok && o.now().Before(at) {
			next = minTime(next, at)
			continue
		}
		err := o.deliver(ctx, e)
		if ctx.Err() != nil {
			// Shutting down, not a Mews failure: the report stays queued.
			break
		}
		log := o.log.With().Str(fieldCommand, e.CommandID).Str(fieldEncoder, e.Encoder).Str(fieldState, e.Report.State).Logger()
		var refusedErr *refusedReport
		switch {
		case err == nil:
			left--
			delete(ob.refused, e.CommandID)
			ob.failures = 0
			o.updates.failing.Store(false)
			continue
		case errors.As(err, &refusedErr):
			retry := o.now().Add(o.retry.After(e.Attempts + 1))
			ob.refused[e.CommandID] = retry
			next = minTime(next, retry)
			if jerr := o.journal.ReportFailed(e.CommandID, err, retry); jerr != nil {
				log.Error().Err(jerr).Msg("recording the failed report")
			}
			log.Error().Err(err).Int("attempt", e.Attempts+1).Time("retry_at", retry).
				Msg("Mews refused the report although the command is still active; retrying it, other reports go on")
			continue
		}
		ob.failures++
		o.updates.failing.Store(true)
		retry := o.now().Add(o.retry.After(ob.failures))
		if jerr := o.journal.ReportFailed(e.CommandID, err, retry); jerr != nil {
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
func (o *outbox) deliver(ctx context.Context, e journal.Entry) error {
	log := o.log.With().Str(fieldCommand, e.CommandID).Str(fieldEncoder, e.Encoder).Str(fieldState, e.Report.State).Logger()
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	err := o.updates.api.UpdateCommand(rctx, mews.CommandUpdate{
		ID:    e.CommandID,
		State: mews.CommandState(e.Report.State),
		Notes: capNote(e.Report.Notes),
	})
	switch {
	case err == nil:
		o.metrics.CommandFinished(e.Report.State)
		log.Info().Msg("reported to Mews")
	case refused(err):
		closed := o.updates.closedInMews(rctx, e.CommandID)
		if closed == nil {
			return &refusedReport{err: err}
		}
		log.Warn().Err(err).AnErr("reason", closed).Msg("Mews no longer accepts an update for this command; dropping the report")
	default:
		return err
	}
	if err := o.journal.MarkReported(e.CommandID); err != nil {
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
