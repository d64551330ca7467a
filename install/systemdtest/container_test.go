//go:build systemd

package systemdtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// machineName names the container in nspawn's own messages.
const machineName = "mews-keyd-test"

var (
	cacheDir = envOr("MEWS_KEYD_TEST_CACHE", "/var/cache/mews-keyd-test")
	mirror   = envOr("DEBIAN_MIRROR", "http://deb.debian.org/debian")
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// live is the running container, shut down by TestMain on a signal: an
// interrupted run must not leave a booted system behind.
var (
	liveMu sync.Mutex
	live   *container
)

func TestMain(m *testing.M) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "systemdtest: %v: killing the container\n", s)
		liveMu.Lock()
		if live != nil {
			live.shutdown(false)
		}
		os.Exit(1)
	}()
	os.Exit(m.Run())
}

// requireHost fails when the machine cannot run the test, saying what is
// missing: CI must not pass by skipping.
func requireHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (systemd-nspawn, nsenter)")
	}
	for _, tool := range []string{"systemd-nspawn", "nsenter", "debootstrap", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (apt-get install systemd-container debootstrap): %v", tool, err)
		}
	}
}

// baseImage returns a Debian 12 minbase with systemd, built once with
// debootstrap (about 30 s) and cached: like the Debian container images it
// has no procps, a fair stand-in for a lean server.
func baseImage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(cacheDir, "bookworm")
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	// Built aside and renamed, so an interrupted debootstrap is never
	// taken for a finished image.
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus",
		"bookworm", tmp, mirror).CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("debootstrap: %v\n%s", err, tail(out, 20))
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the Debian 12 image in %s (cached in %s)", time.Since(start).Round(time.Second), dir)
	return dir
}

// container is a throw-away copy of the image booted with systemd as PID 1.
type container struct {
	rootfs string
	nspawn *exec.Cmd
	exited chan struct{}
	init   int // host pid of the container's PID 1
	once   sync.Once
}

