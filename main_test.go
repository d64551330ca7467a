package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/install/logging"
	"github.com/mews-keyd/mews-keyd/internal/testaddr"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[mews]\nenvironmnt = \"demo\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		output string
	}{
		{[]string{"version"}, exitOK, "mews-keyd "},
		{nil, 2, "usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"run", "--bogus"}, 2, "flag provided but not defined"},
		// EX_CONFIG: the unit does not restart on it; 2 is also what a Go
		// crash exits with.
		{[]string{"check", "--config", bad}, 78, "bad.toml:2: mews.environmnt: unknown key"},
		{[]string{"run", "--config", filepath.Join(dir, "missing.toml")}, 78, "missing.toml"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := NewMain(&out, &errOut).Run(context.Background(), tc.args)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errOut.String())
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tc.output) {
				t.Errorf("output %q lacks %q", all, tc.output)
			}
		})
	}
}

// TestCheckProbesEverything runs `check` against the simulator: every probe
// prints one line, and a lock system that cannot be reached fails the run.
func TestCheckProbesEverything(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	deadAddr := testaddr.Free(t)

	write := func(extra string) string { return checkConfig(t, srv, extra) }

	var out, errOut bytes.Buffer
	if code := NewMain(&out, &errOut).Run(context.Background(), []string{"check", "--config", write("")}); code != exitOK {
		t.Fatalf("check exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"ok    config", "ok    Mews API", "ok    key cutter " + mewstest.KeyCutter1.ID, "ok    Mews WebSocket", "ok    encoder desk-1 (sim)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	path := write(fmt.Sprintf(`
[[encoders]]
name = "lobby"
driver = "fias"
address = %q
connect_timeout = "100ms"

[[key_cutters]]
identifier = "frontdesk-2"
encoder = "lobby"
`, deadAddr))
	if code := NewMain(&out, &errOut).Run(context.Background(), []string{"check", "--timeout", "500ms", "--config", path}); code != exitFail {
		t.Errorf("check with an unreachable lock system exited %d, want %d", code, exitFail)
	}
	if want := "FAIL  encoder lobby (fias): lock system link down: cannot connect to " + deadAddr + ": connection refused"; !strings.Contains(out.String(), want) {
		t.Errorf("check output lacks %q:\n%s", want, out.String())
	}
}

// checkConfig writes a config for srv with one sim encoder serving
// KeyCutter1, plus extra, and returns its path.
func checkConfig(t *testing.T, srv *mewstest.Server, extra string) string {
	t.Helper()
	return writeCheckConfig(t, srv.MewsTOML(), extra)
}

// writeCheckConfig is checkConfig with its own [mews] table.
func writeCheckConfig(t *testing.T, mewsTOML, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	text := fmt.Sprintf(`
%s
[daemon]
state_dir = %q

[[encoders]]
name = "desk-1"
driver = "sim"

[[key_cutters]]
device_id = %q
encoder = "desk-1"
%s`, mewsTOML, t.TempDir(), mewstest.KeyCutter1.ID, extra)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckReportsClockSkew: a PC clock ten minutes off Mews's is named
// in check's output; it is a warning, not a failure (command ages use
// Mews's clock).
func TestCheckReportsClockSkew(t *testing.T) {
	srv := mewstest.NewServer(mewstest.WithClock(func() time.Time { return time.Now().Add(-10 * time.Minute) }))
	t.Cleanup(srv.Close)
	var out, errOut bytes.Buffer
	if code := NewMain(&out, &errOut).Run(context.Background(), []string{"check", "--config", checkConfig(t, srv, "")}); code != exitOK {
		t.Fatalf("check exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "WARN  clock: this machine's clock is 10m0s ahead of Mews") {
		t.Errorf("check output does not report the skew:\n%s", out.String())
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// When systemd's watchdog fires it aborts the daemon. What the operator
// reads at priority 2 is one line naming what was stuck; the goroutine
// stacks are for support, at debug.
func TestWatchdogFiredLogsOneCriticalLine(t *testing.T) {
	for _, tt := range []struct {
		level string
		lines int
	}{
		{"info", 1},
		{"debug", 2},
	} {
		t.Run(tt.level, func(t *testing.T) {
			var out bytes.Buffer
			lvl, err := logging.ParseLevel(tt.level)
			if err != nil {
				t.Fatal(err)
			}
			watchdogFired(zerolog.New(&out).Level(lvl), "journal: disk I/O error")
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != tt.lines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.lines, out.String())
			}
			if !strings.Contains(lines[0], `"level":"fatal"`) || !strings.Contains(lines[0], "journal: disk I/O error") {
				t.Errorf("first line %s: want level fatal (priority 2) naming what was stuck", lines[0])
			}
			if strings.Contains(lines[0], "goroutine ") {
				t.Errorf("the stacks are in the critical line: %s", lines[0])
			}
			if tt.lines == 2 && (!strings.Contains(lines[1], `"level":"debug"`) || !strings.Contains(lines[1], "goroutine ")) {
				t.Errorf("second line %.200s: want the stacks at debug", lines[1])
			}
		})
	}
}

// folderWarning reports whether a check line is the Windows warning about
// a folder every user can read: a test's temporary folders are, and the
// tests that read check's output are not about them.
func folderWarning(s string) bool { return strings.Contains(s, "is readable by") }

// TestCheckOffline validates the file only: the package's postinst asks
// it whether the service can start, where no probe may hang.
func TestCheckOffline(t *testing.T) {
	srv := mewstest.NewServer()
	path := checkConfig(t, srv, "")
	srv.Close() // nothing answers: a probe would fail

	var out, errOut bytes.Buffer
	if code := NewMain(&out, &errOut).Run(context.Background(), []string{"check", "--offline", "--config", path}); code != exitOK {
		t.Fatalf("check --offline exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	var lines []string
	for line := range strings.Lines(out.String()) {
		if !folderWarning(line) {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if got := strings.Join(lines, "\n"); got != "ok    config "+path {
		t.Errorf("check --offline printed %q, want only the config line", got)
	}

	missing := filepath.Join(t.TempDir(), "missing.toml")
	if code := NewMain(&out, &errOut).Run(context.Background(), []string{"check", "--offline", "--config", missing}); code != exitConfig {
		t.Errorf("check --offline of a missing file exited %d, want %d", code, exitConfig)
	}
}
