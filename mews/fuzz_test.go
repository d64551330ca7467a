package mews_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// FuzzDecodeFrame checks what the reader relies on for any frame a peer may
// send: no panic, every returned event has a known type and an Id, and the
// one-pass decoding says what decoding entry by entry says.
// Seeds beyond these live in testdata/fuzz/FuzzDecodeFrame.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"Events":[{"Type":"DeviceCommand","Id":"c1","State":"Pending"}]}`))
	f.Add([]byte(`{"Events":[{"Type":"Reservation","Id":"r","StartUtc":"2025-03-01T15:00:00+01:00"},{"Type":"Nope","Id":"x"}]}`))
	f.Add([]byte(`{"Events":null}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, skipped, err := mews.DecodeFrame(data)
		if err != nil && (events != nil || skipped != nil) {
			t.Fatalf("error %v together with results", err)
		}
		slowEvents, slowSkipped, slowErr := mews.DecodeEntries(data)
		if (err == nil) != (slowErr == nil) || !reflect.DeepEqual(events, slowEvents) || len(skipped) != len(slowSkipped) {
			t.Fatalf("one pass: %v %v %v; entry by entry: %v %v %v", events, skipped, err, slowEvents, slowSkipped, slowErr)
		}
		for i, ev := range events {
			switch ev.Type {
			case mews.EventDeviceCommand, mews.EventReservation, mews.EventResource, mews.EventPriceUpdate:
			default:
				t.Fatalf("event %d has unknown type %q", i, ev.Type)
			}
			if ev.ID == "" {
				t.Fatalf("event %d has no Id", i)
			}
			for _, ts := range []*time.Time{ev.StartUtc, ev.EndUtc} {
				if ts != nil && ts.Location() != time.UTC {
					t.Fatalf("event %d time %v not in UTC", i, ts)
				}
			}
		}
	})
}
