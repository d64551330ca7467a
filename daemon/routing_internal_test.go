package daemon

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/keys"
	_ "github.com/mews-keyd/mews-keyd/keys/sim"
)

// TestDeviceIDsRouteWithoutCase: a device id (a GUID) names the same key
// cutter in any case, whichever side, the config or Mews, wrote it in upper
// case.
func TestDeviceIDsRouteWithoutCase(t *testing.T) {
	const id = "d14efcfd-75b9-4bd3-9f10-5657a01f860a"
	drv, ok := keys.Lookup("sim")
	if !ok {
		t.Fatal(`driver "sim" not registered`)
	}
	for _, tt := range []struct{ configured, fromMews string }{
		{strings.ToUpper(id), id},
		{id, strings.ToUpper(id)},
	} {
		cfg := &config.Config{
			Encoders:   []config.Encoder{{Name: "desk-1", Driver: "sim", Config: drv.NewConfig()}},
			KeyCutters: []config.KeyCutter{{DeviceID: tt.configured, Encoder: "desk-1"}},
		}
		d := &Daemon{log: zerolog.Nop()}
		r, opened, err := d.buildRouting(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, st := range opened {
				st.close()
			}
		})
		if st := r.targetFor(tt.fromMews, "").st; st == nil || st.name != "desk-1" {
			t.Errorf("configured %s, Mews sends %s: routed to %v, want desk-1", tt.configured, tt.fromMews, st)
		}
	}
}
