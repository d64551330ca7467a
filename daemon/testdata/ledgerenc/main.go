// Command ledgerenc is a vendor encoder program for the daemon's crash
// tests (exec driver). Every call is first appended to the ledger file
// LEDGER_FILE and synced: the ledger is the proof of how often a card was
// "cut", whatever happens to the daemon afterwards. The program then tells
// the test it was called by connecting to LEDGER_ADDR and sending the
// idempotency key, and waits for the test's verdict: "ok" answers success,
// "fail" a failure, and a closed connection ends the program without an
// answer (the test has killed the daemon meanwhile).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/mews-keyd/mews-keyd/daemon/daemontest"

	"github.com/mews-keyd/mews-keyd/keys/wire"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		die(err)
	}
	var req wire.Request
	if err := json.Unmarshal(in, &req); err != nil {
		die(err)
	}
	if err := daemontest.AppendLedger(os.Getenv("LEDGER_FILE"), req.IdempotencyKey); err != nil {
		die(err)
	}
	conn, err := net.Dial("tcp", os.Getenv("LEDGER_ADDR"))
	if err != nil {
		die(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintln(conn, req.IdempotencyKey); err != nil {
		die(err)
	}
	verdict, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		die(fmt.Errorf("no verdict from the test: %w", err))
	}
	var ans wire.Answer
	ok := strings.TrimSpace(verdict) == "ok"
	ans.OK = &ok
	if !ok {
		ans.Error = "card rejected by the test encoder"
	}
	if err := json.NewEncoder(os.Stdout).Encode(ans); err != nil {
		die(err)
	}
}

func die(err error) {
	fmt.Fprintln(os.Stderr, "ledgerenc:", err)
	os.Exit(1)
}
