package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/mews-keyd/mews-keyd/mews"
)

// causeLockServer: a lock server named by a key cutter's settings in Mews
// cannot be used or does not answer.
const causeLockServer = "lock-server"

// keyCuttersInMews lists every KeyCutter Mews has: the lock type and API
// URL its settings in Mews give (Mews sends them only with a command, so
// they are read from the active ones), and how this daemon serves it. A
// lock server a key cutter is served from through its settings is probed,
// once however many key cutters name it.
func (c *checker) keyCuttersInMews(ctx context.Context, d *Daemon, devices []mews.Device) CheckResults {
	var settings map[string]*mews.KeyCutterData
	r := c.probe(ctx, "mews-commands", "key cutters' settings in Mews (active commands)", func(ctx context.Context) CheckResult {
		var ph phases
		cmds, err := d.api.ActiveCommands(ph.follow(mews.WithoutRetries(ctx)))
		if err != nil {
			r := c.mewsFailure(&ph, c.cfg.Mews.APIURL, "the active commands", err)
			r.Status = CheckWarn
			return r
		}
		settings = latestSettings(cmds)
		return passed(fmt.Sprintf("%d active commands, carrying the settings of %d key cutters", len(cmds), len(settings)))
	})
	results := CheckResults{r}

	route := d.route.Load()
	var lines []CheckResult
	probes := map[string]func(context.Context) CheckResult{} // by encoder name: one probe per lock server
	for _, dev := range devices {
		if dev.Type != mews.DeviceKeyCutter {
			continue
		}
		line := CheckResult{Probe: "mews-key-cutter", Name: "KeyCutter " + deviceName(dev), Status: CheckOK}
		data := settings[deviceKey(dev.ID)]
		described := "its settings in Mews are not known: Mews sends them with its commands, and it has none active"
		if data != nil {
			described = settingsWords(data)
		}
		t := route.targetFor(dev.ID, dev.Identifier)
		switch {
		case !t.served():
			line.Status, line.Cause = CheckWarn, causeDevice
			line.Detail = fmt.Sprintf("%s → not served: no [[key_cutters]] entry lists it (device_id = %q) and none is \"*\"", described, dev.ID)
		case !t.fromMews:
			line.Detail = fmt.Sprintf("%s → encoder %s", described, t.st.name)
		case data == nil:
			line.Detail = described + " → its settings in Mews; the lock server is probed once a command names it"
		default:
			ec, ref := route.described.encoder(data)
			if ref != nil {
				line.Status, line.Cause = CheckFail, causeLockServer
				how := "its settings in Mews"
				if typ, _, bad := cutterType(data.KeyCutterData); bad == nil && !spoken(typ) {
					how = "not supported"
				}
				line.Detail = fmt.Sprintf("%s → %s: %s", described, how, ref.note)
				break
			}
			line.Detail = fmt.Sprintf("%s → its settings in Mews: encoder %s (%s), probed below", described, ec.Name, ec.Driver)
			if _, dup := probes[ec.Name]; !dup {
				probes[ec.Name] = func(ctx context.Context) CheckResult {
					st, err := d.openStation(ec, c.cfg.Rooms)
					if err != nil {
						return failed(causeLockServer, err.Error())
					}
					defer st.close()
					return c.untilHealthy(ctx, st)
				}
			}
		}
		lines = append(lines, line)
	}
	for _, line := range lines {
		results = append(results, c.report(line))
	}

	// At once, and listed in a fixed order.
	names := slices.Sorted(maps.Keys(probes))
	probed := make([]CheckResult, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { probed[i] = c.probe(ctx, "encoder", "encoder "+name+" (from Mews)", probes[name]) })
	}
	wg.Wait()
	return append(results, probed...)
}

// latestSettings returns, by lower-case device id, the key cutter settings
// of each key cutter's newest active command.
func latestSettings(cmds []mews.Command) map[string]*mews.KeyCutterData {
	out := map[string]*mews.KeyCutterData{}
	newest := map[string]int{}
	for i := range cmds {
		cmd := &cmds[i]
		data, err := cmd.KeyCutter()
		if err != nil {
			continue
		}
		key := deviceKey(cmd.Device.ID)
		if j, seen := newest[key]; seen && !cmds[j].CreatedUtc.Before(cmd.CreatedUtc) {
			continue
		}
		newest[key], out[key] = i, data
	}
	return out
}

func deviceName(d mews.Device) string {
	name := fmt.Sprintf("%q", d.Name)
	if d.Identifier != "" {
		name += " (identifier " + d.Identifier + ")"
	}
	return name
}

// settingsWords says what a key cutter's settings in Mews are.
func settingsWords(data *mews.KeyCutterData) string {
	typ, _, ref := cutterType(data.KeyCutterData)
	if ref != nil {
		typ = "no usable type"
	}
	where := "no API URL"
	if data.APIURL != "" {
		where = shownURL(data.APIURL)
	}
	return strings.Join([]string{"type " + typ, where}, ", ")
}
