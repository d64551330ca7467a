package daemontest

import (
	"fmt"
	"os"
)

// AppendLedger records one encoder call in a ledger file, on disk before it
// returns: the test encoders write every call there before anything else,
// so the ledger counts cards even when the daemon that asked dies.
func AppendLedger(path, id string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, id); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
