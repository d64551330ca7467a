package install

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// Windows access control for %ProgramData%\mews-keyd, which holds the
// config, the token files and the journal. ProgramData lets every local
// user read what is below it; install replaces that with SYSTEM (the
// service) and Administrators only, and check warns when a directory is
// open to everyone. The logic is here, on every platform, so that it is
// tested anywhere; acl_windows.go only reads and writes the ACLs.

// Well-known SIDs.
const (
	sidSystem             = "S-1-5-18"
	sidAdministrators     = "S-1-5-32-544"
	sidUsers              = "S-1-5-32-545"
	sidEveryone           = "S-1-1-0"
	sidAuthenticatedUsers = "S-1-5-11"
	sidCreatorOwner       = "S-1-3-0"
)

// File access rights (winnt.h).
const (
	fileReadData        = 0x1 // FILE_LIST_DIRECTORY on a directory
	fileAddFile         = 0x2
	fileAddSubdirectory = 0x4
	fileReadAttributes  = 0x80
	fileGenericRead     = 0x120089
	fileGenericExecute  = 0x1200a0
	fileAllAccess       = 0x1f01ff
	genericAll          = 0x10000000
	genericRead         = 0x80000000
	// readAccess is any right that reads a file's data or lists a
	// directory; the generic rights appear in inheritable ACEs.
	readAccess = fileReadData | genericRead | genericAll
)

// ace is one access control entry: who, which rights, allowed or denied.
type ace struct {
	sid   string
	mask  uint32
	allow bool
}

// privateDir is the DACL install gives the directory: full control for
// SYSTEM and Administrators, inherited by every file and subdirectory.
var privateDir = []ace{
	{sid: sidSystem, mask: fileAllAccess, allow: true},
	{sid: sidAdministrators, mask: fileAllAccess, allow: true},
}

// everyone are the groups that take in every local user.
var everyone = map[string]string{
	sidUsers:              "Users",
	sidEveryone:           "Everyone",
	sidAuthenticatedUsers: "Authenticated Users",
}

// privateDirSDDL is the security descriptor install sets, as SDDL: owned by
// Administrators (an owner may always change the ACL, so no user may stay
// owner) and a protected DACL (P: ProgramData's entries are not inherited)
// of privateDir, each entry inherited by files (OI) and folders (CI).
func privateDirSDDL() string {
	var b strings.Builder
	b.WriteString("O:" + sidAdministrators + "D:PAI")
	for _, a := range privateDir {
		fmt.Fprintf(&b, "(A;OICI;0x%x;;;%s)", a.mask, a.sid)
	}
	return b.String()
}

// dirWarning says which of the everyone groups aces let read dir (its own
// listing, or through inheritable entries its files), or "" if none.
// Only allow entries count: a deny entry for these groups is unusual
// enough that warning too often is the better mistake.
func dirWarning(dir string, aces []ace) string {
	readers := map[string]bool{}
	for _, a := range aces {
		if name, ok := everyone[a.sid]; ok && a.allow && a.mask&readAccess != 0 {
			readers[name] = true
		}
	}
	if len(readers) == 0 {
		return ""
	}
	return fmt.Sprintf("%s is readable by %s: it may hold the Mews tokens and the journal; restrict it to SYSTEM and Administrators "+
		"('%s install' does that for %%ProgramData%%\\%s: uninstall and install again)",
		dir, strings.Join(slices.Sorted(maps.Keys(readers)), ", "), Name, Name)
}

// DirWarnings returns a warning for each of dirs that every local user may
// read. Only Windows has anything to say: elsewhere the config loader
// checks the token files' modes. A directory that does not exist yet is
// not reported.
func DirWarnings(dirs ...string) []string {
	var warnings []string
	seen := map[string]bool{}
	for _, dir := range dirs {
		// Windows paths compare without case.
		key := strings.ToLower(filepath.Clean(dir))
		if seen[key] {
			continue
		}
		seen[key] = true
		aces, err := dirACEs(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("cannot tell who may read %s: %v", dir, err))
		default:
			if w := dirWarning(dir, aces); w != "" {
				warnings = append(warnings, w)
			}
		}
	}
	return warnings
}
