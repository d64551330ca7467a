package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/keys/netcause"
	"github.com/mews-keyd/mews-keyd/mews"
)

// DefaultCheckTimeout bounds each of check's probes.
const DefaultCheckTimeout = 10 * time.Second

// healthPoll is how often check asks an encoder that is not healthy yet:
// often enough that the last answer before the timeout is current, rarely
// enough not to hammer a lock system probed over the network (Salto).
const healthPoll = 200 * time.Millisecond

// CheckStatus is a probe's verdict.
type CheckStatus string

// Verdicts.
const (
	CheckOK   CheckStatus = "ok"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "fail"
)

// Causes of failures that netcause does not name.
const (
	causeUnauthorized = "unauthorized" // Mews refused a token
	causeHTTP         = "http"         // Mews answered with another error
	causeDevice       = "device"       // a key cutter is not in Mews, or is no key cutter
	causeClock        = "clock"        // this machine's clock is off Mews's
)

// CheckResult is one probe's verdict. Its JSON form is part of `check
// --json`, documented in the README: extend it, never rename a field.
type CheckResult struct {
	// Probe is the kind: config, setup, mews-api, key-cutter, clock,
	// mews-commands, mews-key-cutter, mews-websocket, encoder.
	Probe string `json:"probe"`
	// Name says what was probed, as the text line does.
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	// Cause is a failure's kind in one word, for scripts: see the README.
	Cause     string `json:"cause,omitempty"`
	Detail    string `json:"detail,omitempty"`
	ElapsedMS int64  `json:"elapsed_ms"`
}

var linePrefix = map[CheckStatus]string{CheckOK: "ok    ", CheckWarn: "WARN  ", CheckFail: "FAIL  "}

// startPrefix marks the line that announces a probe before it runs.
const startPrefix = "...   "

// Line is the result as check prints it, e.g.
// "FAIL  encoder lobby (fias): lock system link down: ...".
func (r CheckResult) Line() string {
	if r.Detail == "" {
		return linePrefix[r.Status] + r.Name
	}
	return linePrefix[r.Status] + r.Name + ": " + r.Detail
}

// CheckResults are check's verdicts, in a fixed order.
type CheckResults []CheckResult

// Failed counts the failed probes.
func (rs CheckResults) Failed() int {
	n := 0
	for _, r := range rs {
		if r.Status == CheckFail {
			n++
		}
	}
	return n
}

// CheckOptions says how Check runs.
type CheckOptions struct {
	// Timeout bounds each probe; zero means DefaultCheckTimeout.
	Timeout time.Duration
	// Progress, if set, gets a line as each probe starts and its verdict
	// as it ends, so that nobody stares at a silent terminal.
	Progress io.Writer
}

// Check probes what the daemon depends on: Mews API authentication (then
// the configured key cutters, the clock, and every KeyCutter Mews has with
// the lock servers their settings in Mews name), the WebSocket handshake,
// and every encoder. The probes run at once and each gets one attempt within
// the timeout, so a machine without network has its whole answer in about
// one timeout; a failure says why in words.
func Check(ctx context.Context, cfg *config.Config, deps Deps, opts CheckOptions) CheckResults {
	c := &checker{cfg: cfg, timeout: opts.Timeout, progress: opts.Progress}
	if c.timeout <= 0 {
		c.timeout = DefaultCheckTimeout
	}
	d, err := New(cfg, deps)
	if err != nil {
		return CheckResults{c.report(CheckResult{Probe: "setup", Name: "setup", Status: CheckFail, Detail: err.Error()})}
	}
	defer d.closeEncoders()
	defer d.api.Close()

	route := d.route.Load()
	groups := make([]CheckResults, 2+len(cfg.Encoders))
	var probes sync.WaitGroup
	probes.Go(func() { groups[0] = c.mewsAPI(ctx, d) })
	probes.Go(func() { groups[1] = CheckResults{c.websocket(ctx, d.ws)} })
	for i, ec := range cfg.Encoders {
		st := route.station(ec.Name)
		probes.Go(func() {
			groups[2+i] = CheckResults{c.encoder(ctx, fmt.Sprintf("encoder %s (%s)", ec.Name, ec.Driver), st)}
		})
	}
	probes.Wait()
	return slices.Concat(groups...)
}

