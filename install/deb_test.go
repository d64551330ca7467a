//go:build !windows

package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The maintainer scripts in deb/ run here against stand-ins for the
// commands they call (systemctl, deb-systemd-helper, deb-systemd-invoke,
// runuser, install, the packaged mews-keyd), which log their calls and
// keep the unit's state in files. Paths go under DPKG_ROOT, as dpkg does
// when it installs into another root. make test-systemd runs the same
// scripts under a real systemd.

// debStubs is a shell library: each stand-in command is a function of it,
// linked under its name.
const debStubs = `#!/bin/sh
log() { echo "$(basename "$0") $*" >>"$STATE/calls"; }
has() { [ -e "$STATE/$1" ]; }
log "$@"
case "$(basename "$0")" in
systemctl)
	for a in "$@"; do
		case "$a" in
		is-active) has active; exit ;;
		is-enabled) has enabled; exit ;;
		esac
	done ;;
deb-systemd-helper)
	case "$*" in
	*was-enabled*) ! has disabled-by-admin; exit ;;
	enable*) touch "$STATE/enabled" ;;
	esac ;;
deb-systemd-invoke)
	case "$1" in
	start|restart)
		has enabled || exit 0
		has start-fails && { rm -f "$STATE/active"; exit 1; }
		touch "$STATE/active" ;;
	stop) rm -f "$STATE/active" ;;
	esac ;;
runuser)
	while [ "$1" != -- ]; do shift; done
	shift
	exec "$@" ;;
mews-keyd)
	if has config-error; then
		echo "mews-keyd: $(cat "$STATE/config-error")" >&2
		exit 78
	fi
	echo "ok    config /etc/mews-keyd/config.toml" ;;
esac
exit 0
`

// debRoot is a target root with the stand-ins on PATH.
type debRoot struct {
	root, state, bin string
}

