package config

// exposed is always false on Windows: access there is governed by ACLs,
// which file mode bits do not reflect. `install` restricts
// %ProgramData%\mews-keyd (readable by all local users by default) to SYSTEM
// and Administrators, and `check` warns about a config or state directory
// every user can read (install.DirWarnings).
func exposed(string) bool { return false }
