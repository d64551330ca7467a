package journal

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeStart: whatever a slot holds after a crash or a disk fault,
// reading it never panics, and what it reads as a record is one that
// writes and reads back the same.
func FuzzDecodeStart(f *testing.F) {
	at := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	whole, err := encodeStart(startRecord{at: at, id: "8f2b6a1e-4c3d-4e5f-9a0b-1c2d3e4f5a6b", encoder: "desk-1", device: "Front desk"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(whole)
	f.Add(whole[:100])                      // torn
	f.Add(make([]byte, startSlotSize))      // empty
	f.Add(append([]byte(startMagic), 0xff)) // magic, nothing else
	lying := bytes.Clone(whole)
	lying[16] = 0xf0 // a length beyond the slot
	f.Add(lying)
	f.Fuzz(func(t *testing.T, data []byte) {
		slot := make([]byte, startSlotSize)
		copy(slot, data)
		r, ok := decodeStart(slot)
		if !ok {
			return
		}
		if r.id == "" {
			t.Fatalf("a record without a command id: %+v", r)
		}
		again, err := encodeStart(r)
		if err != nil {
			t.Fatalf("%+v read but does not write: %v", r, err)
		}
		if back, ok := decodeStart(again); !ok || back != r {
			t.Fatalf("%+v wrote and read back as %+v (%v)", r, back, ok)
		}
	})
}
