// Package install runs mews-keyd under the system service manager (systemd
// or the Windows service control manager) and installs, controls and
// removes the service.
package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kardianos/service"
	"github.com/rs/zerolog"
)

// DefaultStopTimeout bounds a service stop: in-flight encodes (60 s by
// default) finish and the journal is flushed. The unit's TimeoutStopSec is a
// little longer so systemd does not kill a daemon that is still finishing.
const DefaultStopTimeout = 90 * time.Second

// Status strings returned by Service.Status.
const (
	StatusRunning      = "running"
	StatusStopped      = "stopped"
	StatusFailed       = "failed"
	StatusNotInstalled = "not installed"
)

var (
	ErrAlreadyInstalled = errors.New(Name + " is already installed as a service; use '" + Name + " restart' to apply a new binary")
	ErrNotInstalled     = errors.New(Name + " is not installed as a service; use '" + Name + " install' first")
	ErrNoServiceManager = errors.New("no supported service manager found (systemd or the Windows service manager)")
	ErrNeedsPrivilege   = errors.New("this needs administrator rights: run it as root (sudo) on Linux or from an elevated prompt on Windows")
)

// Options configures a Service.
type Options struct {
	// ConfigPath is baked into the service's command line as
	// `run --config <absolute path>`.
	ConfigPath string
	// Run is the daemon. It must return when ctx is cancelled. Only
	// RunService needs it.
	Run    func(ctx context.Context) error
	Logger zerolog.Logger
	// Executable defaults to the running binary.
	Executable string
	// StopTimeout defaults to DefaultStopTimeout.
	StopTimeout time.Duration
}

// Service installs, controls and runs mews-keyd as a system service.
type Service struct {
	opts Options
	log  zerolog.Logger
	prog *program
	// svc is nil where no service manager exists (a container, a CI box):
	// RunService then runs in the foreground and Control refuses.
	svc service.Service
}

// New prepares a Service. It does not touch the system.
func New(opts Options) (*Service, error) {
	if opts.ConfigPath == "" {
		return nil, errors.New("service: no config path")
	}
	configPath, err := filepath.Abs(opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("service: config path: %w", err)
	}
	opts.ConfigPath = configPath
	if opts.Executable == "" {
		if opts.Executable, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("service: locate own executable: %w", err)
		}
	}
	if opts.Executable, err = filepath.Abs(opts.Executable); err != nil {
		return nil, fmt.Errorf("service: executable path: %w", err)
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}

	s := &Service{opts: opts, log: opts.Logger}
	s.prog = newProgram(opts.Run, opts.Logger, opts.StopTimeout)
	cfg, err := serviceConfig(opts.Executable, opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	cfg.Option["RunWait"] = s.prog.wait
	svc, err := service.New(s.prog, cfg)
	switch {
	case errors.Is(err, service.ErrNoServiceSystemDetected):
	case err != nil:
		return nil, fmt.Errorf("service: %w", err)
	case supportedPlatform(svc.Platform()):
		s.svc = svc
	}
	return s, nil
}

// supportedPlatform limits us to systemd and the Windows service manager:
// kardianos' other back-ends (SysV init, found in containers) would install
// a service without the unit's watchdog, restart and sandbox settings.
func supportedPlatform(platform string) bool {
	return platform == "linux-systemd" || platform == "windows-service"
}

// serviceConfig is the kardianos configuration for both platforms; each
// platform reads only its own options.
func serviceConfig(executable, configPath string) (*service.Config, error) {
	unit, err := SystemdUnit(executable, configPath)
	if err != nil {
		return nil, err
	}
	return &service.Config{
		Name:        Name,
		DisplayName: Name,
		Description: "Connects Mews to the hotel's door-lock key encoders.",
		Executable:  executable,
		Arguments:   []string{"run", "--config", configPath},
		Option: service.KeyValue{
			// systemd: the complete unit, see unit.go.
			"SystemdScript": unit,
			// Windows: start after the network stack at boot, and let the
			// service manager restart a crashed daemon.
			"DelayedAutoStart":       true,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "5s",
			"OnFailureResetPeriod":   24 * 60 * 60,
		},
	}, nil
}

