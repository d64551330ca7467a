package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// entryStart is how every stored Entry begins: its first field.
var entryStart = []byte(`{"command_id":`)

// Salvage reads what it can of a journal file bbolt refused (the one Open
// moved aside) and returns, per command, the most advanced entry found.
// Entries are JSON values inside bbolt pages, so a plain scan for their
// start finds every one whose bytes survived, whatever happened to the
// B+tree around them. A stale copy in a freed page may show an earlier
// step than the truth; the latest step seen wins, and final steps win
// over all, so a salvaged entry never claims less progress than a copy
// that says more.
func Salvage(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("salvage %s: %w", path, err)
	}
	best := map[string]Entry{}
	var order []string
	for i := bytes.Index(data, entryStart); i >= 0; {
		var e Entry
		if json.NewDecoder(bytes.NewReader(data[i:])).Decode(&e) == nil && e.CommandID != "" && e.Step != 0 {
			prev, seen := best[e.CommandID]
			if !seen {
				order = append(order, e.CommandID)
			}
			if !seen || rank(e.Step) > rank(prev.Step) {
				best[e.CommandID] = e
			}
		}
		next := bytes.Index(data[i+1:], entryStart)
		if next < 0 {
			break
		}
		i += 1 + next
	}
	out := make([]Entry, 0, len(order))
	for _, id := range order {
		out = append(out, best[id])
	}
	return out, nil
}

// rank orders steps by how much they say happened.
func rank(s Step) int {
	if s.Final() {
		return int(StepReported) + 1
	}
	return int(s)
}
