package daemon

import (
	"context"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
)

const (
	reportTimeout    = 30 * time.Second
	maxReportBackoff = 5 * time.Minute
	// finalFlush bounds the last delivery attempt at shutdown.
	finalFlush = 5 * time.Second
)

func (d *Daemon) wakeOutbox() {
	select {
	case d.outboxWake <- struct{}{}:
	default:
	}
}

// runOutbox delivers journalled state updates to Mews until each is
// accepted or Mews says the command is closed. A Mews outage only delays
// reports; it never blocks encoding and never loses an outcome.
func (d *Daemon) runOutbox(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := d.deliverDue(ctx, false)
		if ctx.Err() != nil {
			// One last try for everything, retry schedule or not: the
			// journal keeps whatever still fails for the next start.
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlush)
			d.deliverDue(flush, true)
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

// deliverDue sends every report that is due (all of them with force) and
// returns when the next one will be.
func (d *Daemon) deliverDue(ctx context.Context, force bool) time.Time {
	next := d.now().Add(time.Hour)
	pending, err := d.journal.Outbox()
	if err != nil {
		d.log.Error().Err(err).Msg("reading the outbox")
		return d.now().Add(time.Second)
	}
	d.metrics.SetOutboxDepth(len(pending))
	for _, e := range pending {
		if ctx.Err() != nil {
			break
		}
		if !force && e.NextAttempt.After(d.now()) {
			next = minTime(next, e.NextAttempt)
			continue
		}
		if retry, ok := d.deliver(ctx, e); !ok {
			next = minTime(next, retry)
		}
	}
	return next
}

// deliver sends one report; on failure it returns when to try again.
func (d *Daemon) deliver(ctx context.Context, e journal.Entry) (time.Time, bool) {
	log := d.log.With().Str(fieldCommand, e.CommandID).Str(fieldEncoder, e.Encoder).Str(fieldState, e.Report.State).Logger()
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	err := d.api.UpdateCommand(rctx, mews.CommandUpdate{
		ID:    e.CommandID,
		State: mews.CommandState(e.Report.State),
		Notes: e.Report.Notes,
	})
	cancel()
	switch {
	case ctx.Err() != nil:
		// Shutting down, not a Mews failure: the report stays queued.
		return d.now(), false
	case err == nil:
		d.metrics.CommandFinished(e.Report.State)
		log.Info().Msg("reported to Mews")
	case commandClosed(err):
		log.Warn().Err(err).Msg("Mews no longer accepts an update for this command; dropping the report")
	default:
		retry := d.now().Add(d.reportBackoff(e.Attempts + 1))
		if jerr := d.journal.ReportFailed(e.CommandID, err, retry); jerr != nil {
			log.Error().Err(jerr).Msg("recording the failed report")
		}
		log.Warn().Err(err).Int("attempt", e.Attempts+1).Time("retry_at", retry).Msg("report to Mews failed; will retry")
		return retry, false
	}
	if err := d.journal.MarkReported(e.CommandID); err != nil {
		log.Error().Err(err).Msg("recording the delivered report")
	}
	return time.Time{}, true
}

// reportBackoff doubles from one second (or the test override) per failed
// attempt, up to five minutes.
func (d *Daemon) reportBackoff(attempt int) time.Duration {
	base := d.deps.ReportBackoff
	if base <= 0 {
		base = time.Second
	}
	b := base
	for i := 1; i < attempt && b < maxReportBackoff; i++ {
		b *= 2
	}
	return min(b, maxReportBackoff)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
