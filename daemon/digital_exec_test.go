//go:build unix

package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/digitalkeys"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// pinAnswer is the shell line of a vendor program that issues PIN 4711.
const pinAnswer = `echo "{\"ok\":true,\"keys\":[{\"id\":\"vendor-7\",\"type\":\"PinCode\",\"value\":\"4711\"}]}"`

// execMobile is the encoder section of a digital key test whose mobile key
// system is the shell script given, with one environment variable.
func execMobile(script, envName, envValue string) string {
	return fmt.Sprintf(`
[[encoders]]
name = "desk-1"
driver = "sim"
delay = "1ms"

[[encoders]]
name = "mobile"
driver = "exec"
timeout = "10s"
command = ["sh", "-c", %q]
env = { %s = %q }
`, script, envName, envValue)
}

// TestDigitalKeyExecDriver runs the lifecycle through a vendor program that
// keeps the same PIN when a key changes: an extension then only changes the
// dates of the key Mews already records.
func TestDigitalKeyExecDriver(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls.jsonl")
	encoders := execMobile(`cat >> "$CALLS"; echo >> "$CALLS"; `+pinAnswer, "CALLS", calls)
	clock := &tickingClock{}
	srv := mewstest.NewServer(mewstest.WithClock(clock.Now))
	defer srv.Close()
	h := startDigital(t, srv, filepath.Join(dir, "state"), "", encoders)
	res := mewstest.ReservationArriving
	before, _ := srv.Reservation(res)

	checkIn(srv, res)
	h.waitAction(res, 1, digitalkeys.Issue)
	clock.tick()
	later := before.ScheduledEndUtc.Add(48 * time.Hour)
	srv.UpdateReservation(res, func(r *mews.Reservation) { r.ScheduledEndUtc = later })
	h.waitAction(res, 2, digitalkeys.Update)
	toks := srv.AccessTokens()
	if len(toks) != 1 || toks[0].Value != "4711" || !toks[0].ValidityEndUtc.Equal(later) || !toks[0].IsActive {
		t.Errorf("Mews records %+v, want the one PIN 4711 until %v", toks, later)
	}
	if n := srv.RequestCount(mews.OpUpdateAccessTokens); n != 1 {
		t.Errorf("%d resourceAccessTokens/update requests, want 1", n)
	}
	setState(srv, res, mews.ReservationProcessed)
	h.waitAction(res, 3, digitalkeys.Revoke)
	if toks := activeTokens(srv, res); len(toks) != 0 {
		t.Errorf("Mews still records %+v", toks)
	}

	raw, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var in struct {
			Operation  string   `json:"operation"`
			Kind       string   `json:"kind"`
			LockIDs    []string `json:"lock_ids"`
			ValidUntil string   `json:"valid_until"`
		}
		if err := json.Unmarshal([]byte(line), &in); err != nil {
			t.Fatalf("program input %q: %v", line, err)
		}
		if in.Kind != "digital" || len(in.LockIDs) != 1 || in.LockIDs[0] != "102" {
			t.Errorf("program input %s, want a digital key for room 102", line)
		}
		ops = append(ops, in.Operation)
	}
	if got := strings.Join(ops, ","); got != "issue,update,revoke" {
		t.Errorf("program ran %s, want issue,update,revoke", got)
	}
}

// TestDigitalKeyEventBurstIsOneDecision: while the pipeline is busy (its
// vendor program waits for a gate the test opens), a burst of events for
// one reservation arrives; it is fetched once and decided once.
func TestDigitalKeyEventBurstIsOneDecision(t *testing.T) {
	dir := t.TempDir()
	gatePath := filepath.Join(dir, "gate")
	if err := syscall.Mkfifo(gatePath, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read and write: opening never blocks, and closing it lets any
	// program still waiting go.
	gate, err := os.OpenFile(gatePath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	encoders := execMobile(`cat > /dev/null; read -r _ < "$GATE"; `+pinAnswer, "GATE", gatePath)
	srv := mewstest.NewServer()
	defer srv.Close()
	h := startDigital(t, srv, filepath.Join(dir, "state"), "", encoders)
	// A check-in keeps the pipeline at the gate from the fetch of the
	// reservation on.
	busy := mewstest.ReservationArriving
	checkIn(srv, busy)
	h.waitFor("the check-in fetched", func(s *mewstest.Server) bool { return fetchedByID(s, busy) > 0 })
	res := mewstest.ReservationDeparted
	k := h.nothingToDo(res)
	ev := mews.Event{Type: mews.EventReservation, ID: res, State: string(mews.ReservationProcessed)}
	srv.PushEvents(slices.Repeat([]mews.Event{ev}, 20)...)
	// The WebSocket reader handles frames in order: once the command
	// intake fetches the command of the next frame, the burst is queued.
	const marker = "00000000-0000-4000-8000-00000000beef"
	srv.PushEvents(mews.Event{Type: mews.EventDeviceCommand, ID: marker, State: string(mews.CommandPending)})
	h.waitFor("the next frame handled", func(s *mewstest.Server) bool { return s.RequestCount(mews.OpCommandsByIDs) > 0 })
	if _, err := gate.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	h.waitAction(busy, 1, digitalkeys.Issue)
	h.waitNothingToDo(res, k+1)
	letItRun(h, srv)
	if n := fetchedByID(srv, res); n != 1 {
		t.Errorf("fetched %d times, want once", n)
	}
	if n := h.nothingToDo(res) - k; n != 1 {
		t.Errorf("decided %d times, want once", n)
	}
	for _, r := range srv.Requests() {
		if r.Op == mews.OpReservations && r.Body["ReservationIds"] == nil && r.Body["UpdatedUtc"] == nil {
			t.Errorf("reservations fetched without a filter: %v", r.Body)
		}
	}
}
