package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// backOffice is a key cutter whose id Mews writes in upper case.
var backOffice = mews.Device{ID: "0F5E3C2A-9B8D-4E71-A6C5-3D2E1F0A9B8C", Type: mews.DeviceKeyCutter,
	Name: "Back office encoder", Identifier: "backoffice-1"}

// upperCaseConfig adds two key cutters whose ids differ in case between the
// config and Mews: KeyCutter2 configured in upper case, backOffice
// configured in lower case.
func upperCaseConfig() string {
	return encoders + fmt.Sprintf(`
[[key_cutters]]
device_id = %q
encoder = "desk-2"

[[key_cutters]]
device_id = %q
encoder = "desk-2"
`, strings.ToUpper(mewstest.KeyCutter2.ID), strings.ToLower(backOffice.ID))
}

// TestDeviceIDCaseDoesNotMatter: a device id in another case than Mews's
// still serves the key cutter; it was left untouched (and journalled as
// ignored for good) before.
func TestDeviceIDCaseDoesNotMatter(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddDevice(backOffice)
	h := start(t, srv, t.TempDir(), upperCaseConfig())
	configuredUpper := h.cut(mewstest.KeyCutter2, mewstest.ReservationArriving, 1)
	mewsUpper := h.cut(backOffice, mewstest.ReservationCheckedIn, 1)
	h.waitFinal(configuredUpper, mewsUpper)
	for _, id := range []string{configuredUpper, mewsUpper} {
		assertState(t, srv, id, mews.CommandProcessed, "1 key")
		if got := h.encoderOf(id); got != "desk-2" {
			t.Errorf("command %s went to %q, want desk-2", id, got)
		}
	}
}

// TestCheckFindsDeviceIDsInAnyCase: `check` finds a configured key cutter
// whose id Mews writes in another case.
func TestCheckFindsDeviceIDsInAnyCase(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddDevice(backOffice)
	text := configText(srv, filepath.Join(t.TempDir(), "state"), upperCaseConfig())
	cfg, _, err := config.Parse("test.toml", []byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if daemon.Check(context.Background(), cfg, daemon.Deps{Logger: zerolog.Nop(), Version: "test"}, daemon.CheckOptions{Progress: &out}).Failed() > 0 {
		t.Errorf("check failed:\n%s", out.String())
	}
	for _, dev := range []mews.Device{mewstest.KeyCutter2, backOffice} {
		want := fmt.Sprintf("ok    key cutter %s: %q in Mews", strings.ToLower(dev.ID), dev.Name)
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}