// checker runs the probes of one check.
type checker struct {
	cfg     *config.Config
	timeout time.Duration

	mu       sync.Mutex // one line at a time
	progress io.Writer
}

// probe announces a probe, runs it within the timeout and reports its
// verdict.
func (c *checker) probe(ctx context.Context, probe, name string, run func(context.Context) CheckResult) CheckResult {
	c.print(fmt.Sprintf("%s%s: checking, up to %s", startPrefix, name, netcause.Round(c.timeout)))
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	began := time.Now()
	r := run(ctx)
	r.Probe, r.Name, r.ElapsedMS = probe, name, time.Since(began).Milliseconds()
	return c.report(r)
}

// report prints a verdict and returns it.
func (c *checker) report(r CheckResult) CheckResult {
	c.print(r.Line())
	return r
}

func (c *checker) print(line string) {
	if c.progress == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(c.progress, line)
}

func passed(detail string) CheckResult { return CheckResult{Status: CheckOK, Detail: detail} }

func failed(cause, detail string) CheckResult {
	return CheckResult{Status: CheckFail, Cause: cause, Detail: detail}
}

// mewsAPI authenticates with the device list, then checks the key cutters
// against it and the clock against Mews's.
func (c *checker) mewsAPI(ctx context.Context, d *Daemon) CheckResults {
	api := d.api
	var devices []mews.Device
	apiURL := c.cfg.Mews.APIURL
	r := c.probe(ctx, "mews-api", "Mews API "+apiURL, func(ctx context.Context) CheckResult {
		var ph phases
		devs, err := api.Devices(ph.follow(mews.WithoutRetries(ctx)))
		if err != nil {
			return c.mewsFailure(&ph, apiURL, "the request", err)
		}
		devices = devs
		return passed(fmt.Sprintf("tokens accepted; %d devices linked to this integration", len(devs)))
	})
	results := CheckResults{r}
	if r.Status != CheckOK {
		return results
	}
	if skew, known := api.ClockSkew(); known && skew.Abs() > maxClockSkew {
		results = append(results, c.report(CheckResult{Probe: "clock", Name: "clock", Status: CheckWarn, Cause: causeClock,
			Detail: fmt.Sprintf("this machine's clock is %s: key command ages use Mews's clock, but set the clock right (NTP)", skewWords(skew))}))
	}
	for _, kc := range c.cfg.KeyCutters {
		r := checkCutter(kc, devices, c.cfg.KeyCutters)
		r.Probe, r.Name = "key-cutter", "key cutter "+kc.DeviceID+kc.Identifier
		results = append(results, c.report(r))
	}
	return append(results, c.keyCuttersInMews(ctx, d, devices)...)
}

// websocket opens the WebSocket once and closes it.
func (c *checker) websocket(ctx context.Context, ws *mews.WSClient) CheckResult {
	wsURL := c.cfg.Mews.WSURL
	return c.probe(ctx, "mews-websocket", "Mews WebSocket "+wsURL, func(ctx context.Context) CheckResult {
		var ph phases
		if err := ws.CheckHandshake(ph.follow(ctx)); err != nil {
			return c.mewsFailure(&ph, wsURL, "the WebSocket handshake", err)
		}
		return passed("handshake accepted")
	})
}

// mewsFailure says why a call to Mews at rawURL failed; awaited is what
// Mews owed once connected.
func (c *checker) mewsFailure(ph *phases, rawURL, awaited string, err error) CheckResult {
	var apiErr *mews.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		return failed(causeUnauthorized, c.refusedToken(apiErr))
	case errors.Is(err, mews.ErrHandshakeUnauthorized):
		m := c.cfg.Mews
		return failed(causeUnauthorized, fmt.Sprintf("Mews refused the tokens at the WebSocket handshake (ClientToken from %s, AccessToken from %s)",
			m.ClientTokenFrom, m.AccessTokenFrom))
	case errors.As(err, &apiErr):
		return failed(causeHTTP, "Mews answered "+apiErr.Error())
	}
	cause, words := ph.explain(hostPort(rawURL), awaited, err)
	if proxy := proxyFor(rawURL); proxy != "" && cause != netcause.Proxy {
		words += " (through the proxy " + proxy + ")"
	}
	return failed(string(cause), words)
}

