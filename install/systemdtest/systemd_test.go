//go:build systemd

package systemdtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/internal/testaddr"
	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// pkg is one built .deb: its file name inside the container and version.
type pkg struct {
	path, version string
}

// suite is the state the steps share: one container, one Mews, one lock
// system, the way an operator's machine goes from install to purge.
type suite struct {
	c          *container
	srv        *mewstest.Server
	lock       *fiastest.Lock
	old, new   pkg
	statusAddr string
	goodConfig string
}

// TestSystemd installs the package in a booted Debian 12 and follows the
// README as an operator would. The steps run in order and share the
// machine; each names the items of issue 19 it proves.
func TestSystemd(t *testing.T) {
	requireHost(t)
	start := time.Now()
	s := &suite{srv: mewstest.NewServer()}
	t.Cleanup(s.srv.Close)
	lock, err := fiastest.Listen(fiastest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	s.lock = lock
	s.statusAddr = testaddr.Free(t)

	// Two builds of consecutive bare commits: the later hash starts with
	// a letter, the earlier with a digit.
	debDir := t.TempDir()
	epoch := time.Now().Unix()
	oldDeb := buildDeb(t, debDir, "3247659", epoch)
	newDeb := buildDeb(t, debDir, "abc1234", epoch+60)
	t.Logf("built the packages in %s", time.Since(start).Round(time.Second))

	s.c = boot(t, baseImage(t))
	t.Logf("booted the container in %s", time.Since(start).Round(time.Second))
	s.old, s.new = s.copyIn(t, oldDeb), s.copyIn(t, newDeb)

	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"05+12 first install: enabled, not started, says why", s.firstInstall},
		{"04+05+06 start without tokens: fails once, status 78, reason at priority 3", s.startWithoutTokens},
		{"03 README steps: check passes with no warning", s.readmeSteps},
		{"02+03 start: READY with no warning", s.startClean},
		{"a key command is Processed", s.keyCommand},
		{"01+02 reload: works, no warning", s.reload},
		{"09 a rejected reload shows at priority 3, in status and /healthz", s.rejectedReload},
		{"07 frozen daemon: watchdog restart, one priority-2 line, no dump", s.watchdog},
		{"10 upgrade between commit builds: an upgrade, service restarted", s.upgrade},
		{"11 sandbox: exposure 2.5 or better, endpoints still served", s.security},
		{"11 sandbox: an exec vendor program cuts a key; the README's drop-in loads", s.vendorProgram},
		{"stop is clean", s.stop},
		{"12 remove keeps the config; reinstall starts it and says so", s.removeReinstall},
		{"08 purge leaves nothing", s.purge},
	} {
		t.Run(step.name, step.run)
	}
	t.Logf("test-systemd took %s", time.Since(start).Round(time.Second))
}

// buildDeb packages the host's architecture with install/dist.sh as
// `make dist` does, for a version as git describe prints it and a commit
// date.
func buildDeb(t *testing.T, dir, version string, commitEpoch int64) string {
	t.Helper()
	out := filepath.Join(dir, version)
	cmd := exec.Command("bash", "install/dist.sh", version)
	cmd.Dir = "../.."
	// No VCS stamp: the version is given, and under sudo git refuses a
	// checkout another user owns.
	cmd.Env = append(os.Environ(), "DIST_DIR="+out, "DIST_TARGETS=linux/"+runtime.GOARCH,
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(commitEpoch, 10), "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dist.sh %s: %v\n%s", version, err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("dist.sh %s built %v, want one .deb", version, debs)
	}
	return debs[0]
}

