package fias_test

import (
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/fias"
	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/keys/keystest"
)

func TestConformance(t *testing.T) {
	keystest.Run(t, keystest.Harness{
		FailMessage: "Encoder busy",
		Open: func(t *testing.T, b keystest.Behaviour) keystest.Rig {
			lock, err := fiastest.Listen(fiastest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lock.Close() })
			switch b {
			case keystest.Fail:
				lock.SetMode(fiastest.ModeFail)
			case keystest.Hang:
				lock.SetMode(fiastest.ModeNoAnswer)
			case keystest.Slow:
				lock.SetDelay(30 * time.Millisecond)
			}
			cfg := testConfig()
			cfg.Address = lock.Addr()
			e, err := fias.New(cfg, env(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.WaitLink(ctxT(t), true); err != nil {
				t.Fatalf("link did not come up: %v", err)
			}
			return keystest.Rig{Encoder: e, Peak: lock.Peak}
		},
	})
}
