//go:build !windows

package exec_test

// addedByPlatform: a Unix process gets exactly the environment its parent
// gives.
func addedByPlatform(string) bool { return false }
