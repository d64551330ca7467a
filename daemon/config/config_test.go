package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
)

// Test drivers with names no real driver uses, so the tests can link the
// real drivers too. Two drivers with different keys show that one
// encoder's keys do not count as known for another.
type addrConfig struct {
	Address   string            `toml:"address"`
	Retries   int               `toml:"retries"`
	Keepalive keys.Duration     `toml:"keepalive"`
	Headers   map[string]string `toml:"headers"`
}

func (c *addrConfig) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address: required"))
	}
	if c.Retries > 5 {
		errs = append(errs, errors.New("too many retries for the lock system"))
	}
	return errors.Join(errs...)
}

type urlConfig struct {
	URL string `toml:"url"`
}

type testDriver struct{ newConfig func() any }

func (d testDriver) NewConfig() any { return d.newConfig() }
func (testDriver) Open(any, keys.Env) (keys.Encoder, error) {
	return nil, errors.New("not for opening")
}

func init() {
	keys.Register("cfgtest-addr", testDriver{func() any { return &addrConfig{Retries: 2} }})
	keys.Register("cfgtest-url", testDriver{func() any { return &urlConfig{} }})
	keys.Register("cfgtest-none", testDriver{func() any { return nil }})
}

const (
	clientSecret = "CT-SECRET-1"
	accessSecret = "AT-SECRET-2"
)

// base is a valid file; cases edit it. Its line numbers matter:
const base = `[mews]
environment = "demo"
client_token = "CT-SECRET-1"
access_token = "AT-SECRET-2"

[[encoders]]
name = "frontdesk"
driver = "cfgtest-addr"
address = "10.0.0.5:5010"

[[key_cutters]]
device_id = "d14efcfd-75b9-4bd3-9f10-5657a01f860a"
encoder = "frontdesk"
`

// edit returns base with old replaced by new; old must occur exactly once.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if strings.Count(base, old) != 1 {
		t.Fatalf("edit: %q is not in base exactly once", old)
	}
	return strings.Replace(base, old, new, 1)
}

func noEnv(string) string { return "" }

