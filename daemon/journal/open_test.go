package journal_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/journal"
)

const helperEnv = "JOURNAL_TEST_HELPER_DIR"

func TestLockedInSameProcess(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, newClock())
	_ = j

	start := time.Now()
	_, err := journal.Open(dir, journal.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("second Open took %v", took)
	}
	want := fmt.Sprintf("state dir %s is in use by another mews-keyd (journal.db is locked)", dir)
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
}

// helperProcess runs in a re-executed test binary: it journals a few
// commands, says "ready" and waits to be killed without closing anything.
func helperProcess() {
	j, err := journal.Open(os.Getenv(helperEnv), journal.Options{})
	if err == nil {
		err = helperSteps(j)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // blocks until killed
	os.Exit(2)
}

func helperSteps(j *journal.Journal) error {
	for _, id := range []string{"waiting", "interrupted", "finished"} {
		if _, _, err := j.Accept(id, "frontdesk", "dev-1"); err != nil {
			return err
		}
	}
	if err := j.StartEncode("interrupted"); err != nil {
		return err
	}
	if err := j.StartEncode("finished"); err != nil {
		return err
	}
	return j.FinishEncode("finished", journal.Result{OK: true, Note: "2 keys for room 101"}, "Processed", "2 keys for room 101")
}

// TestOtherProcess holds the journal in a second process, checks that it
// locks us out, kills it with SIGKILL (no Close, no deferred code) and
// checks that every step it committed is there.
func TestOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	must(t, err)
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q (%v)", line, err)
	}

	_, err = journal.Open(dir, journal.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, journal.ErrLocked) || !strings.Contains(err.Error(), "in use by another mews-keyd") {
		t.Errorf("Open while another process holds the journal: %v", err)
	}

	must(t, cmd.Process.Kill())
	_ = cmd.Wait()

	j := openJournal(t, dir, newClock())
	u, err := j.Unfinished()
	must(t, err)
	if got := ids(u); !equal(got, []string{"waiting", "interrupted"}) {
		t.Fatalf("Unfinished after kill = %v", got)
	}
	for i, want := range []journal.Step{journal.StepAccepted, journal.StepEncodeStarted} {
		if u[i].Step != want {
			t.Errorf("%s in step %s, want %s", u[i].CommandID, u[i].Step, want)
		}
	}
	o, err := j.Outbox()
	must(t, err)
	if len(o) != 1 || o[0].CommandID != "finished" || o[0].Result == nil || o[0].Result.Note != "2 keys for room 101" {
		t.Errorf("Outbox after kill = %+v", o)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	garbage := func(n int) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			b := make([]byte, n)
			_, _ = rand.Read(b)
			must(t, os.WriteFile(path, b, 0o600))
		}
	}
	// damage rewrites part of a real journal full of entries.
	damage := func(from, to int64, fill byte) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			j, err := journal.Open(filepath.Dir(path), journal.Options{UnsafeNoSync: true})
			must(t, err)
			for i := range 300 {
				if _, _, err := j.Accept(fmt.Sprintf("cmd-%04d", i), "frontdesk", "dev-1"); err != nil {
					t.Fatal(err)
				}
			}
			must(t, j.Close())
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			must(t, err)
			defer f.Close()
			fi, err := f.Stat()
			must(t, err)
			if to < 0 {
				to = fi.Size()
			}
			_, err = f.WriteAt(bytes.Repeat([]byte{fill}, int(to-from)), from)
			must(t, err)
		}
	}
	truncate := func(t *testing.T, path string) {
		damage(0, 0, 0)(t, path)
		must(t, os.Truncate(path, 4096))
	}

	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"garbage 100 bytes", garbage(100)},
		{"garbage 3000 bytes", garbage(3000)},
		{"garbage 5000 bytes", garbage(5000)},
		{"garbage 64 KiB", garbage(64 << 10)},
		{"both meta pages zeroed", damage(0, 8192, 0)},
		{"data pages overwritten", damage(8192, -1, 0xA5)},
		{"data pages zeroed", damage(8192, -1, 0)},
		{"truncated to one page", truncate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, journal.FileName)
			tt.corrupt(t, path)
			damaged, err := os.ReadFile(path)
			must(t, err)

			var logs bytes.Buffer
			c := newClock()
			j, err := journal.Open(dir, journal.Options{Now: c.Now, Logger: zerolog.New(&logs)})
			if err != nil {
				t.Fatalf("Open of a corrupt journal: %v", err)
			}
			defer func() { _ = j.Close() }()

			aside := j.MovedAside()
			if want := path + ".corrupt-20250301T120000Z"; aside != want {
				t.Fatalf("MovedAside = %q, want %q", aside, want)
			}
			if kept, err := os.ReadFile(aside); err != nil || !bytes.Equal(kept, damaged) {
				t.Errorf("moved-aside file differs from the damaged one (%v)", err)
			}
			// Decoded, because JSON escapes the backslashes of Windows paths.
			var line struct {
				Level   string `json:"level"`
				Path    string `json:"path"`
				MovedTo string `json:"moved_to"`
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil ||
				line.Level != "error" || line.Path != path || line.MovedTo != aside {
				t.Errorf("log does not name both files at error level (%v): %s", err, logs.String())
			}
			if _, isNew, err := j.Accept("cmd-0001", "frontdesk", "dev-1"); err != nil || !isNew {
				t.Errorf("fresh journal: Accept = new %v, %v", isNew, err)
			}
		})
	}
}

