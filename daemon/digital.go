package daemon

import (
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/digitalkeys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// openDigital builds the digital-key pipeline when [digital_keys] is
// enabled; Run starts it on the journal.
func (d *Daemon) openDigital() error {
	dc := d.cfg.DigitalKeys
	if !dc.Enabled {
		return nil
	}
	st := d.route.Load().station(dc.Encoder)
	if st == nil {
		return fmt.Errorf("digital_keys: no encoder named %q", dc.Encoder)
	}
	dk, err := digitalkeys.New(d.api, digitalkeys.Config{
		Encoder:            dc.Encoder,
		Enc:                st.enc,
		Timeout:            st.timeout,
		IssueBeforeArrival: dc.IssueBeforeArrival.D(),
		WriteBack:          dc.WriteBack,
		Companions:         dc.Companions,
		ReconcileInterval:  d.cfg.Mews.ReconcileInterval.D(),
		History:            d.cfg.Daemon.History.D(),
		Retry:              d.retry,
		LockRoom:           func(name string) string { return mapRoom(d.route.Load().rooms, name) },
		Now:                d.now,
		Logger:             d.log,
		OnOutcome:          d.deps.OnDigitalKey,
		ObserveEncode:      func(took time.Duration) { d.metrics.ObserveEncode(dc.Encoder, took) },
	})
	if err != nil {
		return err
	}
	d.dk = dk
	return nil
}

// digitalEvent hands Reservation and Resource events to the digital-key
// pipeline; like command events they are hints.
func (d *Daemon) digitalEvent(ev mews.Event, at time.Time) {
	switch {
	case d.dk == nil:
		d.log.Debug().Str("type", string(ev.Type)).Str("id", ev.ID).Msg("event ignored: digital keys are off")
	case ev.Type == mews.EventReservation:
		d.dk.Reservation(ev.ID, at)
	case ev.Type == mews.EventResource:
		d.dk.Resource(ev.ID, at)
	}
}
