package install

import (
	"strings"
	"testing"
)

// TestPrivateDirSDDL: what install sets on %ProgramData%\mews-keyd is owned
// by Administrators, does not inherit ProgramData's "Users may read", and
// gives full control to SYSTEM and Administrators only, down to every file.
func TestPrivateDirSDDL(t *testing.T) {
	const want = "O:S-1-5-32-544D:PAI(A;OICI;0x1f01ff;;;S-1-5-18)(A;OICI;0x1f01ff;;;S-1-5-32-544)"
	if got := privateDirSDDL(); got != want {
		t.Errorf("SDDL %s, want %s", got, want)
	}
	if w := dirWarning(`C:\ProgramData\mews-keyd`, privateDir); w != "" {
		t.Errorf("the ACL install sets is reported as too open: %s", w)
	}
}

func TestDirWarning(t *testing.T) {
	admins := []ace{
		{sid: sidSystem, mask: fileAllAccess, allow: true},
		{sid: sidAdministrators, mask: fileAllAccess, allow: true},
	}
	for _, tt := range []struct {
		name  string
		extra []ace
		want  string // the group names the warning lists; "" for none
	}{
		{"SYSTEM and Administrators only", nil, ""},
		{"ProgramData's default: Users read and execute", []ace{
			{sid: sidUsers, mask: fileGenericRead | fileGenericExecute, allow: true},
			{sid: sidUsers, mask: fileAddFile | fileAddSubdirectory, allow: true},
			{sid: sidCreatorOwner, mask: genericAll, allow: true},
		}, "Users"},
		{"Everyone through GENERIC_READ", []ace{{sid: sidEveryone, mask: genericRead, allow: true}}, "Everyone"},
		{"Authenticated Users with full control", []ace{{sid: sidAuthenticatedUsers, mask: genericAll, allow: true}}, "Authenticated Users"},
		{"two groups", []ace{
			{sid: sidUsers, mask: fileReadData, allow: true},
			{sid: sidEveryone, mask: fileAllAccess, allow: true},
		}, "Everyone, Users"},
		{"Users may only list attributes", []ace{{sid: sidUsers, mask: fileReadAttributes, allow: true}}, ""},
		{"Users denied read", []ace{{sid: sidUsers, mask: fileGenericRead, allow: false}}, ""},
		{"a named user may read", []ace{{sid: "S-1-5-21-1004336348-1177238915-682003330-1001", mask: fileGenericRead, allow: true}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := dirWarning(`C:\ProgramData\mews-keyd`, append(admins, tt.extra...))
			if tt.want == "" {
				if got != "" {
					t.Errorf("warning %q, want none", got)
				}
				return
			}
			want := `C:\ProgramData\mews-keyd is readable by ` + tt.want + ":"
			if !strings.HasPrefix(got, want) {
				t.Errorf("warning %q, want it to start %q", got, want)
			}
		})
	}
}
