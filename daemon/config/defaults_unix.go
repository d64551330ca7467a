//go:build !windows

package config

// DefaultPath is where the configuration file is looked for when no
// --config is given.
func DefaultPath() string { return "/etc/mews-keyd/config.toml" }

func defaultStateDir(func(string) string) string { return "/var/lib/mews-keyd" }
