package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// TestRestrictDir runs the real calls: a folder Users may read is reported,
// and after restrictDir neither it nor a file in it is.
func TestRestrictDir(t *testing.T) {
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("needs an elevated prompt: install makes Administrators the owner")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "client_token")
	if err := os.WriteFile(file, []byte("token"), 0o600); err != nil {
		t.Fatal(err)
	}
	// ProgramData's way: Users may read, inherited by files.
	open, err := windows.SecurityDescriptorFromString("D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FR;;;BU)")
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := open.DACL()
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
	if w := DirWarnings(dir); len(w) != 1 || !strings.Contains(w[0], "readable by Users") {
		t.Errorf("warnings for a folder Users may read: %q", w)
	}

	if err := restrictDir(dir); err != nil {
		t.Fatal(err)
	}
	if w := DirWarnings(dir, file); len(w) != 0 {
		t.Errorf("warnings after restrictDir: %q", w)
	}
}
