// Package hints collects the ids WebSocket events announce until the loop
// that fetches them comes round.
package hints

import (
	"sync"
	"time"
)

// Set collects ids announced by WebSocket events (commands, reservations,
// rooms) until a loop takes them. It never blocks the WebSocket reader and
// never drops an id; an id announced twice before it is taken is fetched
// once. A ready signal waits exactly while ids do: the signal is sent and
// taken back under the lock, so a take after a signal finds an id (an empty
// take once became a fetch of every reservation of the property).
type Set struct {
	mu    sync.Mutex
	ids   []string
	seen  map[string]time.Time // id -> when first announced
	ready chan struct{}
}

// New returns an empty set.
func New() *Set {
	return &Set{seen: map[string]time.Time{}, ready: make(chan struct{}, 1)}
}

// Ready receives a value while ids wait to be taken.
func (h *Set) Ready() <-chan struct{} { return h.ready }

// Add announces id, first heard of at at.
func (h *Set) Add(id string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.seen[id]; dup {
		return // its signal is waiting or being handled
	}
	h.seen[id] = at
	h.ids = append(h.ids, id)
	select {
	case h.ready <- struct{}{}:
	default:
	}
}

// Take returns up to max ids in arrival order with when each was announced.
// After a ready signal it returns at least one id; a caller that gets none
// all the same does nothing with them.
func (h *Set) Take(max int) ([]string, map[string]time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := min(len(h.ids), max)
	ids := h.ids[:n:n]
	h.ids = h.ids[n:]
	at := make(map[string]time.Time, n)
	for _, id := range ids {
		at[id] = h.seen[id]
		delete(h.seen, id)
	}
	if len(h.ids) > 0 {
		select {
		case h.ready <- struct{}{}:
		default:
		}
	} else {
		// A signal sent for ids this take returns would find nothing.
		select {
		case <-h.ready:
		default:
		}
	}
	return ids, at
}