func newDebRoot(t *testing.T, systemd bool) *debRoot {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	r := &debRoot{root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"), bin: filepath.Join(dir, "bin")}
	for _, d := range []string{r.root + "/usr/bin", r.root + "/etc/mews-keyd", r.state, r.bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if systemd {
		if err := os.MkdirAll(r.root+"/run/systemd/system", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub := filepath.Join(dir, "stub")
	if err := os.WriteFile(stub, []byte(debStubs), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"systemctl", "deb-systemd-helper", "deb-systemd-invoke", "runuser", "install"} {
		if err := os.Symlink(stub, filepath.Join(r.bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(stub, r.root+"/usr/bin/mews-keyd"); err != nil {
		t.Fatal(err)
	}
	return r
}

// set creates a state file: "active", "enabled", "disabled-by-admin",
// "start-fails", or "config-error" with the error text.
func (r *debRoot) set(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.state, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *debRoot) has(name string) bool {
	_, err := os.Stat(filepath.Join(r.state, name))
	return err == nil
}

// file creates a file under the root.
func (r *debRoot) file(t *testing.T, path string) {
	t.Helper()
	full := filepath.Join(r.root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
}

func (r *debRoot) exists(path string) bool {
	_, err := os.Lstat(filepath.Join(r.root, path))
	return err == nil
}

// run runs a maintainer script and returns what it printed and the calls
// it made.
func (r *debRoot) run(t *testing.T, script string, args ...string) (out, calls string) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{filepath.Join("deb", script)}, args...)...)
	cmd.Env = []string{"PATH=" + r.bin + ":/usr/bin:/bin", "DPKG_ROOT=" + r.root, "STATE=" + r.state}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, b)
	}
	c, _ := os.ReadFile(filepath.Join(r.state, "calls"))
	return string(b), string(c)
}

const tokenMissing = "/etc/mews-keyd/config.toml:19: mews.client_token_file: cannot read token file: open /etc/mews-keyd/client_token: no such file or directory"

func TestPostinstFirstInstallEnablesButDoesNotStart(t *testing.T) {
	r := newDebRoot(t, true)
	r.set(t, "config-error", tokenMissing)
	out, calls := r.run(t, "postinst", "configure", "")
	if !strings.Contains(calls, "install -d -o mews-keyd -g mews-keyd -m 0750 "+r.root+"/var/lib/mews-keyd") {
		t.Errorf("the state directory is not created:\n%s", calls)
	}
	if !r.has("enabled") || r.has("active") {
		t.Errorf("after a first install: enabled %v, active %v; want enabled, not started", r.has("enabled"), r.has("active"))
	}
	if !strings.Contains(calls, "runuser -u mews-keyd -- "+r.root+"/usr/bin/mews-keyd check --offline") {
		t.Errorf("the config is not checked as the service user:\n%s", calls)
	}
	if want := "mews-keyd: the service is not started: " + tokenMissing; !strings.Contains(out, want) ||
		!strings.Contains(out, "'sudo systemctl start mews-keyd'") {
		t.Errorf("postinst said:\n%s\nwant %q and what to do", out, want)
	}
}

func TestPostinstStartsAConfiguredService(t *testing.T) {
	r := newDebRoot(t, true)
	out, calls := r.run(t, "postinst", "configure", "1.0.0")
	if !strings.Contains(calls, "deb-systemd-invoke start mews-keyd.service") || !r.has("active") {
		t.Errorf("a service whose config loads is not started:\n%s", calls)
	}
	if !strings.Contains(out, "mews-keyd: the service is running") {
		t.Errorf("postinst said:\n%s", out)
	}
}

func TestPostinstRestartsARunningServiceOnUpgrade(t *testing.T) {
	r := newDebRoot(t, true)
	r.set(t, "active", "")
	out, calls := r.run(t, "postinst", "configure", "1.0.0")
	if !strings.Contains(calls, "deb-systemd-invoke restart mews-keyd.service") || strings.Contains(calls, "runuser") {
		t.Errorf("a running service is not restarted with the new binary:\n%s", calls)
	}
	if !strings.Contains(out, "mews-keyd: the service is running") {
		t.Errorf("postinst said:\n%s", out)
	}
}

func TestPostinstKeepsAnAdministratorsDisable(t *testing.T) {
	r := newDebRoot(t, true)
	r.set(t, "disabled-by-admin", "")
	out, calls := r.run(t, "postinst", "configure", "1.0.0")
	if r.has("enabled") || r.has("active") || !strings.Contains(calls, "deb-systemd-helper update-state") {
		t.Errorf("a disabled unit was enabled or started:\n%s", calls)
	}
	if !strings.Contains(out, "mews-keyd: the service is disabled") {
		t.Errorf("postinst said:\n%s", out)
	}
}

func TestPostinstSaysWhenTheStartFails(t *testing.T) {
	r := newDebRoot(t, true)
	r.set(t, "start-fails", "")
	out, _ := r.run(t, "postinst", "configure", "1.0.0")
	if !strings.Contains(out, "mews-keyd: the service did not start; 'journalctl -u mews-keyd -p warning' says why") {
		t.Errorf("postinst said:\n%s", out)
	}
}

func TestPostinstWithoutSystemd(t *testing.T) {
	r := newDebRoot(t, false)
	out, calls := r.run(t, "postinst", "configure", "")
	for _, cmd := range []string{"systemctl", "deb-systemd"} {
		if strings.Contains(calls, cmd) {
			t.Errorf("called %s without systemd:\n%s", cmd, calls)
		}
	}
	if !strings.Contains(out, "systemd is not running here") {
		t.Errorf("postinst said:\n%s", out)
	}
}

func TestPrermStopsOnlyOnRemove(t *testing.T) {
	r := newDebRoot(t, true)
	r.set(t, "active", "")
	r.set(t, "enabled", "")
	if _, calls := r.run(t, "prerm", "upgrade", "1.1.0"); strings.Contains(calls, "stop") {
		t.Errorf("an upgrade stops the service; postinst restarts it:\n%s", calls)
	}
	r.run(t, "prerm", "remove")
	if r.has("active") {
		t.Error("remove leaves the service running")
	}
}

// operatorFiles are what the README tells the operator to create, and the
// journal.
var operatorFiles = []string{
	"/etc/mews-keyd/client_token",
	"/etc/mews-keyd/access_token",
	"/etc/systemd/system/mews-keyd.service.d/override.conf",
	"/var/lib/mews-keyd/journal.db",
	"/var/lib/mews-keyd/starts.log",
}

func TestPostrmRemoveKeepsTheOperatorsFiles(t *testing.T) {
	r := newDebRoot(t, true)
	for _, f := range operatorFiles {
		r.file(t, f)
	}
	_, calls := r.run(t, "postrm", "remove")
	for _, f := range operatorFiles {
		if !r.exists(f) {
			t.Errorf("remove took %s", f)
		}
	}
	if !strings.Contains(calls, "deb-systemd-helper mask mews-keyd.service") {
		t.Errorf("the unit is not masked while its file is gone:\n%s", calls)
	}
}

func TestPostrmPurgeLeavesNothing(t *testing.T) {
	r := newDebRoot(t, true)
	for _, f := range operatorFiles {
		r.file(t, f)
	}
	_, calls := r.run(t, "postrm", "purge")
	for _, f := range append(operatorFiles, "/etc/mews-keyd", "/var/lib/mews-keyd", "/etc/systemd/system/mews-keyd.service.d") {
		if r.exists(f) {
			t.Errorf("purge left %s", f)
		}
	}
	for _, want := range []string{"deb-systemd-helper purge mews-keyd.service", "deb-systemd-helper unmask mews-keyd.service"} {
		if !strings.Contains(calls, want) {
			t.Errorf("purge did not call %q:\n%s", want, calls)
		}
	}
}

// A file the package knows nothing about is the operator's to remove.
func TestPostrmPurgeKeepsForeignFiles(t *testing.T) {
	r := newDebRoot(t, true)
	r.file(t, "/etc/mews-keyd/client_token")
	r.file(t, "/etc/mews-keyd/notes.txt")
	r.run(t, "postrm", "purge")
	if r.exists("/etc/mews-keyd/client_token") || !r.exists("/etc/mews-keyd/notes.txt") {
		t.Errorf("purge: token removed %v, foreign file kept %v; want both",
			!r.exists("/etc/mews-keyd/client_token"), r.exists("/etc/mews-keyd/notes.txt"))
	}
}
