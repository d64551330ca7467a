//go:build !linux && !windows

package install

import "github.com/rs/zerolog"

func prepareInstall(string, zerolog.Logger) error { return nil }

func checkUninstall() error { return nil }
