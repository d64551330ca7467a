package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/status"
	"github.com/mews-keyd/mews-keyd/keys"
)

// healthProbeTimeout bounds an encoder's health answer in a snapshot.
const healthProbeTimeout = time.Second

// Health is the daemon's picture of itself for /healthz and the watchdog.
func (d *Daemon) Health() status.Snapshot {
	ws := d.ws.Status()
	snap := status.Snapshot{
		Version: d.deps.Version,
		WebSocket: status.WebSocketHealth{
			Connected: ws.Connected,
			Since:     ws.Since,
			LastEvent: ws.LastEvent,
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthProbeTimeout)
	defer cancel()
	route := d.route.Load()
	for _, st := range route.all() {
		h := encoderHealth(ctx, st)
		snap.Encoders = append(snap.Encoders, status.EncoderHealth{Name: st.name, OK: h.OK, Detail: h.Detail, Since: h.Since, Queue: st.depth()})
	}
	snap.Journal = d.journalHealth()
	if j := d.journal; j != nil {
		if out, err := j.Outbox(); err == nil {
			snap.OutboxDepth = len(out)
		}
	}
	if d.outbox != nil {
		snap.OutboxRefused = d.outbox.refusedCount()
	}
	if why := d.reloadRejected.Load(); why != nil {
		snap.ReloadRejected = *why
	}
	return snap
}

func (d *Daemon) journalHealth() status.JournalHealth {
	j := d.journal
	if j == nil {
		return status.JournalHealth{OK: false, Detail: "not open"}
	}
	if _, _, err := j.Get("health-probe"); err != nil {
		return status.JournalHealth{OK: false, Detail: err.Error()}
	}
	h := status.JournalHealth{OK: true, OpenCommands: j.Stats().Open}
	if moved := j.MovedAside(); moved != "" {
		h.Detail = "a corrupt journal was moved aside to " + moved
	}
	return h
}

// intakeStall is how long the intake may go without coming round its loop
// before the daemon counts as hung. It is generous on purpose: a catch-up
// poll during a Mews outage legitimately retries for up to two minutes.
const intakeStall = 5 * time.Minute

// Healthy is what the service watchdog asks: can the daemon still do its
// work? See Stuck.
func (d *Daemon) Healthy() bool { return d.Stuck() == "" }

// Stuck says which part keeps the daemon from doing its work, or "" when
// none does: the journal cannot be read, or the intake, which every command
// passes through, has been stuck for intakeStall. Time spent in a pause
// Mews asked for (429 Retry-After) is waiting, not being stuck: the stall
// is counted from the end of the pause.
func (d *Daemon) Stuck() string {
	if j := d.journalHealth(); !j.OK {
		return "journal: " + j.Detail
	}
	if d.intake == nil {
		return "intake: not running"
	}
	since := d.intake.lastBeat()
	if paused := d.api.Limiter().PausedUntil(); paused.After(since) {
		since = paused
	}
	if stalled := time.Since(since); stalled >= intakeStall {
		return fmt.Sprintf("intake: no progress for %s", stalled.Round(time.Second))
	}
	return ""
}

var _ status.Source = (*Daemon)(nil)

func encoderHealth(ctx context.Context, st *station) keys.Health {
	if hr, ok := st.enc.(keys.HealthReporter); ok {
		return hr.Health(ctx)
	}
	return keys.Health{OK: true, Detail: "no health report from this driver"}
}
