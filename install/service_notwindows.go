//go:build !windows

package install

// runManaged runs the service under systemd. There kardianos' Run returns
// also when the daemon fails on its own (program.wait is its RunWait), and
// the process exits with the daemon's error.
func runManaged(run func() error, p *program) error {
	if err := run(); err != nil {
		return err
	}
	return cleanExit(p.err)
}
