package config

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/mews-keyd/mews-keyd/mews"
)

// validate checks everything the types do not, in file order, and fills in
// what follows from the values (endpoints, secrets, absolute paths).
func (p *parser) validate(cfg *Config) error {
	checks := []func(*Config) error{p.mews, p.secrets, p.daemon, p.log, p.encoderNames, p.keyCutters, p.fromMews, p.rooms, p.digitalKeys}
	for _, check := range checks {
		if err := check(cfg); err != nil {
			return err
		}
	}
	p.unusedEncoders(cfg)
	return nil
}

func (p *parser) mews(cfg *Config) error {
	m := &cfg.Mews
	switch m.Environment {
	case EnvProduction, EnvDemo:
		for _, u := range urls(m) {
			if u.value != "" {
				return p.errorf(u.key, "only used with environment = %q", EnvCustom)
			}
		}
		ep := mews.Production
		if m.Environment == EnvDemo {
			ep = mews.Demo
		}
		m.APIURL, m.WSURL = ep.API, ep.WS
	case EnvCustom:
		for _, u := range urls(m) {
			if u.value == "" {
				return p.errorf(u.key, "required when environment = %q", EnvCustom)
			}
		}
	default:
		return p.errorf("mews.environment", "must be %q, %q or %q, not %q", EnvProduction, EnvDemo, EnvCustom, m.Environment)
	}
	if _, err := mews.CheckURL(m.APIURL, "https"); err != nil {
		return p.errorf("mews.api_url", "%v", err)
	}
	if _, err := mews.CheckURL(m.WSURL, "wss"); err != nil {
		return p.errorf("mews.ws_url", "%v", err)
	}
	m.APIURL, m.WSURL = strings.TrimRight(m.APIURL, "/"), strings.TrimRight(m.WSURL, "/")

	switch {
	case m.Client == "":
		return p.errorf("mews.client", "must not be empty")
	case m.RequestLimit < 1:
		return p.errorf("mews.request_limit", "must be at least 1")
	case m.RequestWindow <= 0:
		return p.errorf("mews.request_window", "must be positive")
	case m.MaxCommandAge <= 0:
		return p.errorf("mews.max_command_age", "must be positive")
	case m.ReconcileInterval <= 0:
		return p.errorf("mews.reconcile_interval", "must be positive")
	}
	return nil
}

func urls(m *Mews) []struct{ key, value string } {
	return []struct{ key, value string }{{"mews.api_url", m.APIURL}, {"mews.ws_url", m.WSURL}}
}

// secrets resolves both tokens: the environment wins over the file, which
// is inline or *_file but not both. No message here may include a value.
func (p *parser) secrets(cfg *Config) error {
	m := &cfg.Mews
	if err := p.secret("mews.client_token", "MEWS_CLIENT_TOKEN", &m.ClientToken, &m.ClientTokenFile, &m.ClientTokenFrom); err != nil {
		return err
	}
	return p.secret("mews.access_token", "MEWS_ACCESS_TOKEN", &m.AccessToken, &m.AccessTokenFile, &m.AccessTokenFrom)
}

func (p *parser) secret(key, envVar string, value *mews.Secret, file, from *string) error {
	fileKey := key + "_file"
	if *value != "" && *file != "" {
		return p.errorf(key, "set either %s or %s, not both", lastName(key), lastName(fileKey))
	}
	if v := strings.TrimSpace(p.env(envVar)); v != "" {
		*value = mews.Secret(v)
		*from = "environment variable " + envVar
		return checkToken(p, key, *from, v)
	}
	if *file != "" {
		*file = p.abs(*file)
		data, err := os.ReadFile(*file)
		if err != nil {
			return p.errorf(fileKey, "cannot read token file: %v", err)
		}
		if exposed(*file) {
			p.warnf(fileKey, "%s %s", *file, exposedAdvice)
		}
		tok := strings.TrimSpace(string(data))
		*value = mews.Secret(tok)
		*from = "token file " + *file
		return checkToken(p, fileKey, *from, tok)
	}
	if *value == "" {
		return p.errorf(key, "required: set %s, %s or the environment variable %s", lastName(key), lastName(fileKey), envVar)
	}
	p.inline = true
	*from = key + " in " + p.file
	return checkToken(p, key, "the value", value.Reveal())
}

// checkToken catches a file or variable holding more than the token, which
// would otherwise fail as a 401 far from its cause.
func checkToken(p *parser, key, source, tok string) error {
	switch {
	case tok == "":
		return p.errorf(key, "%s is empty", source)
	case strings.ContainsAny(tok, " \t\r\n"):
		return p.errorf(key, "%s must hold only the token, but contains whitespace", source)
	}
	return nil
}

func lastName(path string) string { return path[strings.LastIndexByte(path, '.')+1:] }

// abs resolves path against the config folder unless it starts at a root:
// on Windows "/srv/keyd" or "\srv\keyd" has no drive letter, so it is not
// absolute, but it names a place on the current drive that the user typed
// on purpose.
func (p *parser) abs(path string) string {
	if path == "" || filepath.IsAbs(path) || os.IsPathSeparator(path[0]) {
		return path
	}
	return filepath.Join(p.dir, path)
}

