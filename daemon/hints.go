package daemon

import (
	"sync"
	"time"
)

// hintSet collects command ids announced by WebSocket events until the intake
// loop takes them. It never blocks the WebSocket reader and never drops an
// id; an id announced twice before it is taken is fetched once.
type hintSet struct {
	mu    sync.Mutex
	ids   []string
	seen  map[string]time.Time // id -> when first announced
	ready chan struct{}
}

func newHintSet() *hintSet {
	return &hintSet{seen: map[string]time.Time{}, ready: make(chan struct{}, 1)}
}

func (h *hintSet) add(id string, at time.Time) {
	h.mu.Lock()
	if _, dup := h.seen[id]; !dup {
		h.seen[id] = at
		h.ids = append(h.ids, id)
	}
	h.mu.Unlock()
	select {
	case h.ready <- struct{}{}:
	default:
	}
}

// take returns up to max ids in arrival order with when each was announced.
func (h *hintSet) take(max int) ([]string, map[string]time.Time) {
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
	}
	return ids, at
}
