package fias

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
	// Property time zones must resolve on Windows too, which has no zoneinfo
	// database of its own.
	_ "time/tzdata"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/internal/serialport"
)

// Config is the driver's part of an [[encoders]] table.
type Config struct {
	// Address is the lock system's FIAS interface, "host:port", to dial.
	Address string `toml:"address"`
	// Listen is the local "host:port" the lock system connects to instead.
	Listen string `toml:"listen"`
	// Settings holds serial, the port of a lock system on a serial cable
	// (instead of address or listen), and the line settings baud,
	// data_bits, parity and stop_bits. Exactly one of Address, Listen and
	// Serial is set.
	serialport.Settings
	// AllowFrom lists the IPs and CIDRs a lock system may connect from when
	// Listen is set; empty means loopback only. Anyone else who reaches the
	// port could otherwise speak for the lock system.
	AllowFrom []string `toml:"allow_from"`
	// Workstation is sent as WS, the PMS workstation id.
	Workstation string `toml:"workstation"`
	// EncoderStation is sent as KC, the key coder that cuts the cards.
	EncoderStation string `toml:"encoder_station"`
	// KCFromKeyCutter sends each request's KeyCutterID as KC instead of
	// EncoderStation: one link serves every key coder of a lock system.
	// Set by the daemon for key cutters described in Mews, not from TOML.
	KCFromKeyCutter bool `toml:"-"`
	// Keepalive is how long the link may be silent before we probe it with
	// LS; no answer within another Keepalive takes the link down.
	Keepalive keys.Duration `toml:"keepalive"`
	// AlwaysNewKey sends KT=N for every card, for lock systems where a
	// duplicate is not wanted.
	AlwaysNewKey bool `toml:"always_new_key"`
	// TimeZone is the property's IANA time zone, in which all FIAS dates and
	// times are written; empty means the machine's local zone.
	TimeZone string `toml:"time_zone"`
	// DepartureTimeFormat is "HHMM" or "HH:MM", for the DT field.
	DepartureTimeFormat string `toml:"departure_time_format"`
	// ConnectTimeout bounds a TCP connect, and how long a key request waits
	// for a link that is down before it fails with "lock system offline".
	ConnectTimeout keys.Duration `toml:"connect_timeout"`
	// ReconnectMin and ReconnectMax are the first and the longest pause
	// between connection attempts.
	ReconnectMin keys.Duration `toml:"reconnect_min"`
	ReconnectMax keys.Duration `toml:"reconnect_max"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config {
	return Config{
		Settings:            serialport.Defaults(),
		Workstation:         "1",
		EncoderStation:      "1",
		Keepalive:           keys.Duration(60 * time.Second),
		DepartureTimeFormat: "HHMM",
		ConnectTimeout:      keys.Duration(10 * time.Second),
		ReconnectMin:        keys.Duration(time.Second),
		ReconnectMax:        keys.Duration(30 * time.Second),
	}
}

// Validate checks the configuration and names the key of every problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.Address == "" && c.Listen == "" && c.Serial == "":
		bad("address", `set address (dial the lock system), listen (accept its connection) or serial (its port)`)
	case c.Serial != "" && (c.Address != "" || c.Listen != ""):
		bad("serial", "set one of address, listen and serial")
	case c.Address != "" && c.Listen != "":
		bad("listen", "set either address or listen, not both")
	case c.Serial != "":
		errs = append(errs, c.Settings.Validate()...)
	case c.Address != "":
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			bad("address", `want "host:port": %v`, err)
		}
	default:
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen", `want "host:port": %v`, err)
		}
	}
	if c.Listen == "" && len(c.AllowFrom) > 0 {
		bad("allow_from", "only with listen: it says who may connect to us")
	}
	for _, entry := range c.AllowFrom {
		if _, err := parseAllowed(entry); err != nil {
			bad("allow_from", "%v", err)
		}
	}
	for _, f := range []struct{ key, v string }{{"workstation", c.Workstation}, {"encoder_station", c.EncoderStation}} {
		if f.v == "" || Clean(f.v) != f.v {
			bad(f.key, "must be printable ASCII without '|', not %q", f.v)
		}
	}
	for _, f := range []struct {
		key string
		d   keys.Duration
	}{{"keepalive", c.Keepalive}, {"connect_timeout", c.ConnectTimeout}, {"reconnect_min", c.ReconnectMin}} {
		if f.d <= 0 {
			bad(f.key, "must be positive")
		}
	}
	if c.ReconnectMax < c.ReconnectMin {
		bad("reconnect_max", "must not be less than reconnect_min (%s)", c.ReconnectMin)
	}
	if _, err := c.location(); err != nil {
		bad("time_zone", "%v", err)
	}
	if _, err := c.departureLayout(); err != nil {
		bad("departure_time_format", "%v", err)
	}
	return errors.Join(errs...)
}

// loopback is whom a listening driver accepts without allow_from: a lock
// system on another machine is a decision the operator writes down.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// allowFrom returns the prefixes a lock system may connect from.
func (c *Config) allowFrom() ([]netip.Prefix, error) {
	if len(c.AllowFrom) == 0 {
		return loopback, nil
	}
	prefixes := make([]netip.Prefix, 0, len(c.AllowFrom))
	for _, entry := range c.AllowFrom {
		p, err := parseAllowed(entry)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, p)
	}
	return prefixes, nil
}

// parseAllowed reads one allow_from entry, an IP ("192.168.1.20") or a
// CIDR ("10.0.5.0/24"). IPv4 written as IPv6 ("::ffff:10.0.0.1") counts as
// IPv4, the form remote addresses are compared in.
func parseAllowed(entry string) (netip.Prefix, error) {
	bad := fmt.Errorf("%q is neither an IP address nor a CIDR", entry)
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return netip.Prefix{}, bad
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(entry)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, bad
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// allowed reports whether a peer at addr may connect.
func allowed(prefixes []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func (c *Config) location() (*time.Location, error) {
	if c.TimeZone == "" {
		return time.Local, nil
	}
	return time.LoadLocation(c.TimeZone)
}

func (c *Config) departureLayout() (string, error) {
	switch c.DepartureTimeFormat {
	case "HHMM", "":
		return "1504", nil
	case "HH:MM":
		return "15:04", nil
	}
	return "", fmt.Errorf(`want "HHMM" or "HH:MM", not %q`, c.DepartureTimeFormat)
}
