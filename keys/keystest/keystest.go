// Package keystest is the conformance suite every encoder driver passes
// (SPEC §6). A driver's test supplies a Harness that opens its encoder in
// front of a fake lock system — an in-process simulator, a helper program,
// a loopback server — told to behave in one of a few ways; Run checks the
// encoder keeps the keys.Encoder contract against each.
package keystest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys"
)

// Behaviour is how the fake lock system behind an encoder answers every
// operation that reaches it.
type Behaviour int

// Behaviours a harness must be able to produce.
const (
	// OK answers success at once.
	OK Behaviour = iota
	// Fail refuses at once, with a message containing Harness.FailMessage,
	// having done nothing.
	Fail
	// Hang never answers; the encoder must give up when its ctx is done.
	Hang
	// Slow answers success after a short delay (tens of milliseconds), long
	// enough that unserialised calls would overlap.
	Slow
)

func (b Behaviour) String() string {
	switch b {
	case OK:
		return "OK"
	case Fail:
		return "Fail"
	case Hang:
		return "Hang"
	case Slow:
		return "Slow"
	}
	return "Behaviour(?)"
}

// Rig is an encoder with its fake lock system.
type Rig struct {
	Encoder keys.Encoder
	// Peak reports the largest number of operations the fake lock system
	// has had in progress at once so far: 0 if none reached it.
	Peak func() int
}

// Harness opens encoders for the suite.
type Harness struct {
	// Open returns a fresh encoder whose fake lock system behaves as b.
	// The suite closes the encoder; the harness cleans up its fake with
	// t.Cleanup, which runs after that Close.
	Open func(t *testing.T, b Behaviour) Rig
	// FailMessage is what the receptionist's message must contain when the
	// lock system refuses (Behaviour Fail).
	FailMessage string
	// Grace is how long after its ctx is done an operation may take to
	// return; zero means 2s, room for killing processes under -race.
	Grace time.Duration
}

// SampleRequest returns a plausible request of the given kind.
func SampleRequest(kind keys.Kind) keys.Request {
	now := time.Now().UTC().Truncate(time.Second)
	return keys.Request{
		IdempotencyKey:    "5f1a4b0e-0000-4000-8000-000000000001",
		Encoder:           "frontdesk",
		Kind:              kind,
		NewKey:            true,
		ReservationID:     "9a2c7e34-0000-4000-8000-000000000002",
		ReservationNumber: "4711",
		Rooms:             []string{"0101"},
		LockIDs:           []string{"101"},
		KeyCount:          2,
		ValidFrom:         now,
		ValidUntil:        now.Add(48 * time.Hour),
		Guest: keys.Guest{
			FirstName: "Zoë", LastName: "Novák",
			NormalizedFirstName: "Zoe", NormalizedLastName: "Novak",
			Email: "zoe@example.com", Phone: "+420 777 000 000",
		},
	}
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Grace == 0 {
		h.Grace = 2 * time.Second
	}
	s := suite{h: h}
	t.Run("IssueCard", s.issueCard)
	t.Run("IssueDigital", s.issueDigital)
	t.Run("Duplicate", s.duplicate)
	t.Run("Update", s.update)
	t.Run("Revoke", s.revoke)
	t.Run("Health", s.health)
	t.Run("Refusal", s.refusal)
	t.Run("Timeout", s.timeout)
	t.Run("Cancel", s.cancel)
	t.Run("CancelledBeforeStart", s.cancelledBeforeStart)
	t.Run("Serialised", s.serialised)
}

type suite struct{ h Harness }

// A generous bound for operations expected to succeed, so that a broken
// driver fails the test instead of hanging it.
const okTimeout = 10 * time.Second