// refusedToken names the token Mews refused (its message says which) and
// where it came from, never its value.
func (c *checker) refusedToken(e *mews.APIError) string {
	m := c.cfg.Mews
	which := fmt.Sprintf("the tokens (ClientToken from %s, AccessToken from %s)", m.ClientTokenFrom, m.AccessTokenFrom)
	switch {
	case strings.Contains(e.Message, "AccessToken"):
		which = fmt.Sprintf("the AccessToken (from %s)", m.AccessTokenFrom)
	case strings.Contains(e.Message, "ClientToken"):
		which = fmt.Sprintf("the ClientToken (from %s)", m.ClientTokenFrom)
	}
	words := fmt.Sprintf("Mews refused %s: %s", which, e.Message)
	if e.RequestID != "" {
		words += " (request " + e.RequestID + ")"
	}
	return words + fmt.Sprintf(" Copy it again from the integration in Mews, for the %s environment.", m.Environment)
}

// checkCutter confirms a configured key cutter exists in Mews; for the
// "*" entry, it names the KeyCutters no other entry lists.
func checkCutter(kc config.KeyCutter, devices []mews.Device, all []config.KeyCutter) CheckResult {
	if kc.DeviceID == config.AnyDevice {
		return checkAnyCutter(kc, devices, all)
	}
	var found *mews.Device
	for i := range devices {
		if listedBy(kc, devices[i]) {
			found = &devices[i]
		}
	}
	switch {
	case found == nil && len(devices) == 0:
		return failed(causeDevice, "Mews lists no devices for this integration: add the key cutters to it in Mews")
	case found == nil:
		by := "id"
		if kc.DeviceID == "" {
			by = "identifier"
		}
		return failed(causeDevice, fmt.Sprintf("no device with this %s is linked to this integration in Mews; Mews lists %s", by, deviceList(devices)))
	case found.Type != mews.DeviceKeyCutter:
		return failed(causeDevice, fmt.Sprintf("device %q is a %s, not a KeyCutter", found.Name, found.Type))
	}
	return passed(fmt.Sprintf("%q in Mews → %s", found.Name, servedBy(kc)))
}

// listedBy reports whether entry kc names device d. Device ids are GUIDs:
// their case means nothing.
func listedBy(kc config.KeyCutter, d mews.Device) bool {
	return (kc.DeviceID != "" && strings.EqualFold(d.ID, kc.DeviceID)) || (kc.Identifier != "" && d.Identifier == kc.Identifier)
}

func servedBy(kc config.KeyCutter) string {
	if kc.FromMews {
		return "its settings in Mews"
	}
	return "encoder " + kc.Encoder
}

// checkAnyCutter names the KeyCutters in Mews that the "*" entry serves.
func checkAnyCutter(kc config.KeyCutter, devices []mews.Device, all []config.KeyCutter) CheckResult {
	var names []string
	for _, d := range devices {
		own := slices.ContainsFunc(all, func(other config.KeyCutter) bool { return listedBy(other, d) })
		if d.Type == mews.DeviceKeyCutter && !own {
			names = append(names, strconv.Quote(d.Name))
		}
	}
	if len(names) == 0 {
		return CheckResult{Status: CheckWarn, Cause: causeDevice, Detail: "every KeyCutter in Mews has an entry of its own: this one serves none"}
	}
	return passed(fmt.Sprintf("%s in Mews → %s", strings.Join(names, ", "), servedBy(kc)))
}

// deviceList writes what Mews has, so that a mistyped id can be told
// from a device nobody linked.
func deviceList(devices []mews.Device) string {
	parts := make([]string, len(devices))
	for i, d := range devices {
		parts[i] = fmt.Sprintf("%q (%s, id %s, identifier %s)", d.Name, d.Type, d.ID, d.Identifier)
	}
	return strings.Join(parts, ", ")
}

// encoder probes a configured encoder.
func (c *checker) encoder(ctx context.Context, name string, st *station) CheckResult {
	return c.probe(ctx, "encoder", name, func(ctx context.Context) CheckResult { return c.untilHealthy(ctx, st) })
}

// untilHealthy asks an encoder for its health until it is healthy or ctx
// ends: a FIAS link needs its handshake before it is up.
func (c *checker) untilHealthy(ctx context.Context, st *station) CheckResult {
	for {
		h := encoderHealth(ctx, st)
		if h.OK {
			return passed(h.Detail)
		}
		t := time.NewTimer(healthPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return failed("", h.Detail)
		case <-t.C:
		}
	}
}