// boot starts a fresh copy of image and waits until its systemd has
// finished booting. The container is shut down and removed when the test
// ends, or on SIGINT/SIGTERM; one left by a killed run is removed first.
func boot(t *testing.T, image string) *container {
	t.Helper()
	runDir := filepath.Join(cacheDir, "run")
	rootfs := filepath.Join(runDir, "rootfs")
	reapStale(t, rootfs)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "--reflink=auto", image, rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy the image: %v: %s", err, out)
	}
	logFile, err := os.Create(filepath.Join(runDir, "nspawn.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// --register=no --keep-unit: there is no machined or system bus on the
	// host. Its own session keeps a terminal's ^C away from it: the
	// container is stopped by shutdown.
	cmd := exec.Command("systemd-nspawn", "-D", rootfs, "-b", "-M", machineName,
		"--register=no", "--keep-unit", "--console=passive", "--setenv="+marker(rootfs))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	liveMu.Lock()
	if err := cmd.Start(); err != nil {
		liveMu.Unlock()
		t.Fatalf("systemd-nspawn: %v", err)
	}
	c := &container{rootfs: rootfs, nspawn: cmd, exited: make(chan struct{})}
	live = c
	liveMu.Unlock()
	go func() {
		cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		liveMu.Lock()
		defer liveMu.Unlock()
		c.shutdown(true)
		live = nil
	})

	deadline := time.Now().Add(20 * time.Second)
	for c.init == 0 {
		select {
		case <-c.exited:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("systemd-nspawn exited:\n%s", tail(log, 20))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the container's PID 1 did not appear")
		}
		c.init = childIn(cmd.Process.Pid, rootfs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Until PID 1 has set itself up, systemctl finds no bus or says
	// "offline"; "degraded" is a booted system too (a minbase lacks
	// things some units want).
	var state string
	for ctx.Err() == nil {
		out, _ := c.command(ctx, "systemctl", "is-system-running", "--wait").Output()
		if state = strings.TrimSpace(string(out)); state != "" && state != "offline" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if state != "running" && state != "degraded" {
		t.Fatalf("the container did not boot: %q", state)
	}
	return c
}

// marker is put in the environment of the container's PID 1, so that it
// is found by it even after its nspawn died: seen from the host, its root
// directory is just "/".
func marker(rootfs string) string { return "MEWS_KEYD_TEST_ROOTFS=" + rootfs }

// childIn returns the child of parent that carries the marker: the
// container's PID 1. (A forked nspawn shares the parent's command line
// until it execs; only PID 1 has the marker.)
func childIn(parent int, rootfs string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if ppid(pid) == parent && hasMarker(pid, rootfs) {
			return pid
		}
	}
	return 0
}

func hasMarker(pid int, rootfs string) bool {
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return bytes.Contains(append(append([]byte{0}, env...), 0), []byte("\x00"+marker(rootfs)+"\x00"))
}

// containerProcs lists the processes of the container on rootfs: its
// PID 1 (killing it ends every process inside) and the nspawn running it.
func containerProcs(rootfs string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		cmdline, _ := os.ReadFile(p + "/cmdline")
		if hasMarker(pid, rootfs) || bytes.Contains(cmdline, []byte("\x00-D\x00"+rootfs+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func ppid(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces: fields count from
	// the last ')'.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(fields[1])
	return n
}

// reapStale kills what a killed earlier run left on rootfs and removes it.
func reapStale(t *testing.T, rootfs string) {
	t.Helper()
	if n := kill(containerProcs(rootfs)); n > 0 {
		t.Logf("killed %d processes left by an earlier run", n)
	}
	if err := os.RemoveAll(rootfs); err != nil {
		t.Fatal(err)
	}
}

// kill sends SIGKILL to pids and waits until they are gone.
func kill(pids []int) int {
	n := 0
	for _, pid := range pids {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	for _, pid := range pids {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
		}
	}
	return n
}

// shutdown powers the container off when graceful (killing it if that
// takes too long), kills it otherwise, and removes its file system.
// Callers hold liveMu.
func (c *container) shutdown(graceful bool) {
	c.once.Do(func() {
		if graceful && c.init > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if c.command(ctx, "systemctl", "poweroff").Run() == nil {
				select {
				case <-c.exited:
				case <-time.After(10 * time.Second):
				}
			}
			cancel()
		}
		// Whatever did not stop, PID 1 included when it was never found.
		kill(containerProcs(c.rootfs))
		<-c.exited
		os.RemoveAll(c.rootfs)
	})
}

// command runs args inside every namespace of the container. nsenter
// forks the command into the container's PID namespace, so ending ctx
// kills the whole process group, not nsenter alone.
func (c *container) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(c.init), "-a", "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "TERM=dumb",
		"DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs args in the container and returns its combined output.
func (c *container) run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := c.command(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must is run that fails the test on an error.
func (c *container) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(t, "", args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// sh runs a shell script in the container.
func (c *container) sh(t *testing.T, script string) string {
	t.Helper()
	return c.must(t, "sh", "-ec", script)
}

// path is where a file of the container lies on the host.
func (c *container) path(p string) string { return filepath.Join(c.rootfs, p) }

// show returns unit properties as systemctl show prints them.
func (c *container) show(t *testing.T, props ...string) map[string]string {
	t.Helper()
	out := c.must(t, "systemctl", "show", "mews-keyd.service", "-p", strings.Join(props, ","))
	m := make(map[string]string)
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// entry is one journal entry, as journalctl -o json prints it.
type entry struct {
	Cursor    string          `json:"__CURSOR"`
	Message   json.RawMessage `json:"MESSAGE"`
	Priority  string          `json:"PRIORITY"`
	Ident     string          `json:"SYSLOG_IDENTIFIER"`
	MessageID string          `json:"MESSAGE_ID"`
	PID       string          `json:"_PID"`
}

// msg is the message text; journald gives non-UTF-8 text as a byte array.
func (e entry) msg() string {
	var s string
	if json.Unmarshal(e.Message, &s) == nil {
		return s
	}
	var b []byte
	json.Unmarshal(e.Message, &b)
	return string(b)
}

func (e entry) prio() int {
	n, err := strconv.Atoi(e.Priority)
	if err != nil {
		return 6
	}
	return n
}

// fromDaemon: written by mews-keyd itself, not by systemd about it.
func (e entry) fromDaemon() bool { return e.Ident == "mews-keyd" }

func (e entry) String() string { return fmt.Sprintf("<%s> %s: %s", e.Priority, e.Ident, e.msg()) }

// cursor marks the end of the journal now.
func (c *container) cursor(t *testing.T) string {
	t.Helper()
	out := c.must(t, "journalctl", "-n1", "-o", "json", "-q")
	var e entry
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("journal cursor: %v: %s", err, out)
	}
	return e.Cursor
}

// journal returns the service's entries after cursor.
func (c *container) journal(t *testing.T, cursor string) []entry {
	t.Helper()
	c.must(t, "journalctl", "--sync")
	return parseEntries(t, c.must(t, "journalctl", "-u", "mews-keyd.service", "-o", "json", "-q", "--after-cursor", cursor))
}

func parseEntries(t *testing.T, out string) []entry {
	t.Helper()
	var entries []entry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal entry: %v: %s", err, line)
		}
		entries = append(entries, e)
	}
	return entries
}

// waitJournal follows the service's journal from cursor until an entry
// matches, and returns it; it fails the test after timeout.
func (c *container) waitJournal(t *testing.T, cursor string, timeout time.Duration, what string, match func(entry) bool) entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.command(ctx, "journalctl", "-u", "mews-keyd.service", "-o", "json", "-q", "-f", "--after-cursor", cursor)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	var seen []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		if match(e) {
			return e
		}
		seen = append(seen, e.String())
	}
	t.Fatalf("no journal entry %s within %s; the service wrote:\n%s", what, timeout, strings.Join(lastN(seen, 30), "\n"))
	return entry{}
}

func lastN(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

func tail(out []byte, n int) string {
	return strings.Join(lastN(strings.Split(strings.TrimSpace(string(out)), "\n"), n), "\n")
}
