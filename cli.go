package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/daemon/demo"
	"github.com/mews-keyd/mews-keyd/daemon/status"
	"github.com/mews-keyd/mews-keyd/install"
	"github.com/mews-keyd/mews-keyd/install/logging"

	// Encoder drivers register themselves.
	_ "github.com/mews-keyd/mews-keyd/keys/all"
)

// Exit codes (SPEC §3). A configuration error has its own status, 78
// (EX_CONFIG in sysexits.h), so that the unit can refuse to restart on it:
// 2 is also what a Go crash exits with.
const (
	exitOK     = 0
	exitFail   = 1
	exitUsage  = 2
	exitConfig = install.ExitConfig
)

const usage = `usage:
  mews-keyd run      [--config PATH]   run in the foreground (what the service runs)
  mews-keyd demo     [--duration D]    run against the built-in Mews simulator; exits by itself
  mews-keyd check    [--config PATH] [--timeout D] [--json] [--offline]
                                       validate the config and probe Mews and every encoder, all at
                                       once, each within D (default 10s); --json for scripts;
                                       --offline: validate the config only
  mews-keyd install  [--config PATH]   install as a system service
  mews-keyd uninstall | start | stop | restart | status
  mews-keyd version
`

// Main is the command line.
type Main struct {
	stdout, stderr io.Writer
}

// NewMain returns a command line writing to the given streams.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{stdout: stdout, stderr: stderr}
}

// usageError is a wrong command line: exit 2 with the usage text.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Run executes one command and returns the process exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(m.stderr, usage)
		return exitUsage
	}
	err := m.dispatch(ctx, args[0], args[1:])
	// Under systemd, the reason the daemon stops is an error in the journal.
	stderr := logging.ErrorWriter(m.stderr)
	var ue usageError
	var ce *config.Error
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mews-keyd: %s\n\n%s", ue.msg, usage)
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "mews-keyd: %s\n", ce)
		return exitConfig
	default:
		fmt.Fprintf(stderr, "mews-keyd: %s\n", err)
		return exitFail
	}
}

func (m *Main) dispatch(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "run":
		return m.runDaemon(ctx, args)
	case "demo":
		return m.demo(ctx, args)
	case "check":
		return m.check(ctx, args)
	case "install", "uninstall", "start", "stop", "restart":
		return m.control(cmd, args)
	case "status":
		return m.status(ctx, args)
	case "version", "--version", "-v":
		fmt.Fprintf(m.stdout, "mews-keyd %s\n", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(m.stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// parseFlags parses a command's flags; --config is common to most.
func (m *Main) parseFlags(name string, args []string, define func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	define(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", name, fs.Arg(0))}
	}
	return nil
}

func (m *Main) configFlag(name string, args []string) (string, error) {
	path := config.DefaultPath()
	err := m.parseFlags(name, args, func(fs *flag.FlagSet) {
		fs.StringVar(&path, "config", path, "configuration file")
	})
	return path, err
}

func (m *Main) runDaemon(ctx context.Context, args []string) error {
	path, err := m.configFlag("run", args)
	if err != nil {
		return err
	}
	cfg, warnings, err := config.Load(path)
	if err != nil {
		return err
	}
	log, closeLog, err := logging.New(logging.Options{
		Level:   cfg.Log.Level,
		Format:  cfg.Log.Format,
		Service: !install.Interactive(),
		Out:     m.stderr,
	})
	if err != nil {
		return err
	}
	defer closeLog.Close()
	for _, w := range warnings {
		log.Warn().Msg(w)
	}
	daemon.TuneGC()
	svc, err := install.New(install.Options{
		ConfigPath: path,
		Logger:     log,
		Run: func(ctx context.Context) error {
			d, err := daemon.New(cfg, daemon.Deps{Logger: log, Version: version, OnReady: notifyReady(log)})
			if err != nil {
				return err
			}
			// The watchdog and the reload handler live exactly as long as
			// the daemon.
			ctx, stop := context.WithCancel(ctx)
			var helpers sync.WaitGroup
			defer helpers.Wait()
			defer stop()
			// systemd restarts a daemon whose watchdog pings stop.
			helpers.Go(func() {
				if err := install.WatchdogLoop(ctx, d.Healthy); err != nil {
					log.Warn().Err(err).Msg("service watchdog")
				}
			})
			hup, stopHup := reloadSignals()
			defer stopHup()
			helpers.Go(func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						reload(ctx, path, d, log)
					}
				}
			})
			// Apart from reloads, which wait for the intake that may be
			// the stuck part.
			abort, stopAbort := watchdogSignals()
			defer stopAbort()
			helpers.Go(func() {
				select {
				case <-ctx.Done():
				case <-abort:
					// No clean stop is possible when stuck; the journal
					// survives a hard exit.
					watchdogFired(log, d.Stuck())
					os.Exit(exitFail)
				}
			})
			return d.Run(ctx)
		},
	})
	if err != nil {
		return err
	}
	log.Info().Str("version", version).Str("config", path).Msg("mews-keyd starting")
	return svc.RunService(ctx)
}

