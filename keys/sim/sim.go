// Package sim is a simulated encoder for the demo and for tests: it waits a
// configurable delay, as a receptionist presenting a card would, then
// succeeds or fails at a configurable rate. It registers as "sim".
package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
)

// Log field names.
const (
	fieldOp          = "op"
	fieldReservation = "reservation"
	fieldRooms       = "rooms"
	fieldGuest       = "guest"
)

// maxCalls bounds the record of calls, which a long demo would grow.
const maxCalls = 1000

func init() { keys.Register("sim", keys.DriverOf(defaultConfig, New)) }

func defaultConfig() Config {
	return Config{Delay: keys.Duration(300 * time.Millisecond), FailMessage: DefaultFailMessage}
}

// Config is the encoder's TOML table.
type Config struct {
	// Delay is how long each operation takes.
	Delay keys.Duration `toml:"delay"`
	// FailureRate is the share of operations that fail, from 0 to 1.
	FailureRate float64 `toml:"failure_rate"`
	// Seed makes the failures reproducible; 0 picks a random seed.
	Seed uint64 `toml:"seed"`
	// FailMessage is the receptionist's note for a simulated failure.
	FailMessage string `toml:"fail_message"`
}

// DefaultFailMessage is the note of a simulated failure unless configured.
const DefaultFailMessage = "no card presented (simulated failure)"

// Validate checks the ranges TOML cannot express.
func (c *Config) Validate() error {
	if c.FailureRate < 0 || c.FailureRate > 1 {
		return fmt.Errorf("failure_rate: must be between 0 and 1, not %v", c.FailureRate)
	}
	if strings.TrimSpace(c.FailMessage) == "" {
		return errors.New("fail_message: must not be empty")
	}
	return nil
}

// Op names an operation in a recorded Call.
type Op string

// Operations.
const (
	OpIssue  Op = "issue"
	OpUpdate Op = "update"
	OpRevoke Op = "revoke"
)

// Call is one operation as the encoder saw it, for tests.
type Call struct {
	Op  Op
	Req keys.Request
	// Start is when the operation got the station to itself, End when it
	// finished, as places (1, 2, ...) in the order of this encoder's starts
	// and ends: two clock readings taken quickly can be equal (on Windows
	// often), two places cannot. Both are zero for an operation that never
	// got the station.
	Start, End uint64
	Err        error
}

// Encoder is a simulated encoder station.
type Encoder struct {
	cfg Config
	log zerolog.Logger
	// station admits one operation at a time, like a card encoder; a
	// channel rather than a mutex so that waiting honours ctx.
	station chan struct{}

	// order hands out the places of Call.Start and Call.End.
	order atomic.Uint64

	mu     sync.Mutex
	rng    *rand.Rand
	serial uint64
	calls  []Call
	since  time.Time
}

var (
	_ keys.Encoder        = (*Encoder)(nil)
	_ keys.Updater        = (*Encoder)(nil)
	_ keys.Revoker        = (*Encoder)(nil)
	_ keys.HealthReporter = (*Encoder)(nil)
)

// New returns a simulated encoder. Tests may call it directly instead of
// going through the registry.
func New(cfg Config, env keys.Env) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Encoder{
		cfg:     cfg,
		log:     env.Logger,
		station: make(chan struct{}, 1),
		rng:     rand.New(rand.NewPCG(seed, seed)),
		serial:  seed % 1_000_000,
		since:   time.Now(),
	}, nil
}

// Issue simulates cutting keys.
func (e *Encoder) Issue(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, OpIssue, req)
}

// Update simulates changing a digital key.
func (e *Encoder) Update(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, OpUpdate, req)
}

// Revoke simulates invalidating the keys of a reservation.
func (e *Encoder) Revoke(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, OpRevoke, req)
}

// Health is always good: there is no link to lose.
func (e *Encoder) Health(context.Context) keys.Health {
	return keys.Health{OK: true, Detail: "simulated encoder ready", Since: e.since}
}

// Close has nothing to release.
func (e *Encoder) Close() error { return nil }

// Calls returns the most recent operations (up to 1000), oldest first.
func (e *Encoder) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Call(nil), e.calls...)
}

func (e *Encoder) run(ctx context.Context, op Op, req keys.Request) (res keys.Result, err error) {
	call := Call{Op: op, Req: req}
	defer func() {
		call.Err = err
		e.mu.Lock()
		if len(e.calls) == maxCalls {
			e.calls = slices.Delete(e.calls, 0, 1)
		}
		e.calls = append(e.calls, call)
		e.mu.Unlock()
	}()
	select {
	case e.station <- struct{}{}:
	case <-ctx.Done():
		return keys.Result{}, notCut(ctx, "waiting for the encoder")
	}
	defer func() { <-e.station }()
	if err := ctx.Err(); err != nil {
		return keys.Result{}, notCut(ctx, "waiting for the encoder")
	}
	call.Start = e.order.Add(1)
	defer func() { call.End = e.order.Add(1) }()

	e.log.Debug().Str(fieldOp, string(op)).Str(fieldReservation, req.ReservationNumber).
		Strs(fieldRooms, req.Rooms).Str(fieldGuest, req.Guest.LastName).Msg("simulating key operation")
	t := time.NewTimer(e.cfg.Delay.D())
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		// The simulated card is only written at the end of the delay.
		return keys.Result{}, notCut(ctx, "before the key was written")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rng.Float64() < e.cfg.FailureRate {
		return keys.Result{}, &keys.Error{Msg: e.cfg.FailMessage}
	}
	return e.result(op, req), nil
}

// result must be called with e.mu held.
func (e *Encoder) result(op Op, req keys.Request) keys.Result {
	room := strings.Join(req.Rooms, ", ")
	if op == OpRevoke {
		return keys.Result{Note: "keys revoked for reservation " + req.ReservationNumber}
	}
	n := max(req.KeyCount, 1)
	var res keys.Result
	for range n {
		e.serial++
		if req.Kind == keys.KindDigital {
			res.Keys = append(res.Keys, keys.Key{
				ID:    fmt.Sprintf("sim-%d", e.serial),
				Type:  keys.KeyPinCode,
				Value: fmt.Sprintf("%06d", e.rng.IntN(1_000_000)),
			})
			continue
		}
		res.Keys = append(res.Keys, keys.Key{
			ID:    fmt.Sprintf("sim-%d", e.serial),
			Type:  keys.KeyRfidTag,
			Value: fmt.Sprintf("%08X", e.rng.Uint32()),
		})
	}
	noun := "keys"
	if n == 1 {
		noun = "key"
	}
	verb := "issued"
	if op == OpUpdate {
		verb = "updated"
	}
	res.Note = fmt.Sprintf("%d %s %s for room %s (simulated)", n, noun, verb, room)
	return res
}

func notCut(ctx context.Context, when string) *keys.Error {
	msg := "cancelled " + when
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = "timed out " + when
	}
	return &keys.Error{Msg: msg + "; no key was made", Err: ctx.Err()}
}
