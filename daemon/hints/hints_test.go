package hints

import (
	"slices"
	"testing"
	"time"
)

// signalled reports whether the set's ready signal is waiting, taking it.
func signalled(h *Set) bool {
	select {
	case <-h.ready:
		return true
	default:
		return false
	}
}

// TestHintSetSignalsOnlyWhatWaits: a ready signal always finds an id to
// take. An id announced again while it waits, or ids a take already
// emptied the set of, leave no signal behind that would make the next take
// empty (an empty take once fetched every reservation of the property).
func TestHintSetSignalsOnlyWhatWaits(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

	t.Run("same id twice", func(t *testing.T) {
		h := New()
		h.Add("a", at)
		if !signalled(h) {
			t.Fatal("no signal for a new id")
		}
		// The loop has taken the signal and not yet the id.
		h.Add("a", at.Add(time.Second))
		if signalled(h) {
			t.Error("signalled again for an id already waiting")
		}
		ids, seen := h.Take(10)
		if !slices.Equal(ids, []string{"a"}) || !seen["a"].Equal(at) {
			t.Errorf("took %v %v, want a once, announced first at %v", ids, seen, at)
		}
		if signalled(h) {
			t.Error("signalled with nothing left to take")
		}
		if ids, _ := h.Take(10); len(ids) != 0 {
			t.Errorf("second take %v, want nothing", ids)
		}
	})

	t.Run("a take empties the set", func(t *testing.T) {
		h := New()
		h.Add("a", at)
		h.Add("b", at) // its signal is the one already waiting
		if ids, _ := h.Take(10); !slices.Equal(ids, []string{"a", "b"}) {
			t.Fatalf("took %v, want a and b", ids)
		}
		if signalled(h) {
			t.Error("a signal outlived the ids it announced")
		}
	})

	t.Run("a partial take signals the rest", func(t *testing.T) {
		h := New()
		h.Add("a", at)
		h.Add("b", at)
		<-h.ready
		if ids, _ := h.Take(1); !slices.Equal(ids, []string{"a"}) {
			t.Fatalf("took %v, want a", ids)
		}
		if !signalled(h) {
			t.Fatal("b waits without a signal")
		}
		if ids, _ := h.Take(1); !slices.Equal(ids, []string{"b"}) {
			t.Errorf("took %v, want b", ids)
		}
		if signalled(h) {
			t.Error("signalled with nothing left to take")
		}
	})
}