// reload re-reads the configuration file and applies what can change while
// running; a broken file changes nothing. `systemctl reload` returns before
// the daemon has read the file, so a rejection stays visible until a
// reload succeeds: an error in the log, the status line of `systemctl
// status` and a reason in /healthz.
func reload(ctx context.Context, path string, d *daemon.Daemon, log zerolog.Logger) {
	log.Info().Str("config", path).Msg("reloading the configuration")
	tellServiceManager(log, install.Reloading())
	cfg, warnings, err := config.Load(path)
	if err == nil {
		for _, w := range warnings {
			log.Warn().Msg(w)
		}
		err = d.Reload(ctx, cfg)
	}
	d.ReloadOutcome(err)
	var status string
	if err != nil {
		log.Error().Err(err).Msg("new configuration rejected; the running one stays in force")
		status = "configuration reload rejected, the previous configuration runs on: " + err.Error()
	}
	tellServiceManager(log, install.SetStatus(status))
	tellServiceManager(log, install.Ready())
}

func notifyReady(log zerolog.Logger) func() {
	return func() { tellServiceManager(log, install.Ready()) }
}

// tellServiceManager logs a failed sd_notify message; the daemon runs on.
func tellServiceManager(log zerolog.Logger, err error) {
	if err != nil {
		log.Warn().Err(err).Msg("telling the service manager")
	}
}

func (m *Main) demo(ctx context.Context, args []string) error {
	duration := 15 * time.Second
	if err := m.parseFlags("demo", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&duration, "duration", duration, "how long the demo runs")
	}); err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{Out: m.stdout, Duration: duration, Version: version})
}

func (m *Main) check(ctx context.Context, args []string) error {
	path := config.DefaultPath()
	timeout := daemon.DefaultCheckTimeout
	asJSON, offline := false, false
	if err := m.parseFlags("check", args, func(fs *flag.FlagSet) {
		fs.StringVar(&path, "config", path, "configuration file")
		fs.DurationVar(&timeout, "timeout", timeout, "how long each probe may take")
		fs.BoolVar(&asJSON, "json", false, "print one JSON document, for scripts and support tickets")
		fs.BoolVar(&offline, "offline", false, "validate the file only: probe neither Mews nor the encoders")
	}); err != nil {
		return err
	}
	if timeout <= 0 {
		return usageError{fmt.Sprintf("check: --timeout must be positive, not %s", timeout)}
	}
	report := checkReport{Version: version, Config: path, TimeoutMS: timeout.Milliseconds()}
	began := time.Now()
	// JSON is one document at the end; the text goes out as it happens.
	opts := daemon.CheckOptions{Timeout: timeout}
	if !asJSON {
		opts.Progress = m.stdout
	}
	cfg, warnings, err := config.Load(path)
	if err != nil {
		if asJSON {
			report.Results = daemon.CheckResults{{Probe: "config", Name: "config " + path, Status: daemon.CheckFail, Detail: err.Error()}}
			m.writeJSON(report, began)
		}
		return err
	}
	report.Results = daemon.CheckResults{{Probe: "config", Name: "config " + path, Status: daemon.CheckOK}}
	// Where the tokens and the journal lie: on Windows, readable by every
	// local user unless install (or the operator) restricted them.
	warnings = append(warnings, install.DirWarnings(filepath.Dir(cfg.File), cfg.Daemon.StateDir)...)
	for _, w := range warnings {
		report.Results = append(report.Results, daemon.CheckResult{Probe: "config", Name: "config", Status: daemon.CheckWarn, Detail: w})
	}
	if opts.Progress != nil {
		for _, r := range report.Results {
			fmt.Fprintln(opts.Progress, r.Line())
		}
	}
	if !offline {
		report.Results = append(report.Results, daemon.Check(ctx, cfg, daemon.Deps{Logger: zerolog.Nop(), Version: version}, opts)...)
	}
	if asJSON {
		m.writeJSON(report, began)
	}
	if n := report.Results.Failed(); n > 0 {
		return fmt.Errorf("%d of %d checks failed", n, len(report.Results))
	}
	return nil
}

