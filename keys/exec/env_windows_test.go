package exec_test

import (
	"strings"

	"golang.org/x/sys/windows"
)

// addedByPlatform: wine (make test-windows) adds its own variables to every
// process it starts, whatever environment the parent gave it; Windows adds
// none.
func addedByPlatform(name string) bool {
	if windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() != nil {
		return false
	}
	return strings.HasPrefix(name, "WINE") || name == "SYSTEMDRIVE" || name == "PROCESSOR_ARCHITECTURE"
}
