// Package status serves the optional health and metrics endpoint
// (status_listen) and reads it back for `mews-keyd status`.
package status

import (
	"fmt"
	"time"
)

// Source is implemented by the daemon: a consistent picture of its health.
type Source interface {
	Health() Snapshot
}

// Snapshot is the body of /healthz. The daemon fills the inputs; the server
// fills the fields marked "set by the server".
type Snapshot struct {
	Status      string          `json:"status"`            // set by the server: "ok" or "degraded"
	Reasons     []string        `json:"reasons,omitempty"` // set by the server: why degraded
	Version     string          `json:"version,omitempty"`
	WebSocket   WebSocketHealth `json:"websocket"`
	Encoders    []EncoderHealth `json:"encoders"`
	OutboxDepth int             `json:"outbox_depth"` // Mews state updates not yet accepted
	// OutboxRefused counts the queued updates Mews refused (400/403) for
	// commands it still shows active; they are retried, never dropped.
	OutboxRefused int           `json:"outbox_refused"`
	Journal       JournalHealth `json:"journal"`
	// ReloadRejected is why the last reload of the configuration file was
	// refused, until a reload succeeds: the file on disk is not the one
	// running.
	ReloadRejected string `json:"reload_rejected,omitempty"`
}

// Values of Snapshot.Status.
const (
	StatusOK       = "ok"
	StatusDegraded = "degraded"
)

// WebSocketHealth describes the connection to Mews.
type WebSocketHealth struct {
	Connected bool `json:"connected"`
	// Since is when the connection was last made or lost.
	Since time.Time `json:"since,omitzero"`
	// LastEvent is when the last event arrived; zero before the first.
	LastEvent time.Time `json:"last_event,omitzero"`
	// LastEventAgeSeconds is set by the server from LastEvent; -1 before
	// the first event.
	LastEventAgeSeconds float64 `json:"last_event_age_seconds"`
}

// EncoderHealth describes one configured encoder.
type EncoderHealth struct {
	Name   string    `json:"name"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail,omitempty"` // e.g. "lock system offline"
	Since  time.Time `json:"since,omitzero"`   // when OK last changed
	// Queue counts the key commands waiting for this encoder, the one
	// being encoded included.
	Queue int `json:"queue"`
}

// JournalHealth describes the local command journal in state_dir.
type JournalHealth struct {
	OK           bool   `json:"ok"`
	Detail       string `json:"detail,omitempty"`
	OpenCommands int    `json:"open_commands"` // commands not yet in a final state
}

// complete sets the fields that are derived, not reported.
func (s *Snapshot) complete(now time.Time) {
	s.Reasons = s.degradedReasons()
	s.Status = StatusOK
	if len(s.Reasons) > 0 {
		s.Status = StatusDegraded
	}
	s.WebSocket.LastEventAgeSeconds = -1
	if !s.WebSocket.LastEvent.IsZero() {
		s.WebSocket.LastEventAgeSeconds = now.Sub(s.WebSocket.LastEvent).Seconds()
	}
}

// degradedReasons lists, in words, what keeps keys from being cut now, or
// from being cut as the configuration file says.
func (s *Snapshot) degradedReasons() []string {
	var reasons []string
	if !s.WebSocket.Connected {
		reasons = append(reasons, "not connected to Mews")
	}
	for _, e := range s.Encoders {
		if !e.OK {
			reasons = append(reasons, "encoder "+e.Name+": "+orUnknown(e.Detail))
		}
	}
	if !s.Journal.OK {
		reasons = append(reasons, "journal: "+orUnknown(s.Journal.Detail))
	}
	if s.OutboxRefused > 0 {
		reasons = append(reasons, fmt.Sprintf("Mews refuses %d state update(s) for commands still active (see the log)", s.OutboxRefused))
	}
	if s.ReloadRejected != "" {
		reasons = append(reasons, "configuration reload rejected, the previous configuration runs on: "+s.ReloadRejected)
	}
	return reasons
}

func orUnknown(detail string) string {
	if detail == "" {
		return "failing"
	}
	return detail
}
