package daemon

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/keys"
)

// routing says which encoder station serves which key cutter. It is never
// changed in place: a reload builds a new one and swaps it in whole, so the
// intake and the health endpoint always see one consistent picture.
type routing struct {
	encoders []config.Encoder // in config order; each station was opened with its entry
	stations map[string]*station
	cutters  map[string]target // by lower-case Mews device id, "identifier:" + Identifier, or "*"
	rooms    map[string]string
	// described holds the stations of key cutters described in Mews,
	// opened as their commands come.
	described *described
}

// target is what serves a key cutter: a configured encoder's station, or
// the one its settings in Mews describe.
type target struct {
	st       *station
	fromMews bool
}

func (t target) served() bool { return t.st != nil || t.fromMews }

// name is the encoder the key cutter's commands are journalled under
// until they reach a station.
func (t target) name() string {
	if t.fromMews {
		return fromMewsName
	}
	return t.st.name
}

// buildRouting opens a station for every configured encoder, reusing the
// ones in prev whose settings did not change. On error it closes what it
// opened and leaves prev untouched.
func (d *Daemon) buildRouting(cfg *config.Config, prev *routing) (r *routing, opened []*station, err error) {
	r = &routing{
		encoders: cfg.Encoders,
		stations: map[string]*station{},
		cutters:  map[string]target{},
		rooms:    cfg.Rooms,
		described: newDescribed(cfg.FromMews, prev.describedSet(), d.now,
			func(ec config.Encoder, replaces *station) (*station, error) {
				st, err := d.openStation(ec, cfg.Rooms)
				if err == nil {
					st.log.Info().Msg("encoder opened from the key cutter's settings in Mews")
					d.startStation(st, replaces)
				}
				return st, err
			}),
	}
	defer func() {
		if err != nil {
			for _, st := range opened {
				st.close()
			}
			opened = nil
		}
	}()
	for _, ec := range cfg.Encoders {
		if old := prev.reusable(ec); old != nil {
			r.stations[ec.Name] = old
			continue
		}
		st, err := d.openStation(ec, cfg.Rooms)
		if err != nil {
			return nil, nil, err
		}
		opened = append(opened, st)
		r.stations[ec.Name] = st
	}
	for _, kc := range cfg.KeyCutters {
		t := target{st: r.stations[kc.Encoder], fromMews: kc.FromMews}
		if kc.DeviceID != "" {
			r.cutters[deviceKey(kc.DeviceID)] = t
		}
		if kc.Identifier != "" {
			r.cutters["identifier:"+kc.Identifier] = t
		}
	}
	return r, opened, nil
}

func (d *Daemon) openStation(ec config.Encoder, rooms map[string]string) (*station, error) {
	drv, ok := keys.Lookup(ec.Driver)
	if !ok {
		return nil, fmt.Errorf("encoder %q: unknown driver %q", ec.Name, ec.Driver)
	}
	log := d.log.With().Str(fieldEncoder, ec.Name).Logger()
	enc, err := drv.Open(ec.Config, keys.Env{
		Name:    ec.Name,
		Timeout: ec.Timeout.D(),
		Rooms:   rooms,
		Logger:  log,
	})
	if err != nil {
		return nil, fmt.Errorf("encoder %q: %w", ec.Name, err)
	}
	return newStation(ec.Name, enc, ec.Timeout.D(), log), nil
}

// reusable returns the station already serving ec with exactly these
// settings, or nil.
func (r *routing) reusable(ec config.Encoder) *station {
	if r == nil {
		return nil
	}
	for _, old := range r.encoders {
		if old.Name == ec.Name && old.Driver == ec.Driver && old.Timeout == ec.Timeout &&
			reflect.DeepEqual(old.Config, ec.Config) {
			return r.stations[ec.Name]
		}
	}
	return nil
}

// station returns the station of encoder name.
func (r *routing) station(name string) *station { return r.stations[name] }

// targetFor returns what serves a Mews device: its own entry (by device
// id, then identifier), else the "*" entry; nothing if neither.
func (r *routing) targetFor(id, identifier string) target {
	if t, ok := r.cutters[deviceKey(id)]; ok {
		return t
	}
	if t, ok := r.cutters["identifier:"+identifier]; ok && identifier != "" {
		return t
	}
	return r.cutters[config.AnyDevice]
}

// all returns every station: the configured ones in config order, then
// those opened from settings in Mews.
func (r *routing) all() []*station {
	out := make([]*station, 0, len(r.encoders))
	for _, ec := range r.encoders {
		out = append(out, r.stations[ec.Name])
	}
	return append(out, r.described.all()...)
}

func (r *routing) describedSet() *described {
	if r == nil {
		return nil
	}
	return r.described
}

// deviceKey is a device id as the cutters map holds it. A device id is a
// GUID, whose case means nothing: a config written in upper case must not
// leave the key cutter unserved.
func deviceKey(id string) string { return strings.ToLower(id) }
