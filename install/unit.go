package install

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Name is the service name everywhere: the systemd unit, the system user and
// group, the Windows service and its Event Log source.
const Name = "mews-keyd"

// Default locations used by the Debian package.
const (
	PackageExecutable = "/usr/bin/mews-keyd"
	PackageConfig     = "/etc/mews-keyd/config.toml"
)

// SystemdUnit renders the systemd unit for an executable and a config file.
// `mews-keyd install` and the .deb ship the same text, so a unit installed
// either way behaves the same.
func SystemdUnit(executable, configPath string) (string, error) {
	for _, p := range []string{executable, configPath} {
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("systemd unit: path %q is not absolute", p)
		}
		if strings.ContainsAny(p, "\n\r") {
			return "", fmt.Errorf("systemd unit: path %q contains a line break", p)
		}
	}
	execStart := strings.Join([]string{
		systemdQuote(executable), "run", "--config", systemdQuote(configPath),
	}, " ")
	return strings.Replace(unitTemplate, "@EXEC_START@", execStart, 1), nil
}

// systemdQuote makes one ExecStart word. Specifiers (%) and variable
// expansion ($) are escaped so a path is taken literally.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}

// unitTemplate is plain text with one placeholder. It must never contain
// "{{": kardianos/service runs SystemdScript through its template engine,
// and a fully rendered unit then passes through unchanged.
const unitTemplate = `# mews-keyd: keeps Mews connected to the hotel's door-lock key encoders.
# Put local changes in a drop-in ('systemctl edit mews-keyd'); this file is
# replaced by package upgrades and by 'mews-keyd install'.
[Unit]
Description=mews-keyd, Mews to door-lock key encoder bridge
After=network-online.target
Wants=network-online.target
# Key cutting must come back whatever happens: never stop restarting.
StartLimitIntervalSec=0

[Service]
# The daemon reports READY=1 once it has loaded its config and opened its
# journal, and pings the watchdog only while its pipeline is alive, so a hung
# daemon is killed and restarted.
Type=notify
WatchdogSec=30s
ExecStart=@EXEC_START@
# systemctl reload: re-read the config; encoders and key cutters change
# without dropping the connection to Mews.
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=2s
# The daemon bounds its own shutdown (in-flight encodes) to 90s.
TimeoutStopSec=100s
User=mews-keyd
Group=mews-keyd
UMask=0027
StateDirectory=mews-keyd
StateDirectoryMode=0750
ConfigurationDirectory=mews-keyd

# Hardening. A fias or salto encoder on a serial port, or an exec encoder
# whose vendor program drives a serial or USB encoder directly, needs the
# drop-in the .deb ships commented out (mews-keyd.service.d/serial.conf):
#   PrivateDevices=no
#   DeviceAllow=/dev/ttyUSB0 rw
# and one that writes files outside the state directory needs ReadWritePaths=.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
# AF_UNIX carries the sd_notify readiness and watchdog messages.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX

[Install]
WantedBy=multi-user.target
`
