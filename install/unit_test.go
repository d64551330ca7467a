//go:build !windows

// The unit is produced and used where systemd runs, and its paths are
// checked as paths of that system: on Windows "/usr/bin/mews-keyd" is not
// absolute.

package install

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestSystemdUnitDirectives(t *testing.T) {
	unit, err := SystemdUnit("/usr/bin/mews-keyd", "/etc/mews-keyd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Type=notify",
		"WatchdogSec=30s",
		"ExecStart=/usr/bin/mews-keyd run --config /etc/mews-keyd/config.toml",
		`ExecReload=/bin/sh -c 'kill -HUP $MAINPID'`,
		"Restart=always",
		"RestartSec=2s",
		"User=mews-keyd",
		"StateDirectory=mews-keyd",
		"ConfigurationDirectory=mews-keyd",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"PrivateDevices=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
		"After=network-online.target",
		"Wants=network-online.target",
		"WantedBy=multi-user.target",
	}
	lines := strings.Split(unit, "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			if l == w {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("unit lacks line %q", w)
		}
	}
	if strings.Contains(unit, "{{") {
		t.Error("unit contains a template action; kardianos would try to expand it")
	}
}

// Every command the unit runs must exist on a minimal Debian: /bin/kill
// does not (it is in procps), and a reload that cannot run fails with
// 203/EXEC.
func TestSystemdUnitCommandsNeedNoExtraPackage(t *testing.T) {
	unit, err := SystemdUnit("/usr/bin/mews-keyd", "/etc/mews-keyd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	// /bin/sh is dash or bash, both essential packages.
	allowed := map[string]bool{"/usr/bin/mews-keyd": true, "/bin/sh": true}
	for _, l := range strings.Split(unit, "\n") {
		key, value, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(key, "Exec") {
			continue
		}
		if program := strings.Fields(value)[0]; !allowed[program] {
			t.Errorf("%s runs %s, which a minimal Debian may lack", key, program)
		}
	}
}

// systemd warns at every start and reload when a directory it manages
// exists with another mode than the unit's; the package creates both.
func TestSystemdUnitDirectoryModesMatchThePackage(t *testing.T) {
	unit, err := SystemdUnit("/usr/bin/mews-keyd", "/etc/mews-keyd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	nfpm, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	postinst, err := os.ReadFile("deb/postinst")
	if err != nil {
		t.Fatal(err)
	}
	// nfpm.yaml: "- dst: /etc/mews-keyd", "type: dir", "file_info:", "mode: 0750".
	etc := regexp.MustCompile(`dst: /etc/mews-keyd\n\s+type: dir\n\s+file_info:\n\s+mode: (0[0-7]+)`).FindSubmatch(nfpm)
	state := regexp.MustCompile(`install -d .*-m (0[0-7]+) "\$DPKG_ROOT/var/lib/mews-keyd"`).FindSubmatch(postinst)
	if etc == nil || state == nil {
		t.Fatal("the package no longer creates /etc/mews-keyd or /var/lib/mews-keyd as this test reads it")
	}
	for _, want := range []string{"ConfigurationDirectoryMode=" + string(etc[1]), "StateDirectoryMode=" + string(state[1])} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("unit lacks %q, the package's mode", want)
		}
	}
}

// A configuration error must not be restarted every RestartSec for good:
// it needs the operator.
func TestSystemdUnitDoesNotRestartOnConfigError(t *testing.T) {
	unit, err := SystemdUnit("/usr/bin/mews-keyd", "/etc/mews-keyd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("\nRestartPreventExitStatus=%d\n", ExitConfig); !strings.Contains(unit, want) {
		t.Errorf("unit lacks %q", strings.TrimSpace(want))
	}
}

func TestSystemdUnitQuoting(t *testing.T) {
	tests := []struct {
		name, exe, config, execStart string
	}{
		{"plain", "/opt/mews-keyd/bin/mews-keyd", "/etc/mews-keyd/config.toml",
			"ExecStart=/opt/mews-keyd/bin/mews-keyd run --config /etc/mews-keyd/config.toml"},
		{"space", "/opt/Mews Key/mews-keyd", "/etc/mews-keyd/a b.toml",
			`ExecStart="/opt/Mews Key/mews-keyd" run --config "/etc/mews-keyd/a b.toml"`},
		{"specifier and variable", "/opt/100%/mews-keyd", "/etc/$HOME/c.toml",
			"ExecStart=/opt/100%%/mews-keyd run --config /etc/$$HOME/c.toml"},
		{"quote", `/opt/a"b/mews-keyd`, "/etc/c.toml",
			`ExecStart="/opt/a\"b/mews-keyd" run --config /etc/c.toml`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unit, err := SystemdUnit(tt.exe, tt.config)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(unit, "\n"+tt.execStart+"\n") {
				t.Errorf("want %q in\n%s", tt.execStart, unit)
			}
		})
	}
}

func TestSystemdUnitRejects(t *testing.T) {
	for _, args := range [][2]string{
		{"mews-keyd", "/etc/mews-keyd/config.toml"},
		{"/usr/bin/mews-keyd", "config.toml"},
		{"/usr/bin/mews-keyd", "/etc/x\nExecStartPre=/bin/rm"},
	} {
		if _, err := SystemdUnit(args[0], args[1]); err == nil {
			t.Errorf("SystemdUnit(%q, %q) accepted", args[0], args[1])
		}
	}
}

// analyzableUnit finds systemd-analyze (or skips the test, saying what is
// then not checked) and writes the unit to a file for it. Its ExecStart is
// a real executable, which verify checks.
func analyzableUnit(t *testing.T, unchecked string) (analyze, path string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian package: systemd); " + unchecked)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := SystemdUnit(truePath, "/etc/mews-keyd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), Name+".service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return analyze, path
}

// TestSystemdAnalyzeVerify lets systemd itself check the unit. CI installs
// the Debian package "systemd", which ships systemd-analyze.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, path := analyzableUnit(t, "unit not verified")
	// Warnings (unknown keys, bad values) go to the output with exit 0, so
	// any output is a failure.
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdAnalyzeSecurity holds the sandbox to an exposure of 2.5 or
// better ("OK"), as systemd rates it; make test-systemd checks the same on
// the installed unit.
func TestSystemdAnalyzeSecurity(t *testing.T) {
	analyze, path := analyzableUnit(t, "sandbox not rated")
	out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", path).CombinedOutput()
	if err != nil && strings.Contains(string(out), "offline") {
		t.Skipf("this systemd-analyze cannot rate a unit file (--offline needs systemd 250): %s", out)
	}
	m := regexp.MustCompile(`Overall exposure level for mews-keyd\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.5 {
		t.Errorf("exposure %.1f, want 2.5 or better:\n%s", level, out)
	}
}
