package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

const fromMewsOnly = `[mews]
environment = "demo"
client_token = "CT-SECRET-1"
access_token = "AT-SECRET-2"

[[key_cutters]]
device_id = "*"
from_mews = true
`

func TestFromMewsDefaults(t *testing.T) {
	cfg, warnings, err := Parse("config.toml", []byte(fromMewsOnly), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if kc := cfg.KeyCutters[0]; !kc.FromMews || kc.DeviceID != "*" || kc.Encoder != "" {
		t.Errorf("key cutter %+v", kc)
	}
	fm := cfg.FromMews
	if fm.FIASWorkstation != "1" || fm.FIASRole != "dial" || fm.Timeout.D() != 60*time.Second {
		t.Errorf("defaults %+v", fm)
	}
	for _, ip := range []string{"10.1.2.3", "172.16.0.9", "192.168.1.10", "127.0.0.1", "::1"} {
		if !fm.Allows(netip.MustParseAddr(ip)) {
			t.Errorf("%s not allowed by default", ip)
		}
	}
	for _, ip := range []string{"8.8.8.8", "172.32.0.1", "2001:db8::1"} {
		if fm.Allows(netip.MustParseAddr(ip)) {
			t.Errorf("%s allowed by default", ip)
		}
	}
}

func TestFromMewsTable(t *testing.T) {
	doc := fromMewsOnly + `
[[key_cutters]]
identifier = "lobby"
from_mews = true

[from_mews]
allowed_hosts = ["10.0.0.5", "192.168.7.0/24"]
time_zone = "Europe/Prague"
fias_workstation = "7"
fias_role = "listen"
fias_allow_from = ["10.0.0.5"]
timeout = "30s"
`
	cfg, _, err := Parse("config.toml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	fm := cfg.FromMews
	if !fm.Allows(netip.MustParseAddr("10.0.0.5")) || fm.Allows(netip.MustParseAddr("10.0.0.6")) ||
		!fm.Allows(netip.MustParseAddr("192.168.7.200")) {
		t.Errorf("allowed_hosts %v", fm.AllowedHosts)
	}
	if fm.TimeZone != "Europe/Prague" || fm.FIASWorkstation != "7" || fm.FIASRole != "listen" ||
		!slices.Equal(fm.FIASAllowFrom, []string{"10.0.0.5"}) || fm.Timeout.D() != 30*time.Second {
		t.Errorf("from_mews %+v", fm)
	}
}

func TestFromMewsErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"encoder and from_mews", strings.Replace(base, "encoder = \"frontdesk\"\n", "encoder = \"frontdesk\"\nfrom_mews = true\n", 1),
			`config.toml:14: key_cutters[0].from_mews: set either encoder or from_mews, not both`},
		{"two wildcards", fromMewsOnly + "[[key_cutters]]\ndevice_id = \"*\"\nfrom_mews = true\n",
			`config.toml:9: key_cutters[1]: device_id * is already served by key_cutters[0]`},
		{"bad allowed host", fromMewsOnly + "[from_mews]\nallowed_hosts = [\"10.0.0.300\"]\n",
			`config.toml:10: from_mews.allowed_hosts: "10.0.0.300" is not an IP address or CIDR`},
		{"bad role", fromMewsOnly + "[from_mews]\nfias_role = \"server\"\n",
			`config.toml:10: from_mews.fias_role: must be dial or listen, not "server"`},
		{"bad allow_from", fromMewsOnly + "[from_mews]\nfias_role = \"listen\"\nfias_allow_from = [\"lobby\"]\n",
			`config.toml:11: from_mews.fias_allow_from: "lobby" is not an IP address or CIDR`},
		{"bad time zone", fromMewsOnly + "[from_mews]\ntime_zone = \"Mars/Olympus\"\n",
			`config.toml:10: from_mews.time_zone: unknown time zone Mars/Olympus`},
		{"zero timeout", fromMewsOnly + "[from_mews]\ntimeout = \"0s\"\n",
			`config.toml:10: from_mews.timeout: must be positive`},
		{"empty workstation", fromMewsOnly + "[from_mews]\nfias_workstation = \"\"\n",
			`config.toml:10: from_mews.fias_workstation: must not be empty`},
		{"unknown key", fromMewsOnly + "[from_mews]\nhosts = []\n",
			`config.toml:10: from_mews.hosts: unknown key`},
		{"no encoders and no from_mews", strings.Replace(fromMewsOnly, "from_mews = true\n", "", 1),
			`config.toml: encoders: at least one [[encoders]] table is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("config.toml", []byte(tt.doc), noEnv)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
