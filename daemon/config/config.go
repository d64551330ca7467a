// Package config reads the mews-keyd configuration file (SPEC §4): a TOML
// file whose unknown keys are errors, whose every error names file, line and
// key, and whose encoder tables are decoded by the drivers themselves.
package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Config is the whole configuration file, defaults applied, secrets read,
// validated.
type Config struct {
	// File is the path the configuration was read from.
	File        string            `toml:"-"`
	Mews        Mews              `toml:"mews"`
	Daemon      Daemon            `toml:"daemon"`
	Log         Log               `toml:"log"`
	Encoders    []Encoder         `toml:"-"` // decoded per element, see parser.encoder
	KeyCutters  []KeyCutter       `toml:"-"`
	Rooms       map[string]string `toml:"rooms"`
	DigitalKeys DigitalKeys       `toml:"digital_keys"`
	FromMews    FromMews          `toml:"from_mews"`
}

// Mews environments.
const (
	EnvProduction = "production"
	EnvDemo       = "demo"
	EnvCustom     = "custom"
)

// Mews is the [mews] table. After loading, APIURL and WSURL hold the
// endpoints of the chosen environment and the tokens hold their values,
// wherever they came from.
type Mews struct {
	Environment       string        `toml:"environment"`
	APIURL            string        `toml:"api_url"`
	WSURL             string        `toml:"ws_url"`
	ClientToken       mews.Secret   `toml:"client_token"`
	ClientTokenFile   string        `toml:"client_token_file"`
	AccessToken       mews.Secret   `toml:"access_token"`
	AccessTokenFile   string        `toml:"access_token_file"`
	Client            string        `toml:"client"` // the daemon appends its version
	RequestLimit      int           `toml:"request_limit"`
	RequestWindow     keys.Duration `toml:"request_window"`
	MaxCommandAge     keys.Duration `toml:"max_command_age"`
	ReconcileInterval keys.Duration `toml:"reconcile_interval"`

	// Where each token came from ("token file /etc/mews-keyd/access_token",
	// "environment variable MEWS_ACCESS_TOKEN", ...), so that `check` can
	// say which one Mews refused without showing it.
	ClientTokenFrom string `toml:"-"`
	AccessTokenFrom string `toml:"-"`
}

// Daemon is the [daemon] table.
type Daemon struct {
	StateDir     string `toml:"state_dir"`
	StatusListen string `toml:"status_listen"` // empty: no status endpoint
	// StatusAllowRemote permits a non-loopback StatusListen.
	StatusAllowRemote bool `toml:"status_allow_remote"`
	// History is how long the journal keeps finished commands.
	History keys.Duration `toml:"journal_history"`
}

// Log is the [log] table.
type Log struct {
	Level  string `toml:"level"`  // debug | info | warn | error
	Format string `toml:"format"` // auto | json | console
}

// Encoder is one [[encoders]] table.
type Encoder struct {
	Name    string        `toml:"name"`
	Driver  string        `toml:"driver"`
	Timeout keys.Duration `toml:"timeout"`
	// Config is what the driver's NewConfig returned, decoded from the rest
	// of the table and validated; pass it to the driver's Open.
	Config any `toml:"-"`
}

// KeyCutter is one [[key_cutters]] table: a Mews KeyCutter device this
// daemon serves, matched by DeviceID or by Identifier. DeviceID "*"
// (AnyDevice) matches every KeyCutter no other entry lists.
type KeyCutter struct {
	// DeviceID is in lower case once parsed; compare it without case.
	DeviceID   string `toml:"device_id"`
	Identifier string `toml:"identifier"`
	Encoder    string `toml:"encoder"`
	// FromMews takes the lock system from the key cutter's settings in
	// Mews (its Data JSON and API URL) instead of an [[encoders]] table.
	FromMews bool `toml:"from_mews"`
}

// AnyDevice is the device_id that matches every KeyCutter no other entry
// lists.
const AnyDevice = "*"

// DigitalKeys is the [digital_keys] table.
type DigitalKeys struct {
	Enabled bool   `toml:"enabled"`
	Encoder string `toml:"encoder"`
	// IssueBeforeArrival issues the key that long before the reservation
	// starts; 0 issues at check-in.
	IssueBeforeArrival keys.Duration `toml:"issue_before_arrival"`
	// WriteBack stores issued keys on the reservation in Mews.
	WriteBack bool `toml:"write_back"`
	// Companions gives each companion of the main guest with an e-mail or
	// phone a key of their own.
	Companions bool `toml:"companions"`
}

