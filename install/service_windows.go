package install

import (
	"os"

	"github.com/rs/zerolog"
)

// prepareInstall has nothing to do on Windows: kardianos/service v1.3.0
// registers the Event Log source (eventlog.InstallAsEventCreate) when it
// creates the service and removes it on uninstall.
func prepareInstall(string, zerolog.Logger) error { return nil }

func checkUninstall() error { return nil }

// daemonExited ends the process when the daemon fails on its own under the
// service control manager: the SCM only applies its restart action to a
// service process that dies, not to one that reports a clean stop.
func daemonExited(log zerolog.Logger, err error) {
	log.Error().Err(err).Msg("daemon stopped unexpectedly; exiting so the service manager restarts it")
	os.Exit(1)
}
