//go:build unix

package exec

// inherited are the daemon's variables a program gets when they are set.
var inherited = []string{"PATH", "TZ", "LANG"}
