//go:build !linux

package install

// notify does nothing: only systemd speaks sd_notify.
func notify(string) error { return nil }

func monotonicUsec() int64 { return 0 }
