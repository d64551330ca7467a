package mews

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// EventType names a WebSocket event.
type EventType string

// The four WebSocket event types Mews sends.
const (
	EventDeviceCommand EventType = "DeviceCommand"
	EventReservation   EventType = "Reservation"
	EventResource      EventType = "Resource"
	EventPriceUpdate   EventType = "PriceUpdate"
)

// Event is one entry of a WebSocket message. Events are hints: they carry
// ids and states, the data is fetched through operations. Fields that do not
// belong to Type are zero.
type Event struct {
	Type  EventType `json:"Type"`
	ID    string    `json:"Id"`
	State string    `json:"State,omitempty"`

	// Reservation and PriceUpdate events.
	StartUtc *time.Time `json:"StartUtc,omitempty"`
	EndUtc   *time.Time `json:"EndUtc,omitempty"`
	// Reservation events.
	AssignedResourceID string `json:"AssignedResourceId,omitempty"`
	// PriceUpdate events.
	RateID             string `json:"RateId,omitempty"`
	ResourceCategoryID string `json:"ResourceCategoryId,omitempty"`
}

// ErrMalformedFrame is returned when a frame is not a {"Events":[...]} object.
var ErrMalformedFrame = errors.New("malformed event frame")

// SkippedEvent describes an entry of a frame that could not be used.
type SkippedEvent struct {
	Index  int
	Reason string
}

// DecodeFrame decodes one WebSocket text frame. Entries of unknown type or
// without an Id are skipped and listed, so one bad entry never costs the
// others; a frame that is not an Events object at all is ErrMalformedFrame.
// A time field that does not parse is left nil, the entry kept: an event
// is a hint, and its Id is what matters.
//
// A well-formed frame, the common case, is decoded in one pass; only a
// frame with an entry of the wrong shape is taken apart entry by entry.
func DecodeFrame(data []byte) ([]Event, []SkippedEvent, error) {
	var msg struct {
		Events []wireEvent `json:"Events"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return decodeEntries(data)
		}
		return nil, nil, fmt.Errorf("%w: %s", ErrMalformedFrame, shorten(err.Error()))
	}
	if msg.Events == nil {
		return nil, nil, fmt.Errorf("%w: no Events array", ErrMalformedFrame)
	}
	events := make([]Event, 0, len(msg.Events))
	var skipped []SkippedEvent
	for i := range msg.Events {
		ev, reason := msg.Events[i].event()
		if reason != "" {
			skipped = append(skipped, SkippedEvent{Index: i, Reason: reason})
			continue
		}
		events = append(events, ev)
	}
	return events, skipped, nil
}

// decodeEntries decodes a frame entry by entry, so that an entry of the
// wrong shape (an Id that is a number) costs only itself.
func decodeEntries(data []byte) ([]Event, []SkippedEvent, error) {
	var msg struct {
		Events []json.RawMessage `json:"Events"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrMalformedFrame, shorten(err.Error()))
	}
	if msg.Events == nil {
		return nil, nil, fmt.Errorf("%w: no Events array", ErrMalformedFrame)
	}
	events := make([]Event, 0, len(msg.Events))
	var skipped []SkippedEvent
	for i, raw := range msg.Events {
		var entry wireEvent
		if err := json.Unmarshal(raw, &entry); err != nil {
			skipped = append(skipped, SkippedEvent{Index: i, Reason: shorten(err.Error())})
			continue
		}
		ev, reason := entry.event()
		if reason != "" {
			skipped = append(skipped, SkippedEvent{Index: i, Reason: reason})
			continue
		}
		events = append(events, ev)
	}
	return events, skipped, nil
}

// wireEvent is an entry as it arrives: its times never fail the entry.
type wireEvent struct {
	Event
	StartUtc, EndUtc lenientTime
}

// event returns the entry as an Event, or why it cannot be used.
func (w *wireEvent) event() (Event, string) {
	ev := w.Event
	ev.StartUtc, ev.EndUtc = w.StartUtc.t, w.EndUtc.t
	switch {
	case !ev.Type.known():
		return Event{}, shorten(fmt.Sprintf("unknown event type %q", ev.Type))
	case ev.ID == "":
		return Event{}, "event without Id"
	}
	return ev, ""
}

// lenientTime is an event's time field in UTC: nil when absent, null or
// not a time.
type lenientTime struct{ t *time.Time }

func (l *lenientTime) UnmarshalJSON(b []byte) error {
	var t *time.Time
	if json.Unmarshal(b, &t) == nil {
		l.t = utcPtr(t)
	}
	return nil
}

func (t EventType) known() bool {
	switch t {
	case EventDeviceCommand, EventReservation, EventResource, EventPriceUpdate:
		return true
	}
	return false
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// maxReason bounds reasons and errors built from frame content (a bad time
// value or type name is echoed by encoding/json), so that a hostile frame
// cannot blow up a log line.
const maxReason = 120

func shorten(s string) string {
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