func (p *parser) daemon(cfg *Config) error {
	d := &cfg.Daemon
	if d.StateDir == "" {
		return p.errorf("daemon.state_dir", "must not be empty")
	}
	d.StateDir = p.abs(d.StateDir)
	if d.History <= 0 {
		return p.errorf("daemon.journal_history", "must be positive")
	}
	if d.StatusListen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(d.StatusListen)
	if err != nil {
		return p.errorf("daemon.status_listen", "must be host:port, e.g. \"127.0.0.1:9466\": %v", err)
	}
	if !d.StatusAllowRemote && !mews.IsLoopback(host) {
		return p.errorf("daemon.status_listen", "%q is not a loopback address; set status_allow_remote = true to serve other hosts", d.StatusListen)
	}
	return nil
}

func (p *parser) log(cfg *Config) error {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.Log.Level) {
		return p.errorf("log.level", "must be debug, info, warn or error, not %q", cfg.Log.Level)
	}
	if !slices.Contains([]string{"auto", "json", "console"}, cfg.Log.Format) {
		return p.errorf("log.format", "must be auto, json or console, not %q", cfg.Log.Format)
	}
	return nil
}

func encoderPath(i int, key string) string {
	return pathString([]seg{{name: "encoders", index: i}}) + "." + key
}

func (p *parser) encoderNames(cfg *Config) error {
	// Key cutters described in Mews need no [[encoders]].
	if len(cfg.Encoders) == 0 && !slices.ContainsFunc(cfg.KeyCutters, func(kc KeyCutter) bool { return kc.FromMews }) {
		return p.errorf("encoders", "at least one [[encoders]] table is required")
	}
	first := map[string]int{}
	for i, e := range cfg.Encoders {
		if j, dup := first[e.Name]; dup {
			return p.errorf(encoderPath(i, "name"), "duplicate encoder name %q (also encoders[%d])", e.Name, j)
		}
		first[e.Name] = i
	}
	return nil
}

// A Mews Device.Id is a GUID; checking the shape catches a truncated paste,
// which would otherwise leave the device's commands silently unserved.
var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (p *parser) keyCutters(cfg *Config) error {
	seen := map[string]int{}
	for i := range cfg.KeyCutters {
		kc := &cfg.KeyCutters[i]
		at := pathString([]seg{{name: "key_cutters", index: i}})
		var device string
		switch {
		case kc.DeviceID != "" && kc.Identifier != "":
			return p.errorf(at+".identifier", "set either device_id or identifier, not both")
		case kc.DeviceID == AnyDevice:
			device = "device_id " + AnyDevice
		case kc.DeviceID != "":
			if !guid.MatchString(kc.DeviceID) {
				return p.errorf(at+".device_id", "%q is not a Mews device id (a GUID like \"d14efcfd-75b9-4bd3-9f10-5657a01f860a\")", kc.DeviceID)
			}
			// A GUID's case means nothing and Mews writes it in lower case;
			// one form here keeps duplicates, logs and `check` consistent.
			kc.DeviceID = strings.ToLower(kc.DeviceID)
			device = "device_id " + kc.DeviceID
		case kc.Identifier != "":
			device = "identifier " + kc.Identifier
		default:
			return p.errorf(at, "set device_id or identifier")
		}
		if j, dup := seen[device]; dup {
			return p.errorf(at, "%s is already served by key_cutters[%d]", device, j)
		}
		seen[device] = i
		if kc.FromMews {
			if kc.Encoder != "" {
				return p.errorf(at+".from_mews", "set either encoder or from_mews, not both")
			}
			continue
		}
		if err := p.encoderRef(cfg, at+".encoder", kc.Encoder); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) encoderRef(cfg *Config, key, name string) error {
	if name == "" {
		return p.errorf(key, "required: the name of an [[encoders]] table")
	}
	if slices.ContainsFunc(cfg.Encoders, func(e Encoder) bool { return e.Name == name }) {
		return nil
	}
	names := make([]string, len(cfg.Encoders))
	for i, e := range cfg.Encoders {
		names[i] = e.Name
	}
	return p.errorf(key, "no encoder named %q (configured: %s)", name, strings.Join(names, ", "))
}

func (p *parser) rooms(cfg *Config) error {
	for _, lock := range sortedKeys(cfg.Rooms) {
		key := pathString([]seg{{name: "rooms", index: -1}, {name: lock, index: -1}})
		switch {
		case lock == "":
			return p.errorf(key, "the Mews lock id or room name must not be empty")
		case cfg.Rooms[lock] == "":
			return p.errorf(key, "the lock-system room id must not be empty")
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (p *parser) digitalKeys(cfg *Config) error {
	// A disabled section may name an encoder that is not configured yet,
	// as the SPEC example does.
	if !cfg.DigitalKeys.Enabled {
		return nil
	}
	return p.encoderRef(cfg, "digital_keys.encoder", cfg.DigitalKeys.Encoder)
}

func (p *parser) unusedEncoders(cfg *Config) {
	used := map[string]bool{}
	for _, kc := range cfg.KeyCutters {
		used[kc.Encoder] = true
	}
	if cfg.DigitalKeys.Enabled {
		used[cfg.DigitalKeys.Encoder] = true
	}
	for i, e := range cfg.Encoders {
		if !used[e.Name] {
			p.warnf(encoderPath(i, "name"), "encoder %q is used by no key cutter and not by digital_keys", e.Name)
		}
	}
}
