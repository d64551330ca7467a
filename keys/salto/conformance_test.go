package salto_test

import (
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/keystest"
	"github.com/mews-keyd/mews-keyd/keys/salto"
	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
)

func TestConformance(t *testing.T) {
	keystest.Run(t, keystest.Harness{
		FailMessage: "the encoder is busy",
		Open: func(t *testing.T, b keystest.Behaviour) keystest.Rig {
			sim, err := saltotest.Listen(saltotest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			switch b {
			case keystest.Fail:
				sim.SetMode(saltotest.ModeError)
				sim.SetError("OV", "")
			case keystest.Hang:
				sim.SetMode(saltotest.ModeNoAnswer)
			case keystest.Slow:
				sim.SetDelay(30 * time.Millisecond)
			}
			cfg := testConfig()
			cfg.Address = sim.Addr()
			// The suite's requests name no key cutter.
			cfg.Encoder = "Online Encoder 1"
			e, err := salto.New(cfg, env(t))
			if err != nil {
				t.Fatal(err)
			}
			return keystest.Rig{Encoder: e, Peak: sim.Peak}
		},
	})
}