func TestHealthyFileNotMovedAside(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	must(t, err)
	accept(t, j, "cmd-1")
	must(t, j.Close())

	var logs bytes.Buffer
	j, err = journal.Open(dir, journal.Options{Logger: zerolog.New(&logs)})
	must(t, err)
	defer func() { _ = j.Close() }()
	if j.MovedAside() != "" || logs.Len() != 0 {
		t.Fatalf("healthy journal moved aside to %q, logs %s", j.MovedAside(), logs.String())
	}
	mustEntry(t, j, "cmd-1")
}

// An unreadable journal that is not damaged must stop the start, not be
// replaced by an empty one that would forget commands in progress.
func TestUnopenableFileIsNotMovedAside(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Mkdir(filepath.Join(dir, journal.FileName), 0o700))
	_, err := journal.Open(dir, journal.Options{})
	if err == nil || !strings.Contains(err.Error(), journal.FileName) {
		t.Fatalf("Open with a directory as journal.db: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(matches) != 0 {
		t.Fatalf("moved aside: %v", matches)
	}
}

// TestWriteFailure stands for a full or failing disk: every change is
// refused with ErrWriteFailed, reads still work, nothing changes.
func TestWriteFailure(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	must(t, err)
	accept(t, j, "accepted", "queued")
	must(t, j.QueueReport("queued", "Cancelled", ""))
	must(t, j.Close())

	opts := journal.Options{}
	journal.FailWrites(&opts)
	j, err = journal.Open(dir, opts)
	must(t, err)
	defer func() { _ = j.Close() }()

	err = j.StartEncode("accepted")
	if !errors.Is(err, journal.ErrWriteFailed) {
		t.Fatalf("StartEncode: %v, want ErrWriteFailed", err)
	}
	if want := "no key will be encoded until the journal can be written"; !strings.Contains(err.Error(), want) {
		t.Errorf("StartEncode error %q does not say %q", err, want)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, journal.FileName)) {
		t.Errorf("StartEncode error %q does not name the file", err)
	}
	writes := map[string]func() error{
		"Accept":              func() error { _, _, err := j.Accept("new", "frontdesk", "dev-1"); return err },
		"Ignore":              func() error { _, _, err := j.Ignore("new", "dev-9", "not ours"); return err },
		"QueueReport":         func() error { return j.QueueReport("accepted", "Cancelled", "") },
		"Abandon":             func() error { return j.Abandon("accepted", "cancelled") },
		"ReportFailed":        func() error { return j.ReportFailed("queued", errors.New("503"), time.Now()) },
		"MarkReported":        func() error { return j.MarkReported("queued") },
		"Compact":             func() error { _, err := j.Compact(); return err },
		"PutDigitalRecord":    func() error { return j.PutDigitalRecord("k", []byte("v")) },
		"DeleteDigitalRecord": func() error { return j.DeleteDigitalRecord("k") },
		"PutFirstKey":         func() error { return j.PutFirstKey("k", nil, time.Now()) },
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, journal.ErrWriteFailed) {
			t.Errorf("%s: %v, want ErrWriteFailed", name, err)
		} else if strings.Contains(err.Error(), "no key will be encoded") {
			t.Errorf("%s error claims to block encoding: %q", name, err)
		}
	}
	for id, want := range map[string]journal.Step{"accepted": journal.StepAccepted, "queued": journal.StepReportQueued} {
		if e := mustEntry(t, j, id); e.Step != want {
			t.Errorf("%s in step %s after failed writes, want %s", id, e.Step, want)
		}
	}
	if _, ok, _ := j.Get("new"); ok {
		t.Error("failed Accept left an entry")
	}
	if s := j.Stats(); s.Steps[journal.StepAccepted] != 1 || s.Steps[journal.StepReportQueued] != 1 || s.Open != 2 {
		t.Errorf("Stats after failed writes = %+v", s)
	}
}