// copyIn puts a .deb where apt in the container can read it.
func (s *suite) copyIn(t *testing.T, deb string) pkg {
	t.Helper()
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	inside := "/srv/" + filepath.Base(deb)
	if err := os.WriteFile(s.c.path(inside), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return pkg{path: inside, version: strings.TrimSpace(s.c.must(t, "dpkg-deb", "-f", inside, "Version"))}
}

func (s *suite) aptInstall(t *testing.T, p pkg) string {
	t.Helper()
	return s.c.must(t, "apt-get", "install", "-y", "--no-install-recommends", p.path)
}

func (s *suite) state(t *testing.T) string {
	t.Helper()
	out, _ := s.c.run(t, "", "systemctl", "is-active", "mews-keyd.service")
	return strings.TrimSpace(out)
}

func (s *suite) firstInstall(t *testing.T) {
	out := s.aptInstall(t, s.old)
	t.Logf("postinst said:\n%s", postinstLines(out))
	if !strings.Contains(out, "not started") || !strings.Contains(out, "client_token") {
		t.Errorf("the install does not say that the service is not started and why")
	}
	if st := s.state(t); st != "inactive" {
		t.Errorf("after a first install the service is %s, want inactive", st)
	}
	if out, _ := s.c.run(t, "", "systemctl", "is-enabled", "mews-keyd.service"); strings.TrimSpace(out) != "enabled" {
		t.Errorf("after a first install the service is %q, want enabled (starts at boot once configured)", strings.TrimSpace(out))
	}
}

// postinstLines keeps apt's output lines that come from our scripts.
func postinstLines(apt string) string {
	var keep []string
	for _, l := range strings.Split(apt, "\n") {
		if strings.HasPrefix(l, "mews-keyd:") || strings.HasPrefix(l, "  ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// startWithoutTokens is what the next boot does with the shipped config.
func (s *suite) startWithoutTokens(t *testing.T) {
	cur := s.c.cursor(t)
	if out, err := s.c.run(t, "", "systemctl", "start", "mews-keyd.service"); err == nil {
		t.Errorf("start without tokens succeeded: %s", out)
	}
	p := s.c.show(t, "ActiveState", "SubState", "ExecMainStatus", "NRestarts")
	if p["ActiveState"] != "failed" || p["NRestarts"] != "0" {
		t.Errorf("after a configuration error the service is %s (%s) with %s restarts; want failed, not restarting",
			p["ActiveState"], p["SubState"], p["NRestarts"])
	}
	if p["ExecMainStatus"] != "78" {
		t.Errorf("exit status %s, want 78 (EX_CONFIG)", p["ExecMainStatus"])
	}
	var reason []entry
	for _, e := range s.c.journal(t, cur) {
		if e.fromDaemon() && e.prio() <= 3 && strings.Contains(e.msg(), "client_token") {
			reason = append(reason, e)
		}
	}
	if len(reason) == 0 {
		t.Errorf("no priority <= 3 line says why; journalctl -p err shows nothing:\n%s", s.dump(t, cur))
	}
}

// dump lists the service's journal after cursor, for failure messages.
func (s *suite) dump(t *testing.T, cursor string) string {
	t.Helper()
	var lines []string
	for _, e := range s.c.journal(t, cursor) {
		lines = append(lines, e.String())
	}
	return strings.Join(lastN(lines, 40), "\n")
}

// readmeSteps: the tokens as the README puts them, the shipped config
// edited to point at the simulators, and `mews-keyd check`.
func (s *suite) readmeSteps(t *testing.T) {
	s.c.sh(t, fmt.Sprintf(`
echo -n '%s' | tee /etc/mews-keyd/client_token >/dev/null
echo -n '%s' | tee /etc/mews-keyd/access_token >/dev/null
chgrp mews-keyd /etc/mews-keyd/*_token && chmod 0640 /etc/mews-keyd/*_token`,
		mewstest.ClientToken, mewstest.AccessToken))
	shipped, err := os.ReadFile(s.c.path("/etc/mews-keyd/config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(shipped)
	for _, r := range []struct{ old, new string }{
		{`environment = "production"`, fmt.Sprintf("environment = \"custom\"\napi_url = %q\nws_url = %q", s.srv.URL(), s.srv.WSURL())},
		{`address = "192.168.10.20:5010"`, fmt.Sprintf("address = %q", s.lock.Addr())},
		{`# status_listen = "127.0.0.1:9466"`, fmt.Sprintf("status_listen = %q", s.statusAddr)},
	} {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("the shipped config has no %s", r.old)
		}
		cfg = strings.Replace(cfg, r.old, r.new, 1)
	}
	s.goodConfig = cfg
	s.writeConfig(t, cfg)
	out, err := s.c.run(t, "", "mews-keyd", "check")
	if err != nil {
		t.Fatalf("mews-keyd check: %v\n%s", err, out)
	}
	if strings.Contains(out, "warn") {
		t.Errorf("check warns about files set up as the README says:\n%s", out)
	}
}

// writeConfig replaces the config's content, keeping its owner and mode.
func (s *suite) writeConfig(t *testing.T, text string) {
	t.Helper()
	if out, err := s.c.run(t, text, "sh", "-c", "cat > /etc/mews-keyd/config.toml"); err != nil {
		t.Fatalf("write config: %v: %s", err, out)
	}
}

// warnings are the entries at priority warning or worse, from the daemon
// or from systemd about the unit.
func warnings(entries []entry) []string {
	var w []string
	for _, e := range entries {
		if e.prio() <= 4 {
			w = append(w, e.String())
		}
	}
	return w
}

func (s *suite) startClean(t *testing.T) {
	cur := s.c.cursor(t)
	s.c.must(t, "systemctl", "start", "mews-keyd.service")
	if p := s.c.show(t, "ActiveState", "SubState"); p["ActiveState"] != "active" || p["SubState"] != "running" {
		t.Fatalf("after start the service is %s (%s)\n%s", p["ActiveState"], p["SubState"], s.dump(t, cur))
	}
	if w := warnings(s.c.journal(t, cur)); len(w) > 0 {
		t.Errorf("start logged warnings:\n%s", strings.Join(w, "\n"))
	}
}

func (s *suite) keyCommand(t *testing.T) {
	id, err := s.srv.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationCheckedIn, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = s.srv.Wait(ctx, func(srv *mewstest.Server) bool {
		c, _ := srv.Command(id)
		return c.State == mews.CommandProcessed
	})
	if err != nil {
		c, _ := s.srv.Command(id)
		t.Fatalf("the key command is %s, not Processed: %v", c.State, err)
	}
	t.Logf("command %s went %v", id, s.srv.StateHistory(id))
}

func reloaded(e entry) bool {
	return e.fromDaemon() && strings.Contains(e.msg(), "configuration reloaded")
}

func (s *suite) reload(t *testing.T) {
	cur := s.c.cursor(t)
	if out, err := s.c.run(t, "", "systemctl", "reload", "mews-keyd.service"); err != nil {
		t.Fatalf("systemctl reload: %v: %s\n%s", err, out, s.dump(t, cur))
	}
	s.c.waitJournal(t, cur, 20*time.Second, "saying the configuration was reloaded", reloaded)
	if w := warnings(s.c.journal(t, cur)); len(w) > 0 {
		t.Errorf("reload logged warnings:\n%s", strings.Join(w, "\n"))
	}
}

func (s *suite) rejectedReload(t *testing.T) {
	s.writeConfig(t, s.goodConfig+"\n[typo]\nlevel = \"debug\"\n")
	// The later steps need the good file whatever happens here.
	restored := false
	defer func() {
		if !restored {
			s.writeConfig(t, s.goodConfig)
		}
	}()
	cur := s.c.cursor(t)
	if out, err := s.c.run(t, "", "systemctl", "reload", "mews-keyd.service"); err != nil {
		// systemd 252 cannot wait for the daemon's answer; it is fine to fail
		// if it can, but then with the reason.
		t.Logf("systemctl reload: %v: %s", err, out)
	}
	s.c.waitJournal(t, cur, 20*time.Second, "at priority <= 3 rejecting the file", func(e entry) bool {
		return e.fromDaemon() && e.prio() <= 3 && strings.Contains(e.msg(), "rejected") && strings.Contains(e.msg(), "typo")
	})
	if st := s.c.show(t, "StatusText")["StatusText"]; !strings.Contains(st, "rejected") {
		t.Errorf("systemctl status shows %q, not the rejected reload", st)
	}
	if body := s.get(t, "/healthz"); !strings.Contains(body, "rejected") {
		t.Errorf("/healthz does not show the rejected reload: %s", body)
	}

	s.writeConfig(t, s.goodConfig)
	restored = true
	cur = s.c.cursor(t)
	s.c.must(t, "systemctl", "reload", "mews-keyd.service")
	s.c.waitJournal(t, cur, 20*time.Second, "saying the configuration was reloaded", reloaded)
	if st := s.c.show(t, "StatusText")["StatusText"]; strings.Contains(st, "rejected") {
		t.Errorf("after a good reload systemctl status still shows %q", st)
	}
	if body := s.get(t, "/healthz"); strings.Contains(body, "rejected") {
		t.Errorf("after a good reload /healthz still shows the rejection: %s", body)
	}
}

// get fetches a path from the daemon's status endpoint; the container
// shares the host's network.
func (s *suite) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + s.statusAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return string(body)
}

func (s *suite) watchdog(t *testing.T) {
	before := s.c.show(t, "MainPID", "NRestarts")
	cur := s.c.cursor(t)
	// Minimal Debian has no /bin/kill; the shell's kill is enough.
	s.c.sh(t, "kill -STOP "+before["MainPID"])
	s.c.waitJournal(t, cur, 60*time.Second, "from systemd about the watchdog", func(e entry) bool {
		return strings.Contains(e.msg(), "Watchdog timeout")
	})
	// sd-messages.h SD_MESSAGE_UNIT_STARTED: the restarted daemon is ready.
	s.c.waitJournal(t, cur, 60*time.Second, "saying the service started again", func(e entry) bool {
		return e.MessageID == "39f53479d3a045ac8e11786248231fbf"
	})
	after := s.c.show(t, "MainPID", "NRestarts", "ActiveState")
	if after["ActiveState"] != "active" || after["MainPID"] == before["MainPID"] {
		t.Errorf("after the watchdog the service is %s with MainPID %s (was %s)", after["ActiveState"], after["MainPID"], before["MainPID"])
	}
	var critical []string
	dump := 0
	for _, e := range s.c.journal(t, cur) {
		if e.fromDaemon() && e.prio() <= 2 {
			critical = append(critical, e.String())
		}
		if e.prio() <= 6 && strings.Contains(e.msg(), "goroutine ") {
			dump++
		}
	}
	t.Logf("the daemon said: %s", strings.Join(critical, "\n"))
	if len(critical) != 1 {
		t.Errorf("%d lines at priority <= 2 from the daemon, want 1:\n%s", len(critical), strings.Join(critical, "\n"))
	}
	if dump > 0 {
		t.Errorf("%d lines of goroutine dump at priority <= 6, want it only at debug", dump)
	}
}

func (s *suite) upgrade(t *testing.T) {
	pid := s.c.show(t, "MainPID")["MainPID"]
	out, err := s.c.run(t, "", "apt-get", "install", "-y", "--no-install-recommends", s.new.path)
	if err != nil {
		t.Fatalf("installing %s over %s: %v\n%s", s.new.version, s.old.version, err, out)
	}
	t.Logf("postinst said:\n%s", postinstLines(out))
	if want := fmt.Sprintf("Unpacking mews-keyd (%s) over (%s)", s.new.version, s.old.version); !strings.Contains(out, want) {
		t.Errorf("apt did not say %q:\n%s", want, out)
	}
	if _, err := s.c.run(t, "", "dpkg", "--compare-versions", s.new.version, "gt", s.old.version); err != nil {
		t.Errorf("dpkg sorts %s (later commit) before %s", s.new.version, s.old.version)
	}
	if !strings.Contains(out, "running") {
		t.Errorf("the upgrade does not say the service is running")
	}
	if p := s.c.show(t, "MainPID", "ActiveState"); p["ActiveState"] != "active" || p["MainPID"] == pid {
		t.Errorf("after the upgrade the service is %s with MainPID %s (was %s): not restarted", p["ActiveState"], p["MainPID"], pid)
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for mews-keyd\.service: ([0-9.]+)`)

func (s *suite) security(t *testing.T) {
	out := s.c.must(t, "systemd-analyze", "security", "--no-pager", "mews-keyd.service")
	m := exposure.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	level, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security: %s", m[0])
	if level > 2.5 {
		t.Errorf("exposure %.1f, want <= 2.5:\n%s", level, out)
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		if body := s.get(t, path); body == "" {
			t.Errorf("GET %s: empty", path)
		}
	}
}

// vendorScript stands in for a lock vendor's program (README, the exec
// driver): it reads the request and answers that the card was cut.
const vendorScript = `#!/bin/sh
cat >/dev/null
echo '{"ok":true,"note":"1 key from the vendor program"}'
`

// dropIn is the README's drop-in for vendor programs, as far as a machine
// without a serial device can take it.
const dropIn = `[Service]
ReadWritePaths=/var/tmp
MemoryDenyWriteExecute=no
`

func (s *suite) vendorProgram(t *testing.T) {
	if err := os.WriteFile(s.c.path("/usr/local/bin/vendor-encode"), []byte(vendorScript), 0o755); err != nil {
		t.Fatal(err)
	}
	s.goodConfig += `
[[encoders]]
name = "vendor"
driver = "exec"
command = ["/usr/local/bin/vendor-encode"]

[[key_cutters]]
device_id = "` + mewstest.KeyCutter2.ID + `"
encoder = "vendor"
`
	s.writeConfig(t, s.goodConfig)
	cur := s.c.cursor(t)
	s.c.must(t, "systemctl", "reload", "mews-keyd.service")
	s.c.waitJournal(t, cur, 20*time.Second, "saying the configuration was reloaded", reloaded)
	id, err := s.srv.CreateKeyCutterCommand(mewstest.KeyCutter2.ID, mewstest.ReservationArriving, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.srv.Wait(ctx, func(srv *mewstest.Server) bool { c, _ := srv.Command(id); return c.State.Final() }); err != nil {
		t.Fatalf("the vendor program's command did not finish: %v\n%s", err, s.dump(t, cur))
	}
	if c, _ := s.srv.Command(id); c.State != mews.CommandProcessed {
		t.Errorf("the vendor program's command ended %s: %s\n%s", c.State, s.srv.CommandNotes(id), s.dump(t, cur))
	}

	s.c.sh(t, "mkdir -p /etc/systemd/system/mews-keyd.service.d")
	if out, err := s.c.run(t, dropIn, "sh", "-c", "cat > /etc/systemd/system/mews-keyd.service.d/override.conf"); err != nil {
		t.Fatalf("write the drop-in: %v: %s", err, out)
	}
	s.c.must(t, "systemctl", "daemon-reload")
	if p := s.c.show(t, "MemoryDenyWriteExecute", "DropInPaths"); p["MemoryDenyWriteExecute"] != "no" {
		t.Errorf("the drop-in is not in force: %v", p)
	}
}

func (s *suite) stop(t *testing.T) {
	cur := s.c.cursor(t)
	s.c.must(t, "systemctl", "stop", "mews-keyd.service")
	p := s.c.show(t, "ActiveState", "Result", "ExecMainStatus")
	if p["ActiveState"] != "inactive" || p["Result"] != "success" || p["ExecMainStatus"] != "0" {
		t.Errorf("after stop: %v", p)
	}
	for _, e := range s.c.journal(t, cur) {
		if e.prio() <= 3 {
			t.Errorf("stop logged an error: %s", e)
		}
	}
}

func (s *suite) removeReinstall(t *testing.T) {
	s.c.must(t, "systemctl", "start", "mews-keyd.service")
	s.c.must(t, "apt-get", "remove", "-y", "mews-keyd")
	if st := s.state(t); st != "inactive" {
		t.Errorf("after remove the service is %s", st)
	}
	for _, f := range []string{"/etc/mews-keyd/config.toml", "/etc/mews-keyd/client_token", "/etc/mews-keyd/access_token"} {
		if _, err := os.Stat(s.c.path(f)); err != nil {
			t.Errorf("remove took %s: %v", f, err)
		}
	}
	out := s.aptInstall(t, s.new)
	t.Logf("postinst said:\n%s", postinstLines(out))
	if !strings.Contains(out, "mews-keyd: the service is running") {
		t.Errorf("the reinstall does not say the service is running")
	}
	if st := s.state(t); st != "active" {
		t.Errorf("after a reinstall of a configured machine the service is %s, want active", st)
	}
}

func (s *suite) purge(t *testing.T) {
	out := s.c.must(t, "apt-get", "purge", "-y", "mews-keyd")
	if strings.Contains(out, "not empty so not removed") {
		t.Errorf("purge left files:\n%s", out)
	}
	for _, f := range []string{"/etc/mews-keyd", "/var/lib/mews-keyd", "/lib/systemd/system/mews-keyd.service",
		"/etc/systemd/system/multi-user.target.wants/mews-keyd.service", "/usr/bin/mews-keyd",
		"/etc/systemd/system/mews-keyd.service.d", "/etc/systemd/system/mews-keyd.service"} {
		if _, err := os.Lstat(s.c.path(f)); err == nil {
			t.Errorf("purge left %s", f)
		}
	}
	if p := s.c.show(t, "LoadState", "ActiveState"); p["LoadState"] != "not-found" || p["ActiveState"] != "inactive" {
		t.Errorf("after purge the unit is %v", p)
	}
}
