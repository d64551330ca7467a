package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/mews-keyd/mews-keyd/daemon/config"
)

type reloadRequest struct {
	cfg  *config.Config
	done chan error
}

// errNotRunning is returned by Reload outside Run.
var errNotRunning = errors.New("the daemon is not running")

// Reload applies a new configuration's encoders, key cutters and rooms:
// unchanged encoders keep running, changed ones are replaced (the old one
// finishes its queue before the new one starts), new key cutters are served
// from the next command on. The WebSocket is renewed only when the key
// cutters change, as Mews's device-integration guide asks. Changes to [mews], [daemon], [log]
// and [digital_keys] need a restart and are reported, not applied. When
// Reload returns an error, the running configuration stays in force.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) error {
	req := reloadRequest{cfg: cfg, done: make(chan error, 1)}
	select {
	case d.reloads <- req:
	case <-ctx.Done():
		return errNotRunning
	}
	return <-req.done
}

// ReloadOutcome records how the last reload of the configuration file
// ended, err nil when it was applied; /healthz shows a rejection until a
// reload succeeds. The caller reports it, because a file that does not
// load never reaches Reload.
func (d *Daemon) ReloadOutcome(err error) {
	var why string
	if err != nil {
		why = err.Error()
	}
	d.reloadRejected.Store(&why)
}

// applyReload runs on the intake goroutine, so no command is routed while
// the routing changes.
func (d *Daemon) applyReload(cfg *config.Config) error {
	cur := d.route.Load()
	if d.dk != nil {
		if next := cur.reusableIn(cfg, d.dk.Encoder()); next == nil {
			return fmt.Errorf("encoder %q issues digital keys: changing or removing it needs a restart", d.dk.Encoder())
		}
	}
	next, opened, err := d.buildRouting(cfg, cur)
	if err != nil {
		return err
	}
	d.route.Store(next)
	cur.described.prev = nil // only the set just replaced is waited for
	for _, st := range opened {
		d.startStation(st, cur.stations[st.name])
	}
	if !maps.Equal(cur.cutterEncoders(), next.cutterEncoders()) {
		d.log.Info().Msg("key cutters changed: renewing the WebSocket connection")
		d.ws.Reconnect()
	}
	var retired []string
	for name, st := range cur.stations {
		if next.stations[name] != st {
			st.retire()
			retired = append(retired, name)
		}
	}
	// Stations opened from settings in Mews are opened again, with the
	// new configuration, as their key cutters' commands come.
	for _, st := range cur.described.all() {
		st.retire()
		retired = append(retired, st.name)
	}
	slices.Sort(retired)
	if restart := d.needsRestart(cfg); len(restart) > 0 {
		d.log.Warn().Strs("sections", restart).Msg("configuration reloaded, but these sections change only after a restart")
	}
	d.log.Info().Int("encoders_opened", len(opened)).Strs("encoders_retired", retired).
		Int("key_cutters", len(cfg.KeyCutters)).Msg("configuration reloaded")
	return nil
}

// cutterEncoders maps each key cutter to its encoder's name.
func (r *routing) cutterEncoders() map[string]string {
	m := make(map[string]string, len(r.cutters))
	for cutter, t := range r.cutters {
		m[cutter] = t.name()
	}
	return m
}

// reusableIn returns the station of encoder name if cfg keeps it unchanged.
func (r *routing) reusableIn(cfg *config.Config, name string) *station {
	for _, ec := range cfg.Encoders {
		if ec.Name == name {
			return r.reusable(ec)
		}
	}
	return nil
}

// needsRestart names the sections of cfg that differ from the running ones
// but cannot change while running.
func (d *Daemon) needsRestart(cfg *config.Config) []string {
	var out []string
	for name, pair := range map[string][2]any{
		"[mews]":         {d.cfg.Mews, cfg.Mews},
		"[daemon]":       {d.cfg.Daemon, cfg.Daemon},
		"[log]":          {d.cfg.Log, cfg.Log},
		"[digital_keys]": {d.cfg.DigitalKeys, cfg.DigitalKeys},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