// DefaultTimeout bounds one key operation when an encoder sets no timeout.
const DefaultTimeout = 60 * time.Second

func defaults(env func(string) string) Config {
	return Config{
		Mews: Mews{
			Environment:       EnvProduction,
			Client:            "mews-keyd",
			RequestLimit:      200,
			RequestWindow:     keys.Duration(30 * time.Second),
			MaxCommandAge:     keys.Duration(30 * time.Minute),
			ReconcileInterval: keys.Duration(5 * time.Minute),
		},
		Daemon: Daemon{
			StateDir: defaultStateDir(env),
			History:  keys.Duration(7 * 24 * time.Hour),
		},
		Log:         Log{Level: "info", Format: "auto"},
		DigitalKeys: DigitalKeys{WriteBack: true},
		FromMews:    defaultFromMews(),
	}
}

// exposedAdvice completes a warning about a secret every local user can
// read. It names the install advice, which exposed accepts.
const exposedAdvice = "is readable by every user; restrict it (chmod 0640, group mews-keyd)"

// Load reads and checks the configuration file at path, taking secrets from
// the process environment when set there. Problems with the file are
// returned as *Error; warnings are for the operator to read but do not stop
// the daemon.
func Load(path string) (*Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, &Error{File: path, Msg: "cannot read: " + err.Error()}
	}
	cfg, warnings, inline, err := parse(path, data, os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	if inline && exposed(path) {
		warnings = append(warnings, (&Error{File: path,
			Msg: "holds a token and " + exposedAdvice + " or move the token to a *_file"}).Error())
	}
	return cfg, warnings, nil
}

// Parse is Load on data already read, with env in place of os.Getenv; path
// is used in messages and to resolve relative *_file paths.
func Parse(path string, data []byte, env func(string) string) (*Config, []string, error) {
	cfg, warnings, _, err := parse(path, data, env)
	return cfg, warnings, err
}

// file is the shape of the TOML document. The arrays of tables stay raw
// here: each element is decoded on its own (see parser.reencode).
type file struct {
	Config
	Encoders   []toml.Primitive `toml:"encoders"`
	KeyCutters []toml.Primitive `toml:"key_cutters"`
}

type parser struct {
	file     string
	dir      string // relative *_file paths and state_dir resolve against it
	ix       *lineIndex
	env      func(string) string
	warnings []string
	inline   bool // a token was read from the config file itself
}

func parse(path string, data []byte, env func(string) string) (*Config, []string, bool, error) {
	p := &parser{file: path, dir: filepath.Dir(path), ix: scanLines(data), env: env}
	cfg, err := p.parse(data)
	if err != nil {
		return nil, nil, false, err
	}
	return cfg, p.warnings, p.inline, nil
}

func (p *parser) parse(data []byte) (*Config, error) {
	// Parse once untyped so syntax errors are told apart from type errors:
	// only the former may quote file text, which the message then hides if
	// it could be a secret.
	var syntaxOnly map[string]any
	if _, err := toml.Decode(string(data), &syntaxOnly); err != nil {
		return nil, p.fromTOML(err, "", true)
	}
	f := file{Config: defaults(p.env)}
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, p.fromTOML(err, "", false)
	}
	if err := p.unknownKeys(md); err != nil {
		return nil, err
	}
	cfg := &f.Config
	cfg.File = p.file
	for i, prim := range f.Encoders {
		enc, err := p.encoder(&md, i, prim)
		if err != nil {
			return nil, err
		}
		cfg.Encoders = append(cfg.Encoders, enc)
	}
	for i, prim := range f.KeyCutters {
		var kc KeyCutter
		at := pathString([]seg{{name: "key_cutters", index: i}})
		doc, err := p.reencode(&md, prim, at)
		if err != nil {
			return nil, err
		}
		if err := p.decodeStrict(doc, at, &kc); err != nil {
			return nil, err
		}
		cfg.KeyCutters = append(cfg.KeyCutters, kc)
	}
	if err := p.validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// unknownKeys reports the first key of the file outside the arrays of
// tables that nothing decoded.
func (p *parser) unknownKeys(md toml.MetaData) error {
	for _, k := range md.Undecoded() {
		if k[0] == "encoders" || k[0] == "key_cutters" {
			continue // checked per element
		}
		path, line := p.ix.firstOf(k)
		msg := "unknown key"
		if md.Type(k...) == "Hash" {
			msg = "unknown table"
		}
		return &Error{File: p.file, Line: line, Key: path, Msg: msg}
	}
	return nil
}
