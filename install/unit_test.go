//go:build !windows

// The unit is produced and used where systemd runs, and its paths are
// checked as paths of that system: on Windows "/usr/bin/mews-keyd" is not
// absolute.

package install

import (
	"os"
	"os/exec"
	"path/filepath"
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
		"ExecReload=/bin/kill -HUP $MAINPID",
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

// TestSystemdAnalyzeVerify lets systemd itself check the unit. CI installs
// the Debian package "systemd", which ships systemd-analyze.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian package: systemd); unit not verified")
	}
	// verify checks that ExecStart is executable, so point it at a real one.
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := SystemdUnit(truePath, "/etc/mews-keyd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), Name+".service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	// Warnings (unknown keys, bad values) go to the output with exit 0, so
	// any output is a failure.
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
