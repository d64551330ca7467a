package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// childSDDL resets what lies below the directory to its inherited entries
// and owner Administrators: an empty DACL, not protected.
const childSDDL = "O:" + sidAdministrators + "D:AI"

// restrictDir creates dir if need be and leaves it, and everything in it,
// to SYSTEM and Administrators (see privateDirSDDL).
func restrictDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := setSecurity(dir, privateDirSDDL(), windows.PROTECTED_DACL_SECURITY_INFORMATION); err != nil {
		return fmt.Errorf("restrict %s to SYSTEM and Administrators: %w", dir, err)
	}
	// Files below may carry entries of their own, or a user as owner (any
	// user could create files here before): reset them to what they
	// inherit. Links are skipped: what they point to is not ours.
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir || !(d.IsDir() || d.Type().IsRegular()) {
			return err
		}
		if err := setSecurity(path, childSDDL, windows.UNPROTECTED_DACL_SECURITY_INFORMATION); err != nil {
			return fmt.Errorf("restrict %s to SYSTEM and Administrators: %w", path, err)
		}
		return nil
	})
}

// setSecurity sets the owner and DACL of path from sddl.
func setSecurity(path, sddl string, flags windows.SECURITY_INFORMATION) error {
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return err
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	if dacl == nil {
		// A NULL DACL would let everyone in.
		return errors.New("no DACL in " + sddl)
	}
	return windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION|flags, owner, nil, dacl, nil)
}

// dirACEs reads the allow and deny entries of dir's DACL.
func dirACEs(dir string) ([]ace, error) {
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return nil, err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return nil, err
	}
	if dacl == nil {
		// A NULL DACL grants everyone everything.
		return []ace{{sid: sidEveryone, mask: genericAll, allow: true}}, nil
	}
	aces := make([]ace, 0, dacl.AceCount)
	for i := range uint32(dacl.AceCount) {
		var e *windows.ACCESS_ALLOWED_ACE // a deny entry has the same layout
		if err := windows.GetAce(dacl, i, &e); err != nil {
			return nil, err
		}
		if e.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE && e.Header.AceType != windows.ACCESS_DENIED_ACE_TYPE {
			continue // object and callback entries: not on plain folders
		}
		sid := (*windows.SID)(unsafe.Pointer(&e.SidStart))
		aces = append(aces, ace{sid: sid.String(), mask: uint32(e.Mask), allow: e.Header.AceType == windows.ACCESS_ALLOWED_ACE_TYPE})
	}
	return aces, nil
}
