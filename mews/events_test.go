package mews_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name      string
		frame     string
		malformed bool
		wantIDs   []string
		skipped   []int // indexes of skipped entries
	}{
		{name: "one command", frame: `{"Events":[{"Type":"DeviceCommand","Id":"c1","State":"Pending"}]}`, wantIDs: []string{"c1"}},
		{
			name:    "every type in order",
			frame:   `{"Events":[{"Type":"Resource","Id":"a","State":"Dirty"},{"Type":"DeviceCommand","Id":"b","State":"Pending"},{"Type":"Reservation","Id":"c","State":"Started"},{"Type":"PriceUpdate","Id":"d"}]}`,
			wantIDs: []string{"a", "b", "c", "d"},
		},
		{name: "empty list", frame: `{"Events":[]}`, wantIDs: []string{}},
		{name: "unknown fields ignored", frame: `{"Events":[{"Type":"Resource","Id":"a","New":1}],"Extra":true}`, wantIDs: []string{"a"}},
		{
			name:    "unknown type skipped, others kept",
			frame:   `{"Events":[{"Type":"Invoice","Id":"x"},{"Type":"DeviceCommand","Id":"c1"}]}`,
			wantIDs: []string{"c1"}, skipped: []int{0},
		},
		{
			name:    "missing or empty Id skipped",
			frame:   `{"Events":[{"Type":"DeviceCommand","State":"Pending"},{"Type":"Resource","Id":""},{"Type":"Resource","Id":"r"}]}`,
			wantIDs: []string{"r"}, skipped: []int{0, 1},
		},
		{name: "missing Type skipped", frame: `{"Events":[{"Id":"c1"}]}`, wantIDs: []string{}, skipped: []int{0}},
		{
			name:    "entry not an object skipped",
			frame:   `{"Events":[42,"x",null,{"Type":"Resource","Id":"r"}]}`,
			wantIDs: []string{"r"}, skipped: []int{0, 1, 2},
		},
		{name: "wrong field type skipped", frame: `{"Events":[{"Type":"Resource","Id":7}]}`, wantIDs: []string{}, skipped: []int{0}},
		{name: "bad time kept", frame: `{"Events":[{"Type":"Reservation","Id":"r","StartUtc":"tomorrow","EndUtc":{}}]}`, wantIDs: []string{"r"}},
		{name: "not JSON", frame: `hello`, malformed: true},
		{name: "empty", frame: ``, malformed: true},
		{name: "array", frame: `[{"Type":"Resource","Id":"r"}]`, malformed: true},
		{name: "null", frame: `null`, malformed: true},
		{name: "no Events", frame: `{"Other":[]}`, malformed: true},
		{name: "Events null", frame: `{"Events":null}`, malformed: true},
		{name: "Events not a list", frame: `{"Events":{"Type":"Resource","Id":"r"}}`, malformed: true},
		{name: "truncated", frame: `{"Events":[{"Type":"Resource","Id":"r"}`, malformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, skipped, err := mews.DecodeFrame([]byte(tt.frame))
			if tt.malformed {
				if !errors.Is(err, mews.ErrMalformedFrame) {
					t.Fatalf("err = %v, want ErrMalformedFrame", err)
				}
				if events != nil || skipped != nil {
					t.Errorf("malformed frame returned events %v, skipped %v", events, skipped)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			ids := make([]string, 0, len(events))
			for _, ev := range events {
				ids = append(ids, ev.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("ids = %v, want %v", ids, tt.wantIDs)
			}
			var idx []int
			for _, s := range skipped {
				idx = append(idx, s.Index)
				if s.Reason == "" {
					t.Errorf("skipped entry %d without a reason", s.Index)
				}
			}
			if !slices.Equal(idx, tt.skipped) {
				t.Errorf("skipped = %v, want indexes %v", skipped, tt.skipped)
			}
		})
	}
}

func TestDecodeFrameFields(t *testing.T) {
	frame := `{"Events":[
		{"Type":"Reservation","Id":"r1","State":"Started","StartUtc":"2025-03-01T15:00:00+01:00","EndUtc":"2025-03-03T10:00:00Z","AssignedResourceId":"room"},
		{"Type":"PriceUpdate","Id":"p1","RateId":"rate","ResourceCategoryId":"cat","StartUtc":"2025-03-01T00:00:00-05:00"}
	]}`
	events, skipped, err := mews.DecodeFrame([]byte(frame))
	if err != nil || len(skipped) != 0 || len(events) != 2 {
		t.Fatalf("DecodeFrame = %v, %v, %v", events, skipped, err)
	}
	r, p := events[0], events[1]
	wantStart := time.Date(2025, 3, 1, 14, 0, 0, 0, time.UTC)
	if r.StartUtc == nil || !r.StartUtc.Equal(wantStart) || r.StartUtc.Location() != time.UTC {
		t.Errorf("StartUtc = %v, want %v in UTC", r.StartUtc, wantStart)
	}
	if r.EndUtc == nil || r.EndUtc.Location() != time.UTC {
		t.Errorf("EndUtc = %v, want UTC", r.EndUtc)
	}
	if r.Type != mews.EventReservation || r.State != "Started" || r.AssignedResourceID != "room" {
		t.Errorf("reservation event = %+v", r)
	}
	if p.Type != mews.EventPriceUpdate || p.RateID != "rate" || p.ResourceCategoryID != "cat" || p.EndUtc != nil {
		t.Errorf("price update event = %+v", p)
	}
	if p.StartUtc == nil || p.StartUtc.Location() != time.UTC || p.StartUtc.Hour() != 5 {
		t.Errorf("price update StartUtc = %v, want 05:00 UTC", p.StartUtc)
	}
}

func TestDecodeFrameBoundsReasons(t *testing.T) {
	long := strings.Repeat("Ω", 10_000)
	frame := `{"Events":[{"Type":"` + long + `","Id":"x"},{"Type":"Reservation","Id":"r","State":["` + long + `"]}]}`
	_, skipped, err := mews.DecodeFrame([]byte(frame))
	if err != nil || len(skipped) != 2 {
		t.Fatalf("DecodeFrame: skipped %v, err %v", skipped, err)
	}
	for _, s := range skipped {
		if len(s.Reason) > 200 {
			t.Errorf("reason of entry %d is %d bytes, want it bounded", s.Index, len(s.Reason))
		}
	}
	_, _, err = mews.DecodeFrame([]byte(`{"Events":"` + long))
	if !errors.Is(err, mews.ErrMalformedFrame) {
		t.Fatalf("err = %v, want ErrMalformedFrame", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("malformed frame error unbounded: %d bytes", len(err.Error()))
	}
}
