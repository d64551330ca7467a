package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/keys/fias"
	"github.com/mews-keyd/mews-keyd/keys/salto"
	"github.com/mews-keyd/mews-keyd/mews"
)

// fromMewsName is the encoder a command is journalled under when the key
// cutter's settings in Mews cannot be served: no station was opened for it.
const fromMewsName = "from-mews"

// Lock types of a key cutter's Data JSON in Mews that mews-keyd speaks.
const (
	typeFIAS     = "FiasProtocol"
	typeStandard = "IndustryStandardProtocol"
)

// idleClose is how long an encoder opened from settings in Mews stays open
// without a command: a key cutter removed or moved in Mews must not keep a
// link to its old lock server forever.
const idleClose = time.Hour

// resolveTimeout bounds the name lookup of an API URL's host. It runs on
// the intake goroutine, which admits nothing else meanwhile.
const resolveTimeout = 5 * time.Second

// described holds the stations of key cutters described in Mews (SPEC §6),
// opened on a key cutter's first command and shared by every key cutter
// whose settings name the same lock server: one station, so one link and
// one FIFO, per driver, address and settings. It belongs to one routing: a
// reload makes a new one and retires these stations.
type described struct {
	cfg config.FromMews
	// open opens a station for an encoder built from Mews's settings and
	// starts its worker once replaces (the previous routing's station of
	// the same name, or nil) has finished.
	open func(ec config.Encoder, replaces *station) (*station, error)
	// prev is the previous routing's set, whose stations are retired.
	prev *described
	now  func() time.Time

	mu       sync.Mutex
	stations map[string]*station // by name
	// used is when each station last got a command; idle holds the
	// stations closeIdle retired, until one of that name opens again.
	used map[string]time.Time
	idle map[string]*station
}

func newDescribed(cfg config.FromMews, prev *described, now func() time.Time,
	open func(ec config.Encoder, replaces *station) (*station, error)) *described {
	return &described{cfg: cfg, prev: prev, now: now, open: open,
		stations: map[string]*station{}, used: map[string]time.Time{}, idle: map[string]*station{}}
}

// all returns the stations opened so far, by name.
func (d *described) all() []*station {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := slices.Sorted(maps.Keys(d.stations))
	out := make([]*station, len(names))
	for i, n := range names {
		out[i] = d.stations[n]
	}
	return out
}

func (d *described) get(name string) *station {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stations[name]
}

// refusal is why a key cutter's settings in Mews cannot be served: note is
// for the receptionist, cause for the log.
type refusal struct {
	note  string
	cause error
}

// station returns the station that serves a key cutter command from the
// key cutter's settings in Mews, opening it on first use.
func (d *described) station(data *mews.KeyCutterData) (*station, *refusal) {
	ec, ref := d.encoder(data)
	if ref != nil {
		return nil, ref
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.stations[ec.Name]; st != nil {
		d.used[ec.Name] = d.now()
		return st, nil
	}
	// One station per encoder at a time: a new one starts once the one it
	// replaces, retired by a reload or for idleness, has finished.
	replaces := d.idle[ec.Name]
	if replaces == nil {
		replaces = d.prev.get(ec.Name)
	}
	st, err := d.open(ec, replaces)
	if err != nil {
		return nil, &refusal{note: "the key cutter's settings in Mews cannot be used: " + err.Error(), cause: err}
	}
	delete(d.idle, ec.Name)
	d.stations[ec.Name], d.used[ec.Name] = st, d.now()
	return st, nil
}

// closeIdle retires the stations that got no command for idleClose and
// have none queued.
func (d *described) closeIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, st := range d.stations {
		if d.now().Sub(d.used[name]) < idleClose || st.depth() > 0 {
			continue
		}
		st.log.Info().Msg("closing the encoder opened from the key cutter's settings in Mews: no command for an hour")
		st.retire()
		delete(d.stations, name)
		delete(d.used, name)
		d.idle[name] = st
	}
}

