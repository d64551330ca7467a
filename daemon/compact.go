package daemon

import (
	"context"
	"time"
)

const compactEvery = time.Hour

// runCompaction drops finished commands older than the configured history
// so the journal stays small on a machine that runs for years.
func (d *Daemon) runCompaction(ctx context.Context) {
	t := time.NewTicker(compactEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := d.journal.Compact()
			if err != nil {
				d.log.Error().Err(err).Msg("compacting the journal")
				continue
			}
			// First-key records of stays that ended longer ago than the
			// history: no card will be cut for them again.
			stays, err := d.journal.ForgetFirstKeys(d.now().Add(-d.cfg.Daemon.History.D()))
			if err != nil {
				d.log.Error().Err(err).Msg("compacting the journal's first-key records")
			}
			if n+stays > 0 {
				d.log.Info().Int("removed", n).Int("finished_stays", stays).Msg("journal compacted")
			}
		}
	}
}
