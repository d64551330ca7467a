// Command encoder is a fake vendor encoder program for the exec driver's
// tests. It speaks the wire protocol and misbehaves on request: through
// ENCODER_BEHAVIOUR (ok, fail, hang, slow) or, per request, through the
// guest's last name (FAIL, FAILEXIT, HANG, CHILD, CRASH, KILLED, GARBAGE,
// EMPTY, NOOK, HUGE, ENV). In ENCODER_STATE_DIR it keeps the last request, a
// log of runs, an "overlap" marker if two ran at once and, for ENV, its
// environment.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

// childEnv marks the helper CHILD starts: this program again, which only
// sleeps (sleep(1) is not on Windows).
const childEnv = "ENCODER_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		time.Sleep(time.Hour)
		return
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var req wire.Request
	if err := json.Unmarshal(in, &req); err != nil {
		fail(err)
	}
	dir := os.Getenv("ENCODER_STATE_DIR")
	if dir != "" {
		leave := enter(dir, in)
		defer leave()
	}
	fmt.Fprintf(os.Stderr, "encoding for %s %s\n", req.Guest.FirstName, req.Guest.LastName)

	behaviour := strings.ToUpper(os.Getenv("ENCODER_BEHAVIOUR"))
	if behaviour == "" || behaviour == "OK" {
		behaviour = req.Guest.LastName
	}
	switch behaviour {
	case "FAIL":
		answer(wire.Failure("no card presented"))
	case "FAILEXIT":
		answer(wire.Failure("encoder jammed"))
		os.Exit(1)
	case "HANG":
		time.Sleep(time.Hour)
	case "CHILD":
		self, err := os.Executable()
		if err != nil {
			fail(err)
		}
		child := exec.Command(self)
		child.Env = append(os.Environ(), childEnv+"=1")
		if err := child.Start(); err != nil {
			fail(err)
		}
		pid := []byte(fmt.Sprint(child.Process.Pid))
		if err := os.WriteFile(filepath.Join(dir, "child.pid"), pid, 0o644); err != nil {
			fail(err)
		}
		time.Sleep(time.Hour)
	case "CRASH":
		fmt.Fprintln(os.Stderr, "segmentation fault (pretend)")
		os.Exit(3)
	case "KILLED":
		self, _ := os.FindProcess(os.Getpid())
		_ = self.Kill()
		time.Sleep(time.Hour)
	case "GARBAGE":
		fmt.Println("Card written OK.")
	case "ENV":
		vars := strings.Join(os.Environ(), "\n")
		if err := os.WriteFile(filepath.Join(dir, "env"), []byte(vars), 0o644); err != nil {
			fail(err)
		}
		success(req)
	case "EMPTY":
	case "NOOK":
		fmt.Println(`{"note":"done"}`)
	case "HUGE":
		fmt.Print(`{"ok":true,"note":"`, strings.Repeat("x", 2<<20), `"}`)
	case "SLOW":
		time.Sleep(30 * time.Millisecond)
		success(req)
	default:
		success(req)
	}
}

func success(req wire.Request) {
	res := keys.Result{Note: fmt.Sprintf("%d keys for room %s", req.KeyCount, strings.Join(req.Rooms, ","))}
	typ := keys.KeyRfidTag
	if req.Kind == keys.KindDigital {
		typ = keys.KeyPinCode
	}
	if req.Operation != wire.Revoke {
		for i := range req.KeyCount {
			res.Keys = append(res.Keys, keys.Key{ID: fmt.Sprint(i + 1), Type: typ, Value: fmt.Sprintf("%s-%d", req.Operation, i+1)})
		}
	}
	answer(wire.Success(res))
}

func answer(a wire.Answer) {
	if err := json.NewEncoder(os.Stdout).Encode(a); err != nil {
		fail(err)
	}
}

// enter records the run; a "busy" directory that already exists means
// another run is in progress.
func enter(dir string, req []byte) (leave func()) {
	busy := filepath.Join(dir, "busy")
	if err := os.Mkdir(busy, 0o755); err != nil {
		_ = os.WriteFile(filepath.Join(dir, "overlap"), nil, 0o644)
	}
	_ = os.WriteFile(filepath.Join(dir, "request.json"), req, 0o644)
	log, err := os.OpenFile(filepath.Join(dir, "runs"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintln(log, os.Getenv("ENCODER_TAG"))
		log.Close()
	}
	return func() { os.Remove(busy) }
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}