// encoder builds the encoder a key cutter's settings in Mews describe.
func (d *described) encoder(data *mews.KeyCutterData) (config.Encoder, *refusal) {
	typ, mobile, ref := cutterType(data.KeyCutterData)
	if ref != nil {
		return config.Encoder{}, ref
	}
	if !spoken(typ) {
		return config.Encoder{}, &refusal{note: fmt.Sprintf("the key cutter's lock type %q in Mews is not spoken natively by mews-keyd yet; "+
			"configure an exec or http encoder for this key cutter", typ)}
	}
	ip, port, ref := d.lockServer(data.APIURL)
	if ref != nil {
		return config.Encoder{}, ref
	}
	addr := net.JoinHostPort(ip.String(), port)
	ec := config.Encoder{Timeout: d.cfg.Timeout}
	if typ == typeFIAS {
		// One link per lock server for all its key cutters: KC is each
		// command's key cutter identifier.
		c := fias.DefaultConfig()
		c.Workstation, c.KCFromKeyCutter, c.TimeZone = d.cfg.FIASWorkstation, true, d.cfg.TimeZone
		ec.Name = "fias " + addr
		if d.cfg.FIASRole == config.FIASListen {
			// The lock system connects to us, on the API URL's port, from
			// the listed addresses or else from the API URL's host.
			c.Listen, c.AllowFrom = net.JoinHostPort("", port), d.cfg.FIASAllowFrom
			if len(c.AllowFrom) == 0 {
				c.AllowFrom = []string{ip.String()}
			}
			ec.Name = "fias listening on port " + port
		} else {
			c.Address = addr
		}
		ec.Driver, ec.Config = "fias", &c
	} else {
		// Salto takes the encoder from each command's identifier.
		c := salto.DefaultConfig()
		c.Address, c.TimeZone, c.Mobile = addr, d.cfg.TimeZone, mobile
		ec.Name = "salto " + addr
		if mobile {
			ec.Name += " mobile"
		}
		ec.Driver, ec.Config = "salto", &c
	}
	if err := ec.Config.(interface{ Validate() error }).Validate(); err != nil {
		return config.Encoder{}, &refusal{note: "the key cutter's settings in Mews cannot be used: " + err.Error(), cause: err}
	}
	return ec, nil
}

// spoken reports whether mews-keyd speaks a key cutter's lock type.
func spoken(typ string) bool { return typ == typeFIAS || typ == typeStandard }

// cutterType reads the lock type (and whether it sends mobile keys) from
// a key cutter's Data JSON.
func cutterType(dataJSON string) (typ string, mobile bool, ref *refusal) {
	const invalid = "the key cutter's Data JSON in Mews is not valid: "
	if strings.TrimSpace(dataJSON) == "" {
		return "", false, &refusal{note: invalid + "it is empty"}
	}
	var d struct {
		Type       string
		MobileKeys any // "true" as Mews's own connector writes it, or true
	}
	if err := json.Unmarshal([]byte(dataJSON), &d); err != nil {
		return "", false, &refusal{note: invalid + err.Error(), cause: err}
	}
	if d.Type == "" {
		return "", false, &refusal{note: invalid + "it names no Type"}
	}
	return d.Type, strings.EqualFold(fmt.Sprint(d.MobileKeys), "true"), nil
}

// lockServer reads the lock server's address from an API URL and checks
// it against allowed_hosts before anything is sent there. A host name must
// resolve to allowed addresses only; the first is used, so that what is
// dialled is what was checked.
func (d *described) lockServer(apiURL string) (netip.Addr, string, *refusal) {
	if apiURL == "" {
		return netip.Addr{}, "", &refusal{note: "the key cutter has no API URL in Mews; set the lock server's address there (http://<ip>:<port>)"}
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Hostname() == "" {
		return netip.Addr{}, "", &refusal{note: fmt.Sprintf("the key cutter's API URL in Mews (%q) is not a URL like http://<ip>:<port>", shownURL(apiURL)), cause: err}
	}
	if u.Port() == "" {
		return netip.Addr{}, "", &refusal{note: fmt.Sprintf("the key cutter's API URL in Mews (%q) names no port", shownURL(apiURL))}
	}
	host := u.Hostname()
	addrs, err := resolve(host)
	if err != nil {
		return netip.Addr{}, "", &refusal{note: fmt.Sprintf("the key cutter's API URL in Mews names %s, which cannot be found: %v", host, err), cause: err}
	}
	for _, a := range addrs {
		if !d.cfg.Allows(a) {
			return netip.Addr{}, "", &refusal{note: fmt.Sprintf("the key cutter's API URL in Mews points to %s, which [from_mews] allowed_hosts does not allow; nothing was sent to it", host)}
		}
	}
	return addrs[0].Unmap(), u.Port(), nil
}

// shownURL is an API URL as notes, logs and check show it: without the
// password it may carry.
func shownURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// resolve returns host's addresses; an IP address is its own.
func resolve(host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no address")
	}
	return addrs, err
}