// readError is the platform's message for reading path.
func readError(path string) string {
	_, err := os.ReadFile(path)
	return err.Error()
}

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseValid(t *testing.T) {
	cfg, warnings, err := Parse("config.toml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	m := cfg.Mews
	if m.APIURL != "https://api.mews-demo.com" || m.WSURL != "wss://ws.mews-demo.com" {
		t.Errorf("endpoints %q %q", m.APIURL, m.WSURL)
	}
	if m.ClientToken.Reveal() != clientSecret || m.AccessToken.Reveal() != accessSecret {
		t.Error("inline tokens not read")
	}
	if m.Client != "mews-keyd" || m.RequestLimit != 200 || m.RequestWindow.D() != 30*time.Second ||
		m.MaxCommandAge.D() != 30*time.Minute || m.ReconcileInterval.D() != 5*time.Minute {
		t.Errorf("mews defaults: %+v", m)
	}
	if cfg.Daemon.StateDir != defaultStateDir(noEnv) || cfg.Daemon.History.D() != 168*time.Hour || cfg.Daemon.StatusListen != "" {
		t.Errorf("daemon defaults: %+v", cfg.Daemon)
	}
	if cfg.Log != (Log{Level: "info", Format: "auto"}) {
		t.Errorf("log defaults: %+v", cfg.Log)
	}
	if !cfg.DigitalKeys.WriteBack || cfg.DigitalKeys.Enabled || cfg.DigitalKeys.IssueBeforeArrival != 0 || cfg.DigitalKeys.Companions {
		t.Errorf("digital_keys defaults: %+v", cfg.DigitalKeys)
	}
	if len(cfg.Encoders) != 1 {
		t.Fatalf("encoders: %+v", cfg.Encoders)
	}
	e := cfg.Encoders[0]
	dc, ok := e.Config.(*addrConfig)
	if e.Name != "frontdesk" || e.Driver != "cfgtest-addr" || e.Timeout.D() != DefaultTimeout || !ok {
		t.Fatalf("encoder: %+v", e)
	}
	if dc.Address != "10.0.0.5:5010" || dc.Retries != 2 {
		t.Errorf("driver config (default retries kept): %+v", dc)
	}
	want := KeyCutter{DeviceID: "d14efcfd-75b9-4bd3-9f10-5657a01f860a", Encoder: "frontdesk"}
	if len(cfg.KeyCutters) != 1 || cfg.KeyCutters[0] != want {
		t.Errorf("key cutters: %+v", cfg.KeyCutters)
	}
}

func TestParseEverySetting(t *testing.T) {
	doc := `[mews]
environment = "custom"
api_url = "http://127.0.0.1:8080/"
ws_url = "ws://localhost:8081"
client_token = "CT-SECRET-1"
access_token = "AT-SECRET-2"
client = "hotel-x"
request_limit = 50
request_window = "10s"
max_command_age = "1h"
reconcile_interval = "90s"

[daemon]
state_dir = "state"
status_listen = "0.0.0.0:9466"
status_allow_remote = true
journal_history = "24h"

[log]
level = "debug"
format = "json"

[[encoders]]
name = "frontdesk"
driver = "cfgtest-addr"
timeout = "45s"
address = "lock:1"
retries = 5
keepalive = "30s"
[encoders.headers]
X-Api-Key = "k"

[[encoders]]
name = "mobile"
driver = "cfgtest-url"
url = "https://lock.example/api"

[[key_cutters]]
identifier = "reception-1"
encoder = "frontdesk"

[rooms]
"101" = "0101"
"Suite A" = "0900"

[digital_keys]
enabled = true
encoder = "mobile"
issue_before_arrival = "2h"
write_back = false
companions = true
`
	cfg, warnings, err := Parse("/etc/mews-keyd/config.toml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	m := cfg.Mews
	if m.APIURL != "http://127.0.0.1:8080" || m.WSURL != "ws://localhost:8081" || m.Client != "hotel-x" ||
		m.RequestLimit != 50 || m.RequestWindow.D() != 10*time.Second || m.MaxCommandAge.D() != time.Hour ||
		m.ReconcileInterval.D() != 90*time.Second {
		t.Errorf("mews: %+v", m)
	}
	wantDaemon := Daemon{StateDir: filepath.Join("/etc/mews-keyd", "state"), StatusListen: "0.0.0.0:9466",
		StatusAllowRemote: true, History: keys.Duration(24 * time.Hour)}
	if cfg.Daemon != wantDaemon {
		t.Errorf("daemon: %+v", cfg.Daemon)
	}
	if cfg.Log != (Log{Level: "debug", Format: "json"}) {
		t.Errorf("log: %+v", cfg.Log)
	}
	a := cfg.Encoders[0].Config.(*addrConfig)
	if cfg.Encoders[0].Timeout.D() != 45*time.Second || a.Retries != 5 || a.Keepalive.D() != 30*time.Second || a.Headers["X-Api-Key"] != "k" {
		t.Errorf("encoders[0]: %+v %+v", cfg.Encoders[0], a)
	}
	if u := cfg.Encoders[1].Config.(*urlConfig); u.URL != "https://lock.example/api" {
		t.Errorf("encoders[1]: %+v", u)
	}
	if cfg.KeyCutters[0] != (KeyCutter{Identifier: "reception-1", Encoder: "frontdesk"}) {
		t.Errorf("key cutters: %+v", cfg.KeyCutters)
	}
	if cfg.Rooms["101"] != "0101" || cfg.Rooms["Suite A"] != "0900" {
		t.Errorf("rooms: %v", cfg.Rooms)
	}
	wantDK := DigitalKeys{Enabled: true, Encoder: "mobile", IssueBeforeArrival: keys.Duration(2 * time.Hour), Companions: true}
	if cfg.DigitalKeys != wantDK {
		t.Errorf("digital_keys: %+v", cfg.DigitalKeys)
	}
}

// TestParseErrors walks every way a file can be wrong. Each message must
// name file, line and key, and no message may carry a token.
func TestParseErrors(t *testing.T) {
	known := strings.Join(keys.Drivers(), ", ")
	tests := []struct {
		name string
		doc  string
		want string
	}{
		// Syntax and types.
		{"syntax error", edit(t, `environment = "demo"`, `environment = "demo`),
			`config.toml:2: mews.environment: strings cannot contain newlines`},
		{"syntax error in a secret is not quoted", edit(t, `access_token = "AT-SECRET-2"`, `access_token = AT-SECRET-2`),
			`config.toml:4: mews.access_token: invalid value (not shown: this key holds a secret; write strings in double quotes)`},
		{"syntax error in a header is not quoted", edit(t, `address = "10.0.0.5:5010"`, "address = \"x\"\n[encoders.headers]\nX-Key = SECRET-3"),
			`config.toml:11: encoders[0].headers.X-Key: invalid value (not shown: this key holds a secret; write strings in double quotes)`},
		{"duplicate table", base + "[mews]\n",
			`config.toml:14: mews: Key 'mews' has already been defined.`},
		{"wrong type", edit(t, "[mews]\n", "[mews]\nrequest_limit = \"200\"\n"),
			`config.toml:2: mews.request_limit: wrong type: want an integer, got a string`},
		{"wrong type for a table", "mews = 5\n",
			`config.toml:1: mews: wrong type: want a table, got an integer`},
		{"single table instead of array of tables", edit(t, "[[encoders]]", "[encoders]"),
			`config.toml:6: encoders: wrong type: want an array, got a table`},
		{"bad duration", edit(t, "[mews]\n", "[mews]\nrequest_window = \"30 seconds\"\n"),
			`config.toml:2: mews.request_window: not a duration like "300ms" or "1m": "30 seconds"`},
		{"duration without unit", edit(t, "[mews]\n", "[mews]\nreconcile_interval = 300\n"),
			`config.toml:2: mews.reconcile_interval: not a duration like "300ms" or "1m": "300"`},
		{"negative duration", base + "[daemon]\njournal_history = \"-1h\"\n",
			`config.toml:15: daemon.journal_history: must not be negative: "-1h"`},
		{"wrong type in an encoder", edit(t, `address = "10.0.0.5:5010"`, "address = \"x\"\nretries = \"three\""),
			`config.toml:10: encoders[0].retries: wrong type: want an integer, got a string`},
		{"bad duration in an encoder", edit(t, `address = "10.0.0.5:5010"`, "address = \"x\"\ntimeout = \"soon\""),
			`config.toml:10: encoders[0].timeout: not a duration like "300ms" or "1m": "soon"`},
		{"bad driver duration in second encoder", base + "\n[[encoders]]\nname = \"b\"\ndriver = \"cfgtest-addr\"\naddress = \"y\"\nkeepalive = \"often\"\n",
			`config.toml:19: encoders[1].keepalive: not a duration like "300ms" or "1m": "often"`},
		{"wrong type in second key cutter", base + "\n[[key_cutters]]\nidentifier = \"b\"\nencoder = 7\n",
			`config.toml:17: key_cutters[1].encoder: wrong type: want a string, got an integer`},

		// Unknown keys, in each section.
		{"unknown key in mews", edit(t, "[mews]\n", "[mews]\nadress = 1\n"),
			`config.toml:2: mews.adress: unknown key`},
		{"unknown top-level key", "verbose = true\n" + base,
			`config.toml:1: verbose: unknown key`},
		{"unknown table", base + "\n[mew]\nenvironment = \"demo\"\n",
			`config.toml:15: mew: unknown table`},
		{"unknown key in daemon", base + "[daemon]\nstatedir = \"/x\"\n",
			`config.toml:15: daemon.statedir: unknown key`},
		{"unknown key in log", base + "[log]\nlevel = \"info\"\nformats = \"json\"\n",
			`config.toml:16: log.formats: unknown key`},
		{"unknown key in digital_keys", base + "[digital_keys]\nenable = true\n",
			`config.toml:15: digital_keys.enable: unknown key`},
		{"unknown key in a key cutter", base + "\n[[key_cutters]]\nidentifier = \"b\"\nencoder = \"frontdesk\"\ndevice = \"x\"\n",
			`config.toml:18: key_cutters[1].device: unknown key`},
		{"unknown driver key", edit(t, `address = "10.0.0.5:5010"`, "adress = \"10.0.0.5:5010\""),
			`config.toml:9: encoders[0].adress: unknown key`},
		{"unknown driver key in second encoder", base + "\n[[encoders]]\nname = \"mobile\"\ndriver = \"cfgtest-url\"\nurl = \"https://x\"\nurll = \"https://y\"\n",
			`config.toml:19: encoders[1].urll: unknown key`},
		{"key of another encoder's driver", base + "\n[[encoders]]\nname = \"mobile\"\ndriver = \"cfgtest-url\"\naddress = \"10.0.0.5:5010\"\n",
			`config.toml:18: encoders[1].address: unknown key`},
		{"unknown sub-table in an encoder", edit(t, `address = "10.0.0.5:5010"`, "address = \"x\"\n[encoders.options]\nfast = true"),
			`config.toml:10: encoders[0].options: unknown table`},
		{"driver without settings", edit(t, `driver = "cfgtest-addr"`, `driver = "cfgtest-none"`),
			`config.toml:9: encoders[0].address: unknown key`},

		// Mews.
		{"unknown environment", edit(t, `environment = "demo"`, `environment = "staging"`),
			`config.toml:2: mews.environment: must be "production", "demo" or "custom", not "staging"`},
		{"api_url with a published environment", edit(t, "[mews]\n", "[mews]\napi_url = \"https://x.example\"\n"),
			`config.toml:2: mews.api_url: only used with environment = "custom"`},
		{"ws_url with a published environment", edit(t, "[mews]\n", "[mews]\nws_url = \"wss://x.example\"\n"),
			`config.toml:2: mews.ws_url: only used with environment = "custom"`},
		{"custom without api_url", edit(t, `environment = "demo"`, "environment = \"custom\"\nws_url = \"wss://x.example\""),
			`config.toml:1: mews.api_url: required when environment = "custom"`},
		{"custom without ws_url", edit(t, `environment = "demo"`, "environment = \"custom\"\napi_url = \"https://x.example\""),
			`config.toml:1: mews.ws_url: required when environment = "custom"`},
		{"http to a remote host", edit(t, `environment = "demo"`, "environment = \"custom\"\napi_url = \"http://mews.example\"\nws_url = \"wss://x.example\""),
			`config.toml:3: mews.api_url: URL "http://mews.example": http:// is only allowed for loopback hosts, use https://`},
		{"ws to a remote host", edit(t, `environment = "demo"`, "environment = \"custom\"\napi_url = \"https://x.example\"\nws_url = \"ws://10.1.1.1\""),
			`config.toml:4: mews.ws_url: URL "ws://10.1.1.1": ws:// is only allowed for loopback hosts, use wss://`},
		{"bad URL scheme", edit(t, `environment = "demo"`, "environment = \"custom\"\napi_url = \"ftp://x.example\"\nws_url = \"wss://x.example\""),
			`config.toml:3: mews.api_url: URL "ftp://x.example": scheme must be https`},
		{"URL without host", edit(t, `environment = "demo"`, "environment = \"custom\"\napi_url = \"https://\"\nws_url = \"wss://x.example\""),
			`config.toml:3: mews.api_url: invalid URL "https://": no host`},
		{"empty client", edit(t, "[mews]\n", "[mews]\nclient = \"\"\n"),
			`config.toml:2: mews.client: must not be empty`},
		{"request_limit zero", edit(t, "[mews]\n", "[mews]\nrequest_limit = 0\n"),
			`config.toml:2: mews.request_limit: must be at least 1`},
		{"request_window zero", edit(t, "[mews]\n", "[mews]\nrequest_window = \"0s\"\n"),
			`config.toml:2: mews.request_window: must be positive`},
		{"max_command_age zero", edit(t, "[mews]\n", "[mews]\nmax_command_age = \"0s\"\n"),
			`config.toml:2: mews.max_command_age: must be positive`},
		{"reconcile_interval zero", edit(t, "[mews]\n", "[mews]\nreconcile_interval = \"0s\"\n"),
			`config.toml:2: mews.reconcile_interval: must be positive`},

		// Tokens.
		{"missing client token", edit(t, "client_token = \"CT-SECRET-1\"\n", ""),
			`config.toml:1: mews.client_token: required: set client_token, client_token_file or the environment variable MEWS_CLIENT_TOKEN`},
		{"missing access token", edit(t, "access_token = \"AT-SECRET-2\"\n", ""),
			`config.toml:1: mews.access_token: required: set access_token, access_token_file or the environment variable MEWS_ACCESS_TOKEN`},
		{"inline and file", edit(t, "[mews]\n", "[mews]\nclient_token_file = \"/nonexistent\"\n"),
			`config.toml:4: mews.client_token: set either client_token or client_token_file, not both`},
		{"unreadable token file", edit(t, "access_token = \"AT-SECRET-2\"", "access_token_file = \"/nonexistent/access_token\""),
			`config.toml:4: mews.access_token_file: cannot read token file: ` + readError("/nonexistent/access_token")},
		{"whitespace inside an inline token", edit(t, `"AT-SECRET-2"`, `"AT-SECRET-2 AT-SECRET-2"`),
			`config.toml:4: mews.access_token: the value must hold only the token, but contains whitespace`},

		// Daemon and log.
		{"status on all interfaces", base + "[daemon]\nstatus_listen = \":9466\"\n",
			`config.toml:15: daemon.status_listen: ":9466" is not a loopback address; set status_allow_remote = true to serve other hosts`},
		{"status on a LAN address", base + "[daemon]\nstatus_listen = \"192.168.1.10:9466\"\n",
			`config.toml:15: daemon.status_listen: "192.168.1.10:9466" is not a loopback address; set status_allow_remote = true to serve other hosts`},
		{"status without port", base + "[daemon]\nstatus_listen = \"127.0.0.1\"\n",
			`config.toml:15: daemon.status_listen: must be host:port, e.g. "127.0.0.1:9466": address 127.0.0.1: missing port in address`},
		{"empty state_dir", base + "[daemon]\nstate_dir = \"\"\n",
			`config.toml:15: daemon.state_dir: must not be empty`},
		{"zero history", base + "[daemon]\njournal_history = \"0s\"\n",
			`config.toml:15: daemon.journal_history: must be positive`},
		{"bad log level", base + "[log]\nlevel = \"verbose\"\n",
			`config.toml:15: log.level: must be debug, info, warn or error, not "verbose"`},
		{"bad log format", base + "[log]\nformat = \"xml\"\n",
			`config.toml:15: log.format: must be auto, json or console, not "xml"`},

		// Encoders.
		{"no encoders", edit(t, base[strings.Index(base, "[[encoders]]"):], ""),
			`config.toml: encoders: at least one [[encoders]] table is required`},
		{"unknown driver", edit(t, `driver = "cfgtest-addr"`, `driver = "fiass"`),
			`config.toml:8: encoders[0].driver: unknown driver "fiass" (known: ` + known + `)`},
		{"missing driver", edit(t, "driver = \"cfgtest-addr\"\n", ""),
			`config.toml:6: encoders[0].driver: required (known: ` + known + `)`},
		{"missing name", edit(t, "name = \"frontdesk\"\n", ""),
			`config.toml:6: encoders[0].name: required: the name key_cutters and digital_keys refer to`},
		{"zero timeout", edit(t, `address = "10.0.0.5:5010"`, "address = \"x\"\ntimeout = \"0s\""),
			`config.toml:10: encoders[0].timeout: must be positive`},
		{"duplicate encoder name", base + "\n[[encoders]]\nname = \"frontdesk\"\ndriver = \"cfgtest-url\"\n",
			`config.toml:16: encoders[1].name: duplicate encoder name "frontdesk" (also encoders[0])`},
		{"driver validation naming a key", edit(t, "address = \"10.0.0.5:5010\"\n", ""),
			`config.toml:6: encoders[0].address: required`},
		{"driver validation naming a key in the file", edit(t, `address = "10.0.0.5:5010"`, "address = \"\""),
			`config.toml:9: encoders[0].address: required`},
		{"driver validation with several problems", edit(t, `address = "10.0.0.5:5010"`, "address = \"\"\nretries = 9"),
			"config.toml:9: encoders[0].address: required\nconfig.toml:6: encoders[0]: too many retries for the lock system"},
		{"driver validation about the table", edit(t, `address = "10.0.0.5:5010"`, "address = \"x\"\nretries = 9"),
			`config.toml:6: encoders[0]: too many retries for the lock system`},

		// Key cutters, rooms, digital keys.
		{"dangling encoder reference", edit(t, `encoder = "frontdesk"`, `encoder = "front"`),
			`config.toml:13: key_cutters[0].encoder: no encoder named "front" (configured: frontdesk)`},
		{"key cutter without encoder", edit(t, "encoder = \"frontdesk\"\n", ""),
			`config.toml:11: key_cutters[0].encoder: required: the name of an [[encoders]] table`},
		{"device_id and identifier", edit(t, "encoder = \"frontdesk\"\n", "encoder = \"frontdesk\"\nidentifier = \"x\"\n"),
			`config.toml:14: key_cutters[0].identifier: set either device_id or identifier, not both`},
		{"neither device_id nor identifier", edit(t, "device_id = \"d14efcfd-75b9-4bd3-9f10-5657a01f860a\"\n", ""),
			`config.toml:11: key_cutters[0]: set device_id or identifier`},
		{"device_id not a GUID", edit(t, "d14efcfd-75b9-4bd3-9f10-5657a01f860a", "d14efcfd-75b9-4bd3-9f10"),
			`config.toml:12: key_cutters[0].device_id: "d14efcfd-75b9-4bd3-9f10" is not a Mews device id (a GUID like "d14efcfd-75b9-4bd3-9f10-5657a01f860a")`},
		{"same device twice", base + "\n[[key_cutters]]\ndevice_id = \"D14EFCFD-75B9-4BD3-9F10-5657A01F860A\"\nencoder = \"frontdesk\"\n",
			`config.toml:15: key_cutters[1]: device_id d14efcfd-75b9-4bd3-9f10-5657a01f860a is already served by key_cutters[0]`},
		{"same identifier twice", base + "\n[[key_cutters]]\nidentifier = \"r1\"\nencoder = \"frontdesk\"\n[[key_cutters]]\nidentifier = \"r1\"\nencoder = \"frontdesk\"\n",
			`config.toml:18: key_cutters[2]: identifier r1 is already served by key_cutters[1]`},
		{"empty room id", base + "[rooms]\n\"101\" = \"0101\"\n\"Suite A\" = \"\"\n",
			`config.toml:16: rooms."Suite A": the lock-system room id must not be empty`},
		{"empty room name", base + "[rooms]\n\"101\" = \"0101\"\n\"\" = \"0102\"\n",
			`config.toml:16: rooms."": the Mews lock id or room name must not be empty`},
		{"digital keys without encoder", base + "[digital_keys]\nenabled = true\n",
			`config.toml:14: digital_keys.encoder: required: the name of an [[encoders]] table`},
		{"digital keys with a dangling encoder", base + "[digital_keys]\nenabled = true\nencoder = \"mobile\"\n",
			`config.toml:16: digital_keys.encoder: no encoder named "mobile" (configured: frontdesk)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("config.toml", []byte(tt.doc), noEnv)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%T is not *Error: %v", err, err)
			}
			got := err.Error()
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if strings.Contains(got, "SECRET") {
				t.Errorf("a token leaked into %q", got)
			}
		})
	}
}

func TestWindowsEditorFile(t *testing.T) {
	// Notepad writes a byte order mark and CRLF line ends.
	doc := "\ufeff" + strings.ReplaceAll(edit(t, "[mews]\n", "[mews]\nadress = 1\n"), "\n", "\r\n")
	_, _, err := Parse("config.toml", []byte(doc), noEnv)
	want := "config.toml:2: mews.adress: unknown key"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// A path from the root is used as given. On Windows "/srv/keyd/state" has
// no drive letter, so it is not "absolute", but it names a folder on the
// current drive, not one inside the config folder. (TestParseErrors'
// unreadable token file checks the same for *_file paths.)
func TestRootedPathIsUsedAsGiven(t *testing.T) {
	doc := base + "[daemon]\nstate_dir = \"/srv/keyd/state\"\n"
	cfg, _, err := Parse(filepath.Join(t.TempDir(), "config.toml"), []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Daemon.StateDir != "/srv/keyd/state" {
		t.Errorf("state_dir = %q, want /srv/keyd/state", cfg.Daemon.StateDir)
	}
}

func TestDisabledDigitalKeysMayNameMissingEncoder(t *testing.T) {
	// As in the SPEC example: the section is prepared before the encoder is.
	_, _, err := Parse("config.toml", []byte(base+"[digital_keys]\nenabled = false\nencoder = \"mobile\"\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
}

func TestStatusListen(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9466", "[::1]:9466", "localhost:0"} {
		cfg, _, err := Parse("config.toml", []byte(base+"[daemon]\nstatus_listen = \""+addr+"\"\n"), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if cfg.Daemon.StatusListen != addr {
			t.Errorf("status_listen %q", cfg.Daemon.StatusListen)
		}
	}
}

func TestUnusedEncoderWarning(t *testing.T) {
	doc := base + "\n[[encoders]]\nname = \"spare\"\ndriver = \"cfgtest-url\"\n"
	_, warnings, err := Parse("config.toml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := `config.toml:16: encoders[1].name: encoder "spare" is used by no key cutter and not by digital_keys`
	if len(warnings) != 1 || warnings[0] != want {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
}

func TestEnvironmentTokensWin(t *testing.T) {
	env := envOf(map[string]string{"MEWS_CLIENT_TOKEN": " ct-from-env\n", "MEWS_ACCESS_TOKEN": "at-from-env"})
	// The file names token files that do not exist: the environment wins,
	// so they are not read.
	doc := edit(t, "client_token = \"CT-SECRET-1\"\naccess_token = \"AT-SECRET-2\"\n",
		"client_token_file = \"/nonexistent/ct\"\naccess_token_file = \"/nonexistent/at\"\n")
	cfg, _, err := Parse("config.toml", []byte(doc), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mews.ClientToken.Reveal() != "ct-from-env" || cfg.Mews.AccessToken.Reveal() != "at-from-env" {
		t.Error("environment tokens not used")
	}
	// check names where a refused token came from.
	if cfg.Mews.ClientTokenFrom != "environment variable MEWS_CLIENT_TOKEN" || cfg.Mews.AccessTokenFrom != "environment variable MEWS_ACCESS_TOKEN" {
		t.Errorf("token sources %q, %q", cfg.Mews.ClientTokenFrom, cfg.Mews.AccessTokenFrom)
	}
	cfg, _, err = Parse("config.toml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mews.AccessTokenFrom != "mews.access_token in config.toml" {
		t.Errorf("inline token source %q", cfg.Mews.AccessTokenFrom)
	}

	cfg, _, err = Parse("config.toml", []byte(base), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mews.ClientToken.Reveal() != "ct-from-env" || cfg.Mews.AccessToken.Reveal() != "at-from-env" {
		t.Error("environment tokens did not win over inline ones")
	}

	_, _, err = Parse("config.toml", []byte(edit(t, "client_token = \"CT-SECRET-1\"\n", "")),
		envOf(map[string]string{"MEWS_CLIENT_TOKEN": "two words"}))
	want := "config.toml:1: mews.client_token: environment variable MEWS_CLIENT_TOKEN must hold only the token, but contains whitespace"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestWindowsHome(t *testing.T) {
	tests := []struct{ programData, want string }{
		{`D:\ProgramData`, `D:\ProgramData\mews-keyd`},
		{`D:\ProgramData\`, `D:\ProgramData\mews-keyd`},
		{"", `C:\ProgramData\mews-keyd`},
	}
	for _, tt := range tests {
		got := windowsHome(envOf(map[string]string{"ProgramData": tt.programData}))
		if got != tt.want {
			t.Errorf("ProgramData %q: got %q, want %q", tt.programData, got, tt.want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "c.toml", Line: 14, Key: "encoders[1].adress", Msg: "unknown key"}, "c.toml:14: encoders[1].adress: unknown key"},
		{Error{File: "c.toml", Key: "mews.client_token", Msg: "required"}, "c.toml: mews.client_token: required"},
		{Error{File: "c.toml", Line: 3, Msg: "bad"}, "c.toml:3: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestConfigPrintsNoToken(t *testing.T) {
	cfg, _, err := Parse("config.toml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", *cfg), fmt.Sprintf("%#v", cfg.Mews)} {
		if strings.Contains(s, "SECRET") {
			t.Errorf("a token is printed: %s", s)
		}
	}
}

// Mews sends device ids in lower case; one pasted in upper case must still
// match them, so the loader keeps the lower-case form.
func TestDeviceIDIsLowerCased(t *testing.T) {
	doc := edit(t, "d14efcfd-75b9-4bd3-9f10-5657a01f860a", "D14EFCFD-75B9-4BD3-9F10-5657A01F860A")
	cfg, _, err := Parse("config.toml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.KeyCutters[0].DeviceID; got != "d14efcfd-75b9-4bd3-9f10-5657a01f860a" {
		t.Errorf("device_id = %q, want it in lower case", got)
	}
}
