package config

// exposed is always false on Windows: access there is governed by ACLs,
// which file mode bits do not reflect. Restricting %ProgramData%\mews-keyd
// (readable by all local users by default) is the installer's job.
func exposed(string) bool { return false }
