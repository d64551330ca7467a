package config

import "os"

// DefaultPath is where the configuration file is looked for when no
// --config is given.
func DefaultPath() string { return windowsHome(os.Getenv) + `\config.toml` }

func defaultStateDir(env func(string) string) string { return windowsHome(env) }
