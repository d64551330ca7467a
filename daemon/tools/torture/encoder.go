package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/daemontest"

	"github.com/mews-keyd/mews-keyd/keys/wire"
)

// The exec encoder's behaviour is chosen by the torture run through the
// command's KeyCount, the one field it controls per command; the daemon
// passes it through untouched.
const (
	keysOK      = 1 // success at once
	keysSlow    = 2 // success after slowEncode: a SIGKILL can land mid-encode
	keysRefuse  = 3 // {"ok":false}: the encoder refuses
	keysHang    = 4 // answers after hangEncode, beyond the encoder timeout
	keysCrash   = 5 // exits non-zero without an answer
	slowEncode  = 300 * time.Millisecond
	hangEncode  = 4 * time.Second
	execTimeout = 1500 * time.Millisecond
)

// ledgerEnv names the file every encoder call is appended to before
// anything else happens, synced: the proof of how often a card was cut,
// whatever happens to the daemon afterwards.
const ledgerEnv = "TORTURE_LEDGER"

// encode is the exec driver's vendor program: `torture encode`.
func encode() int {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fail(err)
	}
	var req wire.Request
	if err := json.Unmarshal(in, &req); err != nil {
		return fail(err)
	}
	if err := daemontest.AppendLedger(os.Getenv(ledgerEnv), req.IdempotencyKey); err != nil {
		return fail(err)
	}
	ok := true
	ans := wire.Answer{OK: &ok, Note: fmt.Sprintf("%d keys (torture)", req.KeyCount)}
	switch req.KeyCount {
	case keysSlow:
		time.Sleep(slowEncode)
	case keysRefuse:
		ok = false
		ans = wire.Answer{OK: &ok, Error: "no card presented (torture)"}
	case keysHang:
		time.Sleep(hangEncode)
	case keysCrash:
		fmt.Fprintln(os.Stderr, "encoder crashed (torture)")
		return 3
	}
	if err := json.NewEncoder(os.Stdout).Encode(ans); err != nil {
		return fail(err)
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "torture encoder:", err)
	return 1
}
