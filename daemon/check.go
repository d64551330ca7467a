package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/mews"
)

// linkWait is how long check gives an encoder to come up (a FIAS link
// needs its handshake) before reporting its health.
const linkWait = 5 * time.Second

// Check probes everything the daemon depends on and prints one line per
// probe: Mews API authentication, the configured key cutters, the WebSocket
// handshake, and every encoder. It reports whether all passed.
func Check(ctx context.Context, cfg *config.Config, deps Deps, out io.Writer) bool {
	d, err := New(cfg, deps)
	if err != nil {
		fmt.Fprintf(out, "FAIL  setup: %v\n", err)
		return false
	}
	defer d.closeEncoders()
	defer d.api.Close()
	ok := true
	report := func(err error, format string, args ...any) {
		if err != nil {
			ok = false
			fmt.Fprintf(out, "FAIL  "+format+": %v\n", append(args, err)...)
			return
		}
		fmt.Fprintf(out, "ok    "+format+"\n", args...)
	}

	devices, err := d.api.Devices(ctx)
	report(err, "Mews API %s: tokens accepted", cfg.Mews.APIURL)
	if err == nil {
		if skew, known := d.api.ClockSkew(); known && skew.Abs() > maxClockSkew {
			fmt.Fprintf(out, "WARN  this machine's clock is %s: key command ages use Mews's clock, but set the clock right (NTP)\n", skewWords(skew))
		}
		d.checkCutters(devices, report)
	}
	report(d.ws.CheckHandshake(ctx), "Mews WebSocket %s: handshake", cfg.Mews.WSURL)
	for _, ec := range cfg.Encoders {
		report(d.checkEncoder(ctx, d.route.Load().station(ec.Name)), "encoder %s (%s)", ec.Name, ec.Driver)
	}
	return ok
}

// checkCutters confirms each configured key cutter exists in Mews.
func (d *Daemon) checkCutters(devices []mews.Device, report func(error, string, ...any)) {
	for _, kc := range d.cfg.KeyCutters {
		var found *mews.Device
		for i := range devices {
			// Device ids are GUIDs: their case means nothing.
			if (kc.DeviceID != "" && strings.EqualFold(devices[i].ID, kc.DeviceID)) || (kc.Identifier != "" && devices[i].Identifier == kc.Identifier) {
				found = &devices[i]
			}
		}
		name := kc.DeviceID + kc.Identifier
		switch {
		case found == nil:
			report(fmt.Errorf("no such device is linked to this integration in Mews"), "key cutter %s", name)
		case found.Type != mews.DeviceKeyCutter:
			report(fmt.Errorf("device %q is a %s, not a KeyCutter", found.Name, found.Type), "key cutter %s", name)
		default:
			report(nil, "key cutter %s: %q in Mews → encoder %s", name, found.Name, kc.Encoder)
		}
	}
}

// checkEncoder asks an encoder for its health, waiting briefly for a link
// that is still coming up.
func (d *Daemon) checkEncoder(ctx context.Context, st *station) error {
	deadline := time.Now().Add(linkWait)
	for {
		h := encoderHealth(ctx, st)
		if h.OK {
			return nil
		}
		if time.Now().After(deadline) {
			if !h.Since.IsZero() {
				return fmt.Errorf("%s since %s", h.Detail, h.Since.Local().Format(time.DateTime))
			}
			return fmt.Errorf("%s", h.Detail)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
