package install

import (
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/config"
)

// prepareInstall leaves %ProgramData%\mews-keyd (config, token files,
// journal) to SYSTEM, which the service runs as, and Administrators:
// ProgramData lets every local user read it. The Event Log source needs
// nothing: kardianos/service v1.3.0 registers it
// (eventlog.InstallAsEventCreate) when it creates the service and removes it
// on uninstall.
func prepareInstall(string, zerolog.Logger) error {
	return restrictDir(filepath.Dir(config.DefaultPath()))
}

func checkUninstall() error { return nil }

// daemonExited ends the process when the daemon fails on its own under the
// service control manager: the SCM only applies its restart action to a
// service process that dies, not to one that reports a clean stop.
func daemonExited(log zerolog.Logger, err error) {
	log.Error().Err(err).Msg("daemon stopped unexpectedly; exiting so the service manager restarts it")
	os.Exit(1)
}