// Interactive reports whether the process runs from a terminal rather than
// under the service manager.
func Interactive() bool { return service.Interactive() }

// Control performs install, uninstall, start, stop or restart.
func (s *Service) Control(action string) error {
	if s.svc == nil {
		return ErrNoServiceManager
	}
	state, err := s.Status()
	if err != nil {
		return err
	}
	installed := state != StatusNotInstalled
	switch action {
	case "install":
		if installed {
			return ErrAlreadyInstalled
		}
		if err := prepareInstall(s.opts.ConfigPath, s.log); err != nil {
			return privileged(action, err)
		}
		return privileged(action, s.svc.Install())
	case "uninstall":
		if !installed {
			return ErrNotInstalled
		}
		if err := checkUninstall(); err != nil {
			return err
		}
		if state == StatusRunning {
			if err := s.svc.Stop(); err != nil {
				return privileged("stop", err)
			}
		}
		return privileged(action, s.svc.Uninstall())
	case "start", "stop", "restart":
		if !installed {
			return ErrNotInstalled
		}
		return privileged(action, service.Control(s.svc, action))
	default:
		return fmt.Errorf("unknown service action %q (want install, uninstall, start, stop or restart)", action)
	}
}

// privileged turns a permission failure into one message the operator can act on.
func privileged(action string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrPermission), strings.Contains(strings.ToLower(err.Error()), "access is denied"):
		return fmt.Errorf("%s: %w", action, ErrNeedsPrivilege)
	default:
		return fmt.Errorf("%s: %w", action, err)
	}
}

// Status reports "running", "stopped", "failed" or "not installed".
func (s *Service) Status() (string, error) {
	if s.svc == nil {
		return "", ErrNoServiceManager
	}
	return statusString(s.svc.Status())
}

// kardianosFailed is the error kardianos/service v1.3.0 returns for a
// systemd unit in the failed state; it has no sentinel for it.
const kardianosFailed = "service in failed state"

func statusString(st service.Status, err error) (string, error) {
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return StatusNotInstalled, nil
	case err != nil && err.Error() == kardianosFailed:
		return StatusFailed, nil
	case err != nil:
		return "", fmt.Errorf("query service state: %w", err)
	case st == service.StatusRunning:
		return StatusRunning, nil
	case st == service.StatusStopped:
		return StatusStopped, nil
	default:
		return "", errors.New("query service state: unknown state")
	}
}

// RunService runs the daemon until the service manager stops it, or until
// SIGINT/SIGTERM when started from a terminal or where there is no service
// manager, or until ctx ends. It returns the daemon's error; a clean stop
// returns nil.
func (s *Service) RunService(ctx context.Context) error {
	if s.opts.Run == nil {
		return errors.New("service: no daemon to run")
	}
	if s.svc == nil || service.Interactive() {
		// kardianos' interactive mode waits for a signal even when the
		// daemon has already failed; running directly returns its error.
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cleanExit(s.opts.Run(ctx))
	}
	return runManaged(s.svc.Run, s.prog)
}

func cleanExit(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// program adapts the daemon to kardianos' Start/Stop callbacks.
type program struct {
	run         func(ctx context.Context) error
	log         zerolog.Logger
	stopTimeout time.Duration

	cancel context.CancelFunc
	done   chan struct{}
	failed chan struct{} // closed when the daemon ended without Stop
	err    error         // the daemon's result, valid once done is closed
}

func newProgram(run func(ctx context.Context) error, log zerolog.Logger, stopTimeout time.Duration) *program {
	return &program{run: run, log: log, stopTimeout: stopTimeout, failed: make(chan struct{})}
}

func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.err = p.run(ctx)
		if ctx.Err() == nil {
			close(p.failed)
		}
	}()
	return nil
}

func (p *program) Stop(service.Service) error {
	p.cancel()
	timer := time.NewTimer(p.stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return fmt.Errorf("daemon did not stop within %s", p.stopTimeout)
	}
}

// wait is kardianos' RunWait on systemd: it returns on SIGTERM/SIGINT as the
// default would, and also when the daemon exits by itself, so the process
// ends with the daemon's error and systemd restarts it.
func (p *program) wait() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case <-sig:
	case <-p.done:
	}
}
