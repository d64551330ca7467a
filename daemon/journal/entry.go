package journal

import (
	"fmt"
	"time"
)

// Step is how far a command has come. The order of the constants is the
// order of the pipeline; StepIgnored stands apart.
type Step uint8

// Steps. A command is created at StepAccepted or StepIgnored; there is no
// persisted "seen" step because a command seen but not yet decided on needs
// no recovery: the catch-up poll after a restart sees it again. Nor is
// there an "encode finished" step of its own: FinishEncode stores the
// result and queues the report in one transaction.
const (
	_ Step = iota
	// StepAccepted: ours (a configured key cutter), queued for its encoder.
	StepAccepted
	// StepEncodeStarted is committed before the encoder is called. Found
	// after a restart it means the encode was interrupted and a card may
	// exist.
	StepEncodeStarted
	// StepReportQueued: the Mews state update (and the encoder's result, if
	// there was an encode) is in the outbox until Mews takes it. A restart
	// reports it; it never encodes again.
	StepReportQueued
	// StepReported is final: Mews accepted the update, or the command no
	// longer exists or is already final there.
	StepReported
	// StepIgnored is final: a command we leave untouched (a foreign device),
	// or an accepted one Mews closed before we started it.
	StepIgnored
)

var stepNames = [...]string{
	StepAccepted:      "accepted",
	StepEncodeStarted: "encode_started",
	StepReportQueued:  "report_queued",
	StepReported:      "reported",
	StepIgnored:       "ignored",
}

// Steps lists every step in pipeline order, for metrics that want a zero
// for the steps nothing is in.
func Steps() []Step {
	return []Step{StepAccepted, StepEncodeStarted, StepReportQueued, StepReported, StepIgnored}
}

func (s Step) String() string {
	if int(s) < len(stepNames) && stepNames[s] != "" {
		return stepNames[s]
	}
	return fmt.Sprintf("step(%d)", uint8(s))
}

// Final reports whether nothing more will happen to a command in this step.
func (s Step) Final() bool { return s == StepReported || s == StepIgnored }

// MarshalText stores steps by name, so the file stays readable with
// `bbolt get` and survives a reordering of the constants.
func (s Step) MarshalText() ([]byte, error) {
	if int(s) >= len(stepNames) || stepNames[s] == "" {
		return nil, fmt.Errorf("unknown journal step %d", uint8(s))
	}
	return []byte(stepNames[s]), nil
}

// UnmarshalText is the inverse of MarshalText.
func (s *Step) UnmarshalText(b []byte) error {
	for i, name := range stepNames {
		if name != "" && name == string(b) {
			*s = Step(i)
			return nil
		}
	}
	return fmt.Errorf("unknown journal step %q", b)
}

// Entry is everything the journal knows about one Mews device command.
type Entry struct {
	CommandID string `json:"command_id"`
	// Encoder is the configured encoder name; empty for ignored commands.
	Encoder string `json:"encoder,omitempty"`
	Device  string `json:"device,omitempty"`
	Step    Step   `json:"step"`
	// Seq orders commands by acceptance, for FIFO recovery per encoder.
	Seq uint64 `json:"seq"`

	AcceptedAt       time.Time `json:"accepted_at,omitzero"`
	EncodeStartedAt  time.Time `json:"encode_started_at,omitzero"`
	EncodeFinishedAt time.Time `json:"encode_finished_at,omitzero"`
	ReportQueuedAt   time.Time `json:"report_queued_at,omitzero"`
	// FinalAt is when the entry became final; compaction counts the
	// history from it.
	FinalAt time.Time `json:"final_at,omitzero"`

	// Reason says why a command was ignored or abandoned.
	Reason string  `json:"reason,omitempty"`
	Result *Result `json:"result,omitempty"`
	Report *Report `json:"report,omitempty"`

	// Attempts counts failed deliveries of Report; NextAttempt is when the
	// next one is due and LastError why the last one failed.
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`

	Final bool `json:"final,omitempty"`
}

// Result is what the encoder said.
type Result struct {
	OK bool `json:"ok"`
	// Note is for the receptionist, e.g. "2 keys for room 101".
	Note string `json:"note,omitempty"`
	Keys []Key  `json:"keys,omitempty"`
	// Error is the failure in receptionist words; empty when OK.
	Error string `json:"error,omitempty"`
	// MaybeCut is true when a failed encode may still have produced a card,
	// so nothing may retry it automatically.
	MaybeCut bool `json:"maybe_cut,omitempty"`
}

// Key is one credential the encoder produced. It mirrors keys.Key so that
// this package does not depend on the encoder layer.
type Key struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type,omitempty"`
	// Value is cleared when the command is reported (see MarkReported).
	Value string `json:"value,omitempty"`
}

// Report is the Mews state update waiting in the outbox.
type Report struct {
	// State is the Mews command state, e.g. "Processed", "Error", "Cancelled".
	State string `json:"state"`
	Notes string `json:"notes,omitempty"`
}