// checkReport is what `check --json` prints; its shape is documented in
// the README: extend it, never rename a field.
type checkReport struct {
	OK        bool                `json:"ok"`
	Version   string              `json:"version"`
	Config    string              `json:"config"`
	TimeoutMS int64               `json:"timeout_ms"`
	ElapsedMS int64               `json:"elapsed_ms"`
	Results   daemon.CheckResults `json:"results"`
}

func (m *Main) writeJSON(report checkReport, began time.Time) {
	report.OK = report.Results.Failed() == 0
	report.ElapsedMS = time.Since(began).Milliseconds()
	enc := json.NewEncoder(m.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(report); err != nil {
		fmt.Fprintf(m.stderr, "mews-keyd: writing the report: %v\n", err)
	}
}

func (m *Main) control(action string, args []string) error {
	path, err := m.configFlag(action, args)
	if err != nil {
		return err
	}
	if action == "install" {
		// Refuse to install a service that would fail at its first start.
		if _, _, err := config.Load(path); err != nil {
			return err
		}
	}
	svc, err := install.New(install.Options{ConfigPath: path, Logger: zerolog.Nop()})
	if err != nil {
		return err
	}
	if err := svc.Control(action); err != nil {
		return err
	}
	fmt.Fprintf(m.stdout, "mews-keyd: %s done\n", action)
	return nil
}

func (m *Main) status(ctx context.Context, args []string) error {
	path, err := m.configFlag("status", args)
	if err != nil {
		return err
	}
	svc, err := install.New(install.Options{ConfigPath: path, Logger: zerolog.Nop()})
	if err != nil {
		return err
	}
	state, err := svc.Status()
	if err != nil {
		return err
	}
	fmt.Fprintf(m.stdout, "service: %s\n", state)
	return m.printHealth(ctx, path)
}

// printHealth adds the running daemon's own view when it has a status
// endpoint configured.
func (m *Main) printHealth(ctx context.Context, path string) error {
	cfg, _, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(m.stdout, "config: %s\n", err)
		return nil
	}
	if cfg.Daemon.StatusListen == "" {
		fmt.Fprintln(m.stdout, "health: no status_listen configured")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	snap, err := status.Fetch(ctx, cfg.Daemon.StatusListen)
	if err != nil {
		return fmt.Errorf("health from %s: %w", cfg.Daemon.StatusListen, err)
	}
	fmt.Fprint(m.stdout, status.Summary(snap))
	return nil
}

// watchdogFired tells the operator, in one line at priority 2, why systemd
// is restarting the daemon: the part that was stuck, or, when none says it
// is, that the whole process did not run (stopped, or starved of CPU). The
// goroutine stacks are for support, at debug.
func watchdogFired(log zerolog.Logger, stuck string) {
	if stuck == "" {
		stuck = "no part of the daemon reports being stuck: the whole process did not run (stopped, or starved of CPU)"
	}
	log.WithLevel(zerolog.FatalLevel).Str("stuck", stuck).
		Msg("the service watchdog fired; systemd restarts mews-keyd")
	if e := log.Debug(); e.Enabled() {
		stacks := make([]byte, 1<<20)
		e.Msg("goroutines when the watchdog fired:\n" + string(stacks[:runtime.Stack(stacks, true)]))
	}
}
