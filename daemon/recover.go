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
			d.resume[e.CommandID] = true
			d.hints.add(e.CommandID, d.now())
		}
	}
	return nil
}
