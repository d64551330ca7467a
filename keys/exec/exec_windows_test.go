package exec_test

import (
	"errors"
	"testing"

	"golang.org/x/sys/windows"
)

// waitGone waits until pid has ended, on its process handle.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, uint32(pid))
	if errors.Is(err, windows.ERROR_INVALID_PARAMETER) {
		return // no such process any more
	}
	if err != nil {
		t.Fatalf("open child %d: %v", pid, err)
	}
	defer windows.CloseHandle(h)
	ev, err := windows.WaitForSingleObject(h, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if ev != windows.WAIT_OBJECT_0 {
		t.Fatalf("child %d of the hung program is still running", pid)
	}
}
