//go:build windows

package exec

// inherited are the daemon's variables a program gets when they are set:
// many Windows programs cannot start without SystemRoot or write a
// temporary file without TEMP/TMP.
var inherited = []string{"PATH", "SystemRoot", "TEMP", "TMP", "TZ", "LANG"}
