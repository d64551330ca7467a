package install

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kardianos/service"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServiceConfig(t *testing.T) {
	exe, conf := "/usr/bin/mews-keyd", "/etc/mews-keyd/config.toml"
	if runtime.GOOS == "windows" {
		exe, conf = `C:\Program Files\mews-keyd\mews-keyd.exe`, `C:\ProgramData\mews-keyd\config.toml`
	}
	cfg, err := serviceConfig(exe, conf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(cfg.Arguments, " "), "run --config "+conf; got != want {
		t.Errorf("arguments %q, want %q", got, want)
	}
	if cfg.Name != Name {
		t.Errorf("name %q", cfg.Name)
	}
	// Option names and types as kardianos/service v1.3.0 reads them
	// (service_windows.go); a wrong type is silently ignored there.
	wantOpts := map[string]any{
		"DelayedAutoStart":       true,
		"OnFailure":              "restart",
		"OnFailureDelayDuration": "5s",
		"OnFailureResetPeriod":   86400,
	}
	for k, v := range wantOpts {
		if cfg.Option[k] != v {
			t.Errorf("option %s = %#v, want %#v", k, cfg.Option[k], v)
		}
	}
	// The unit (unit_test.go) only matters, and is only checked, where
	// systemd runs.
	unit, _ := cfg.Option["SystemdScript"].(string)
	if runtime.GOOS != "windows" && !strings.Contains(unit, "ExecStart="+exe+" run --config "+conf+"\n") {
		t.Errorf("SystemdScript is not the rendered unit:\n%s", unit)
	}
}

func TestStatusString(t *testing.T) {
	tests := []struct {
		name    string
		st      service.Status
		err     error
		want    string
		wantErr bool
	}{
		{"running", service.StatusRunning, nil, StatusRunning, false},
		{"stopped", service.StatusStopped, nil, StatusStopped, false},
		{"not installed", service.StatusUnknown, service.ErrNotInstalled, StatusNotInstalled, false},
		{"failed unit", service.StatusUnknown, errors.New(kardianosFailed), StatusFailed, false},
		{"query error", service.StatusUnknown, errors.New("dbus down"), "", true},
		{"unknown", service.StatusUnknown, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statusString(tt.st, tt.err)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestProgramStopCancelsAndWaits(t *testing.T) {
	finished := make(chan struct{})
	p := newProgram(func(ctx context.Context) error {
		<-ctx.Done()
		close(finished)
		return ctx.Err()
	}, zerolog.Nop(), time.Minute)
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("Stop returned before the daemon finished")
	}
	if cleanExit(p.err) != nil {
		t.Errorf("a stopped daemon should exit cleanly, got %v", p.err)
	}
}

func TestProgramStopIsBounded(t *testing.T) {
	release := make(chan struct{})
	p := newProgram(func(context.Context) error {
		<-release // ignores cancellation, as a hung daemon would
		return nil
	}, zerolog.Nop(), 20*time.Millisecond)
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	err := p.Stop(nil)
	close(release)
	<-p.done
	if err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("Stop of a hung daemon: %v", err)
	}
}

// A daemon that fails by itself must end the service wait, so the process
// exits with its error and systemd restarts it.
func TestProgramWaitReturnsWhenDaemonFails(t *testing.T) {
	boom := errors.New("journal corrupt")
	p := newProgram(func(context.Context) error { return boom }, zerolog.Nop(), time.Minute)
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	p.wait()
	if err := p.Stop(nil); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(p.err, boom) {
		t.Errorf("daemon error %v, want %v", p.err, boom)
	}
}

func TestRunServiceReturnsDaemonError(t *testing.T) {
	boom := errors.New("bad config")
	s, err := New(Options{
		ConfigPath: "config.toml",
		Logger:     zerolog.Nop(),
		Run:        func(context.Context) error { return boom },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !Interactive() {
		t.Skip("test process runs under a service manager")
	}
	if err := s.RunService(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("RunService = %v, want %v", err, boom)
	}
}

func TestNewMakesConfigPathAbsolute(t *testing.T) {
	s, err := New(Options{ConfigPath: "config.toml", Executable: "/usr/bin/mews-keyd", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(s.opts.ConfigPath) {
		t.Errorf("config path %q is not absolute", s.opts.ConfigPath)
	}
}

func TestControlRefusesUnknownActionAndMissingService(t *testing.T) {
	s, err := New(Options{ConfigPath: "/nonexistent/mews-keyd-test.toml", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if s.svc == nil {
		if err := s.Control("start"); !errors.Is(err, ErrNoServiceManager) {
			t.Errorf("Control without a service manager = %v", err)
		}
		return
	}
	state, err := s.Status()
	if err != nil {
		t.Skipf("cannot query the service manager here: %v", err)
	}
	if state != StatusNotInstalled {
		t.Skipf("%s is installed on this machine (%s); not touching it", Name, state)
	}
	for _, action := range []string{"uninstall", "start", "stop", "restart"} {
		if err := s.Control(action); !errors.Is(err, ErrNotInstalled) {
			t.Errorf("Control(%q) when not installed = %v, want ErrNotInstalled", action, err)
		}
	}
	if err := s.Control("reinstall"); err == nil || !strings.Contains(err.Error(), "unknown service action") {
		t.Errorf("Control(reinstall) = %v", err)
	}
}