func (s suite) open(t *testing.T, b Behaviour) Rig {
	t.Helper()
	rig := s.h.Open(t, b)
	t.Cleanup(func() {
		if err := rig.Encoder.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rig
}

func (s suite) issueCard(t *testing.T) {
	rig := s.open(t, OK)
	res := mustSucceed(t, "Issue", rig.Encoder.Issue, SampleRequest(keys.KindCard))
	if p := rig.Peak(); p != 1 {
		t.Errorf("lock system saw %d operations in progress at once, want 1", p)
	}
	t.Logf("note %q, %d keys", res.Note, len(res.Keys))
}

func (s suite) issueDigital(t *testing.T) {
	rig := s.open(t, OK)
	mustSucceed(t, "Issue", rig.Encoder.Issue, SampleRequest(keys.KindDigital))
}

func (s suite) duplicate(t *testing.T) {
	rig := s.open(t, OK)
	req := SampleRequest(keys.KindCard)
	req.NewKey = false
	req.KeyCount = 1
	mustSucceed(t, "Issue duplicate", rig.Encoder.Issue, req)
}

func (s suite) update(t *testing.T) {
	rig := s.open(t, OK)
	u, ok := rig.Encoder.(keys.Updater)
	if !ok {
		t.Skip("encoder does not implement keys.Updater: Update not tested")
	}
	req := SampleRequest(keys.KindDigital)
	req.Rooms, req.LockIDs = []string{"0102"}, []string{"102"}
	mustSucceed(t, "Update", u.Update, req)
}

func (s suite) revoke(t *testing.T) {
	rig := s.open(t, OK)
	r, ok := rig.Encoder.(keys.Revoker)
	if !ok {
		t.Skip("encoder does not implement keys.Revoker: Revoke not tested")
	}
	mustSucceed(t, "Revoke", r.Revoke, SampleRequest(keys.KindDigital))
}

func (s suite) health(t *testing.T) {
	rig := s.open(t, OK)
	hr, ok := rig.Encoder.(keys.HealthReporter)
	if !ok {
		t.Skip("encoder does not implement keys.HealthReporter: Health not tested")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan keys.Health, 1)
	go func() { done <- hr.Health(ctx) }()
	select {
	case h := <-done:
		if h.Detail == "" {
			t.Errorf("Health = %+v: Detail is empty, operators need words", h)
		}
	case <-time.After(time.Second + s.h.Grace):
		t.Fatal("Health did not return after its ctx was done")
	}
}

func (s suite) refusal(t *testing.T) {
	rig := s.open(t, Fail)
	ctx, cancel := context.WithTimeout(context.Background(), okTimeout)
	defer cancel()
	_, err := rig.Encoder.Issue(ctx, SampleRequest(keys.KindCard))
	var ke *keys.Error
	if !errors.As(err, &ke) {
		t.Fatalf("Issue error = %v (%T), want a *keys.Error", err, err)
	}
	if !strings.Contains(ke.Msg, s.h.FailMessage) {
		t.Errorf("Msg = %q, want it to contain %q", ke.Msg, s.h.FailMessage)
	}
	if ke.MaybeCut {
		t.Error("MaybeCut = true for a refusal by the lock system, want false")
	}
}

func (s suite) timeout(t *testing.T) {
	rig := s.open(t, Hang)
	const limit = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	err := s.returnsWithin(t, limit+s.h.Grace, func() error {
		_, err := rig.Encoder.Issue(ctx, SampleRequest(keys.KindCard))
		return err
	})
	if err == nil {
		t.Fatal("Issue succeeded against a lock system that never answers")
	}
	if took := time.Since(start); took < limit {
		t.Errorf("Issue gave up after %v, before its deadline of %v", took, limit)
	}
	if keys.Message(err) == "" {
		t.Error("timeout error has no message for the receptionist")
	}
}

func (s suite) cancel(t *testing.T) {
	rig := s.open(t, Hang)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The cancel may land before or after the request reaches the lock
	// system; Issue must return promptly either way.
	stop := time.AfterFunc(100*time.Millisecond, cancel)
	defer stop.Stop()
	err := s.returnsWithin(t, 100*time.Millisecond+s.h.Grace, func() error {
		_, err := rig.Encoder.Issue(ctx, SampleRequest(keys.KindCard))
		return err
	})
	if err == nil {
		t.Fatal("Issue succeeded although cancelled against a lock system that never answers")
	}
}

func (s suite) cancelledBeforeStart(t *testing.T) {
	rig := s.open(t, OK)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.returnsWithin(t, s.h.Grace, func() error {
		_, err := rig.Encoder.Issue(ctx, SampleRequest(keys.KindCard))
		return err
	})
	if err == nil {
		t.Fatal("Issue succeeded with a cancelled ctx")
	}
	if keys.MaybeCut(err) {
		t.Errorf("MaybeCut = true for an operation never started (%v)", err)
	}
	if p := rig.Peak(); p != 0 {
		t.Errorf("a cancelled operation reached the lock system (peak %d)", p)
	}
}

func (s suite) serialised(t *testing.T) {
	rig := s.open(t, Slow)
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), okTimeout)
			defer cancel()
			_, err := rig.Encoder.Issue(ctx, SampleRequest(keys.KindCard))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Issue: %v", err)
		}
	}
	if p := rig.Peak(); p != 1 {
		t.Errorf("lock system had %d operations in progress at once, want 1 (one card at a time)", p)
	}
}

func mustSucceed(t *testing.T, what string, op func(context.Context, keys.Request) (keys.Result, error), req keys.Request) keys.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), okTimeout)
	defer cancel()
	res, err := op(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for i, k := range res.Keys {
		switch k.Type {
		case keys.KeyRfidTag, keys.KeyPinCode, keys.KeyMobile:
		default:
			t.Errorf("%s: key %d has unknown type %q", what, i, k.Type)
		}
		if k.Value == "" && k.ID == "" {
			t.Errorf("%s: key %d has neither id nor value", what, i)
		}
	}
	return res
}

// returnsWithin runs op and fails the test if it has not returned after d.
// The goroutine is left to finish on its own then, since the driver is
// already broken.
func (s suite) returnsWithin(t *testing.T, d time.Duration, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("operation still running %v after start; it must return promptly once its ctx is done", d)
		return nil
	}
}

// Counter tracks operations in progress for fakes that run in the test
// process; its Peak method fits Rig.Peak.
type Counter struct {
	mu        sync.Mutex
	cur, peak int
}

// Enter records an operation starting; call the returned func when it ends.
func (c *Counter) Enter() (leave func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur++
	c.peak = max(c.peak, c.cur)
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cur--
	}
}

// Peak returns the most operations ever in progress at once.
func (c *Counter) Peak() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}
