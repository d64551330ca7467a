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
	cutters  map[string]*station // by lower-case Mews device id, or "identifier:" + Identifier
	rooms    map[string]string
}

// buildRouting opens a station for every configured encoder, reusing the
// ones in prev whose settings did not change. On error it closes what it
// opened and leaves prev untouched.
func (d *Daemon) buildRouting(cfg *config.Config, prev *routing) (r *routing, opened []*station, err error) {
	r = &routing{
		encoders: cfg.Encoders,
		stations: map[string]*station{},
		cutters:  map[string]*station{},
		rooms:    cfg.Rooms,
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
		st := r.stations[kc.Encoder]
		if kc.DeviceID != "" {
			r.cutters[deviceKey(kc.DeviceID)] = st
		}
		if kc.Identifier != "" {
			r.cutters["identifier:"+kc.Identifier] = st
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

// stationFor returns the station serving a Mews device, or nil.
func (r *routing) stationFor(id, identifier string) *station {
	if st, ok := r.cutters[deviceKey(id)]; ok {
		return st
	}
	if identifier != "" {
		return r.cutters["identifier:"+identifier]
	}
	return nil
}

// deviceKey is a device id as the cutters map holds it. A device id is a
// GUID, whose case means nothing: a config written in upper case must not
// leave the key cutter unserved.
func deviceKey(id string) string { return strings.ToLower(id) }
