// Package keys defines what a key encoder is: the small interface every
// lock-system driver implements, the request and result types, and the
// registry through which drivers make themselves known by name.
//
// Drivers live in sub-packages (keys/sim, keys/exec, keys/httpenc, keys/fias,
// keys/salto) and register in init(); keys/all imports every one of them, and the
// binary, the example-config tests and the demo import keys/all.
//
// Writing a driver:
//  1. A package keys/<name> with a Config struct: defaults preset, decoded
//     strictly from the encoder's TOML table (unknown keys are errors with
//     their line), and a Validate method.
//  2. A type implementing Encoder; Updater, Revoker and HealthReporter only
//     if it can; `var _ keys.Encoder = (*Encoder)(nil)` says so at compile
//     time. Errors are *Error (Failf, or the helpers in keys/wire): they
//     carry the receptionist's note and say whether a card may have been
//     cut, so nothing retries into a second card.
//  3. func init() { keys.Register("<name>", keys.DriverOf(DefaultConfig, New)) }.
//  4. One line in keys/all/all.go (its test fails until it is there).
//  5. A simulator in keys/<name>/<name>test when the driver speaks a
//     protocol, and keystest.Run against it in the driver's tests.
//  6. An annotated configs/<name>.toml (parsed by a test) and a section in
//     the README.
package keys

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind says what sort of key is asked for.
type Kind string

// Key kinds.
const (
	KindCard    Kind = "card"
	KindDigital Kind = "digital"
)

// Request describes one key operation. The same type serves Issue, Update and
// Revoke; each driver reads the fields it needs.
type Request struct {
	// IdempotencyKey identifies the operation (the Mews command id for cards).
	// A driver that can pass it on to the lock system should.
	IdempotencyKey string
	// Encoder is the configured name of the encoder that runs the operation.
	Encoder string
	Kind    Kind
	// NewKey is true when earlier keys of the room should stop working
	// (FIAS KT=N); false asks for a duplicate card (KT=D).
	NewKey            bool
	ReservationID     string
	ReservationNumber string
	// Rooms are lock-system room ids (Mews lock ids mapped through [rooms]);
	// LockIDs are the ids as Mews sent them.
	Rooms      []string
	LockIDs    []string
	KeyCount   int
	ValidFrom  time.Time
	ValidUntil time.Time
	Guest      Guest
	// APIURL and CutterData are the command's ApiUrl and KeyCutterData, for
	// drivers that are configured per device in Mews.
	APIURL     string
	CutterData string
	// KeyCutterID is the command's KeyCutterId, the key cutter's identifier
	// in Mews, which names the encoder in lock systems such as Salto.
	KeyCutterID string
	// Companion is set on the digital key of a guest travelling with the
	// reservation's main guest: CompanionshipID (Mews's id of the
	// companion on the reservation) tells it from the main guest's key
	// and the other companions', MainReservationNumber is the main guest's
	// reservation number. An operation without Companion concerns the
	// main guest's key.
	Companion             bool
	CompanionshipID       string
	MainReservationNumber string
	// Bed names the bed (as Mews does) when the reservation is assigned
	// one: the key opens its room, which Rooms and LockIDs name.
	Bed string
}

// Guest is the key holder. It is personal data: log it at debug level only.
type Guest struct {
	FirstName           string
	LastName            string
	NormalizedFirstName string
	NormalizedLastName  string
	Email               string
	Phone               string
}

// KeyType is the kind of credential a driver returns.
type KeyType string

// Key types; RfidTag and PinCode match Mews resource access token types.
const (
	KeyRfidTag KeyType = "RfidTag"
	KeyPinCode KeyType = "PinCode"
	KeyMobile  KeyType = "Mobile"
)

// Key is one credential produced by the lock system.
type Key struct {
	ID    string
	Type  KeyType
	Value string
}

// Result is the outcome of a successful operation.
type Result struct {
	// Note is a short text for the receptionist, e.g. "2 keys for room 101".
	// Empty lets the caller compose one.
	Note string
	Keys []Key
}

// Encoder is the one capability every driver has: cutting keys. Issue must
// honour ctx: when it is done, return promptly. Calls on one Encoder may come
// from several goroutines; a driver serialises what its hardware needs
// serialised.
type Encoder interface {
	Issue(ctx context.Context, req Request) (Result, error)
	// Close releases connections and processes. It is called once.
	Close() error
}

// Updater is implemented by encoders that can change an issued digital key
// (new room or validity) in place.
type Updater interface {
	Update(ctx context.Context, req Request) (Result, error)
}

// Revoker is implemented by encoders that can invalidate the keys of a
// reservation.
type Revoker interface {
	Revoke(ctx context.Context, req Request) (Result, error)
}

// HealthReporter is implemented by encoders with something worth watching,
// such as a link to a lock system.
type HealthReporter interface {
	Health(ctx context.Context) Health
}

// Health is an encoder's own view of whether it can work now.
type Health struct {
	OK bool
	// Detail says what is wrong (or right) in operator words, e.g.
	// "lock system link down".
	Detail string
	// Since is when the current state began; zero if unknown.
	Since time.Time
}

// ErrUnsupported is returned for an operation the driver does not offer.
var ErrUnsupported = errors.New("operation not supported by this encoder")

// Error is a failed key operation. Msg is written for the receptionist and
// goes into the Mews command note.
type Error struct {
	Msg string
	// MaybeCut is true when the operation may have taken effect despite the
	// error (e.g. the link dropped after the request was sent). Nothing may
	// retry such an operation automatically: that could cut a second card.
	MaybeCut bool
	Err      error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Failf returns an Error that certainly did not cut a key.
func Failf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// Message returns the receptionist-facing text of err.
func Message(err error) string {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Msg
	}
	return err.Error()
}

// MaybeCut reports whether err leaves open that a key was produced. Errors
// that are not *Error are treated as uncertain, the safe assumption.
func MaybeCut(err error) bool {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.MaybeCut
	}
	return true
}
