package daemon

import (
	"fmt"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
)

// recover resumes what a previous run left unfinished, before any event is
// read:
//   - accepted but never started: fetched again and encoded normally, in
//     the original order, even if Mews shows it Processing (the journal
//     proves the encoder was never called) — unless Mews closed it, it is
//     gone, or it has become older than max_command_age (intake.go,
//     resumeCommand);
//   - encode started but not finished: reported Error, never re-encoded,
//     because the card may exist;
//   - encode finished but not reported: the outbox reports it (no action
//     needed here: those entries are already in the outbox).
func (d *Daemon) recover() error {
	if moved := d.journal.MovedAside(); moved != "" {
		d.replaySalvaged(moved)
	}
	entries, err := d.journal.Unfinished()
	if err != nil {
		return fmt.Errorf("reading the journal for recovery: %w", err)
	}
	for _, e := range entries {
		log := d.log.With().Str(fieldCommand, e.CommandID).Str(fieldEncoder, e.Encoder).Logger()
		switch e.Step {
		case journal.StepEncodeStarted:
			log.Warn().Msg("encode was interrupted by a restart; reporting Error instead of cutting again")
			if err := d.journal.FinishEncode(e.CommandID, journal.Result{Error: interruptedNote, MaybeCut: true}, "Error", interruptedNote); err != nil {
				return fmt.Errorf("recording interrupted command %s: %w", e.CommandID, err)
			}
		case journal.StepAccepted:
			// Its details are fetched again: the journal keeps progress,
			// not guest data.
			d.intake.resumeLater(e.CommandID, d.now())
		}
	}
	return nil
}

// replaySalvaged copies the unfinished commands that survive in a journal
// file Open had to move aside into the fresh journal, so that recovery
// treats them as if nothing had happened: an accepted command is resumed,
// an interrupted encode is reported Error, and a result still waiting for
// Mews is reported as it was. Without this, a command whose Processing
// update was skipped during an outage would look Pending again and be cut
// a second time.
func (d *Daemon) replaySalvaged(moved string) {
	entries, err := journal.Salvage(moved)
	if err != nil {
		d.log.Error().Err(err).Msg("nothing could be salvaged from the corrupt journal")
		return
	}
	n := 0
	for _, e := range entries {
		if e.Step.Final() {
			continue
		}
		log := d.log.With().Str(fieldCommand, e.CommandID).Str(fieldEncoder, e.Encoder).Logger()
		if err := d.replay(e); err != nil {
			log.Error().Err(err).Msg("could not restore a command salvaged from the corrupt journal")
			continue
		}
		log.Warn().Stringer("step", e.Step).Msg("restored a command from the corrupt journal")
		n++
	}
	d.log.Warn().Str("file", moved).Int("restored", n).Msg("unfinished commands salvaged from the corrupt journal")
}

func (d *Daemon) replay(e journal.Entry) error {
	if _, _, err := d.journal.Accept(e.CommandID, e.Encoder, e.Device); err != nil {
		return err
	}
	switch e.Step {
	case journal.StepEncodeStarted:
		return d.journal.StartEncode(e.CommandID)
	case journal.StepReportQueued:
		if e.Report == nil {
			return d.journal.QueueReport(e.CommandID, "Error", lostTrackNote)
		}
		return d.journal.QueueReport(e.CommandID, e.Report.State, e.Report.Notes)
	}
	return nil
}
