package install

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Name is the service name everywhere: the systemd unit, the system user and
// group, the Windows service and its Event Log source.
const Name = "mews-keyd"

// ExitConfig is the exit status of a configuration error (EX_CONFIG in
// sysexits.h). The unit does not restart the daemon on it: a broken file
// needs the operator, and restarting every RestartSec only fills the log.
const ExitConfig = 78

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
# Key cutting must come back whatever happens: never stop restarting,
# unless the configuration is wrong (RestartPreventExitStatus below).
StartLimitIntervalSec=0

[Service]
# The daemon reports READY=1 once it has loaded its config and opened its
# journal, and pings the watchdog only while its pipeline is alive, so a hung
# daemon is killed and restarted.
Type=notify
WatchdogSec=30s
ExecStart=@EXEC_START@
# systemctl reload: re-read the config; encoders and key cutters change
# without dropping the connection to Mews. The shell's own kill, because a
# minimal Debian has no /bin/kill (procps); sh reads MAINPID from the
# environment systemd gives it.
ExecReload=/bin/sh -c 'kill -HUP $MAINPID'
Restart=always
RestartSec=2s
# 78 (EX_CONFIG): a configuration error, which a restart cannot fix. The
# unit stays failed, the reason in the log at priority 3, until the operator
# fixes the file and starts it.
RestartPreventExitStatus=78
# The daemon bounds its own shutdown (in-flight encodes) to 90s.
TimeoutStopSec=100s
User=mews-keyd
Group=mews-keyd
UMask=0027
# The modes the package gives these directories: systemd warns at every
# start when they differ.
StateDirectory=mews-keyd
StateDirectoryMode=0750
ConfigurationDirectory=mews-keyd
ConfigurationDirectoryMode=0750

# Hardening: systemd-analyze security rates it 1.4 (OK) on Debian 12. The
# daemon needs TCP, its state directory and to read its config; fias and
# http encoders need nothing more. Vendor programs of the exec driver run in the same
# sandbox and may need a drop-in ('systemctl edit mews-keyd'):
#   - a serial or USB encoder:   PrivateDevices=no
#                                DeviceAllow=/dev/ttyUSB0 rw
#                                SupplementaryGroups=dialout
#   - files outside the state directory: ReadWritePaths=/path
#   - a Java, .NET or Node program (writes code at run time):
#                                MemoryDenyWriteExecute=no
#   - a program run as another user or with capabilities is not supported.
# The .deb ships the serial lines commented out in mews-keyd.service.d/serial.conf.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RemoveIPC=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM
# AF_UNIX carries the sd_notify readiness and watchdog messages.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX

[Install]
WantedBy=multi-user.target
`
