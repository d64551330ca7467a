package config

import "strings"

// windowsHome is %ProgramData%\mews-keyd, where the configuration and the
// journal live on Windows. It takes the environment as a function so the
// Windows defaults are tested on every platform.
func windowsHome(env func(string) string) string {
	dir := strings.TrimRight(env("ProgramData"), `\`)
	if dir == "" {
		dir = `C:\ProgramData`
	}
	return dir + `\mews-keyd`
}
