package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
)

// FromMews is the [from_mews] table: what Mews does not say about the key
// cutters described there (SPEC §6, "Key cutters described in Mews").
type FromMews struct {
	// AllowedHosts are the IPs and CIDRs a key cutter's API URL may point
	// to: whoever can edit the key cutter in Mews must not be able to send
	// this daemon's connections anywhere else.
	AllowedHosts []string `toml:"allowed_hosts"`
	// TimeZone is the property's IANA time zone for the lock system's
	// dates; empty means the machine's local zone.
	TimeZone        string `toml:"time_zone"`
	FIASWorkstation string `toml:"fias_workstation"`
	// FIASRole is "dial" (connect to the API URL) or "listen" (accept the
	// lock system's connection on the API URL's port, from FIASAllowFrom).
	FIASRole      string        `toml:"fias_role"`
	FIASAllowFrom []string      `toml:"fias_allow_from"`
	Timeout       keys.Duration `toml:"timeout"`
}

// FIAS roles.
const (
	FIASDial   = "dial"
	FIASListen = "listen"
)

func defaultFromMews() FromMews {
	return FromMews{
		AllowedHosts:    []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128"},
		FIASWorkstation: "1",
		FIASRole:        FIASDial,
		Timeout:         keys.Duration(DefaultTimeout),
	}
}

// Allows reports whether a key cutter's API URL may point to ip. Entries
// that are not IPs or CIDRs (refused when the file was read) allow nothing.
func (f *FromMews) Allows(ip netip.Addr) bool {
	ip = ip.Unmap()
	return slices.ContainsFunc(f.AllowedHosts, func(h string) bool {
		pfx, err := ParsePrefix(h)
		return err == nil && pfx.Contains(ip)
	})
}

func (p *parser) fromMews(cfg *Config) error {
	f := &cfg.FromMews
	for _, h := range f.AllowedHosts {
		if _, err := ParsePrefix(h); err != nil {
			return p.errorf("from_mews.allowed_hosts", "%v", err)
		}
	}
	for _, h := range f.FIASAllowFrom {
		if _, err := ParsePrefix(h); err != nil {
			return p.errorf("from_mews.fias_allow_from", "%v", err)
		}
	}
	if f.FIASRole != FIASDial && f.FIASRole != FIASListen {
		return p.errorf("from_mews.fias_role", "must be dial or listen, not %q", f.FIASRole)
	}
	if f.FIASWorkstation == "" {
		return p.errorf("from_mews.fias_workstation", "must not be empty")
	}
	if _, err := time.LoadLocation(f.TimeZone); err != nil {
		return p.errorf("from_mews.time_zone", "%v", err)
	}
	if f.Timeout <= 0 {
		return p.errorf("from_mews.timeout", "must be positive")
	}
	return nil
}

// ParsePrefix reads an IP address (a one-address prefix) or a CIDR.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		if pfx, err := netip.ParsePrefix(s); err == nil {
			return pfx.Masked(), nil
		}
	} else if ip, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
}
