package sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/keystest"
	"github.com/mews-keyd/mews-keyd/keys/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	keystest.Run(t, keystest.Harness{
		FailMessage: "card jammed",
		Open: func(t *testing.T, b keystest.Behaviour) keystest.Rig {
			cfg := sim.Config{FailMessage: "card jammed", Seed: 1}
			switch b {
			case keystest.Fail:
				cfg.FailureRate = 1
			case keystest.Hang:
				cfg.Delay = keys.Duration(time.Hour)
			case keystest.Slow:
				cfg.Delay = keys.Duration(30 * time.Millisecond)
			}
			enc, err := sim.New(cfg, keys.Env{Name: "frontdesk"})
			if err != nil {
				t.Fatal(err)
			}
			return keystest.Rig{Encoder: enc, Peak: func() int { return peak(enc.Calls()) }}
		},
	})
}

// peak counts the most calls whose time at the station overlapped.
func peak(calls []sim.Call) int {
	most := 0
	for _, c := range calls {
		if c.Start == 0 {
			continue
		}
		n := 0
		for _, d := range calls {
			if d.Start != 0 && d.Start <= c.Start && d.End > c.Start {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

func TestRegisteredConfig(t *testing.T) {
	d, ok := keys.Lookup("sim")
	if !ok {
		t.Fatal(`driver "sim" not registered`)
	}
	cfg := d.NewConfig()
	if _, err := toml.Decode("delay = \"5ms\"\nfailure_rate = 0.5\nseed = 7\nfail_message = \"x\"", cfg); err != nil {
		t.Fatal(err)
	}
	want := sim.Config{Delay: keys.Duration(5 * time.Millisecond), FailureRate: 0.5, Seed: 7, FailMessage: "x"}
	if got := *cfg.(*sim.Config); got != want {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	enc, err := d.Open(cfg, keys.Env{Name: "frontdesk"})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	d, _ := keys.Lookup("sim")
	cfg := d.NewConfig().(*sim.Config)
	if cfg.Delay.D() != 300*time.Millisecond || cfg.FailureRate != 0 || cfg.FailMessage != sim.DefaultFailMessage {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  sim.Config
		want string
	}{
		{sim.Config{FailureRate: 1.5, FailMessage: "x"}, "failure_rate: must be between 0 and 1, not 1.5"},
		{sim.Config{FailureRate: -0.1, FailMessage: "x"}, "failure_rate: must be between 0 and 1, not -0.1"},
		{sim.Config{FailMessage: " "}, "fail_message: must not be empty"},
	} {
		err := tt.cfg.Validate()
		if err == nil || err.Error() != tt.want {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// The same seed gives the same failures, so a demo run can be replayed.
func TestSeedReproducible(t *testing.T) {
	outcomes := func() []bool {
		enc, err := sim.New(sim.Config{FailureRate: 0.5, Seed: 42, FailMessage: "x"}, keys.Env{})
		if err != nil {
			t.Fatal(err)
		}
		var got []bool
		for range 32 {
			_, err := enc.Issue(context.Background(), keystest.SampleRequest(keys.KindCard))
			got = append(got, err == nil)
		}
		return got
	}
	a, b := outcomes(), outcomes()
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run 1 and 2 differ at operation %d", i)
		}
		if !a[i] {
			fails++
		}
	}
	if fails == 0 || fails == len(a) {
		t.Fatalf("%d of %d failed at failure_rate 0.5", fails, len(a))
	}
}

func TestKeysAndCalls(t *testing.T) {
	enc, err := sim.New(sim.Config{Seed: 3, FailMessage: "x"}, keys.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	card, err := enc.Issue(ctx, keystest.SampleRequest(keys.KindCard))
	if err != nil {
		t.Fatal(err)
	}
	if len(card.Keys) != 2 || card.Keys[0].Type != keys.KeyRfidTag || card.Keys[0].Value == card.Keys[1].Value {
		t.Errorf("card keys = %+v, want 2 distinct RfidTag keys", card.Keys)
	}
	if card.Note != "2 keys issued for room 0101 (simulated)" {
		t.Errorf("note = %q", card.Note)
	}
	pin, err := enc.Issue(ctx, keystest.SampleRequest(keys.KindDigital))
	if err != nil {
		t.Fatal(err)
	}
	if pin.Keys[0].Type != keys.KeyPinCode || len(pin.Keys[0].Value) != 6 {
		t.Errorf("digital keys = %+v, want 6-digit PinCode", pin.Keys)
	}
	if _, err := enc.Revoke(ctx, keystest.SampleRequest(keys.KindDigital)); err != nil {
		t.Fatal(err)
	}
	calls := enc.Calls()
	if len(calls) != 3 || calls[0].Op != sim.OpIssue || calls[2].Op != sim.OpRevoke || calls[1].Req.Kind != keys.KindDigital {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestCancelledDuringDelaySaysNothingCut(t *testing.T) {
	enc, err := sim.New(sim.Config{Delay: keys.Duration(time.Hour), FailMessage: "x"}, keys.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = enc.Issue(ctx, keystest.SampleRequest(keys.KindCard))
	var ke *keys.Error
	if !errors.As(err, &ke) || ke.MaybeCut || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %#v, want *keys.Error, MaybeCut false, wrapping DeadlineExceeded", err)
	}
	if ke.Msg != "timed out before the key was written; no key was made" {
		t.Errorf("Msg = %q", ke.Msg)
	}
}
