package exec_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A vendor program that hangs after starting a helper must not leave the
// helper running: the whole process group is killed.
func TestTimeoutKillsChildren(t *testing.T) {
	enc, dir := open(t, nil, zerolog.Nop())
	if _, err := issueAs(t, enc, "CHILD", 500*time.Millisecond); err == nil {
		t.Fatal("CHILD succeeded")
	}
	b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatalf("the program did not start its child: %v", err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	// SIGKILL is delivered asynchronously and there is no event to wait for
	// in another process's death; poll /proc, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for alive(t, pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the hung program is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs; a zombie waiting for its reaper does not.
func alive(t *testing.T, pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	// Format: pid (comm) state ...; comm may hold spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
