package install

import (
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

// runManaged runs the service under the service control manager. The SCM
// applies its restart action only to a service process that dies, not to
// one that reports a clean stop, and kardianos' Run returns only when the
// SCM stops the service. So when the daemon fails on its own, runManaged
// returns its error at once, while the SCM still counts the service as
// running, and main exits with it.
func runManaged(run func() error, p *program) error {
	ran := make(chan error, 1)
	go func() { ran <- run() }()
	select {
	case err := <-ran:
		if err != nil {
			return err
		}
		return cleanExit(p.err)
	case <-p.failed:
		// A service's stderr goes nowhere: main's message would be lost.
		p.log.Error().Err(p.err).Msg("daemon stopped unexpectedly; exiting so the service manager restarts it")
		return p.err
	}
}
