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
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/internal/testaddr"

	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// lobbyCutter is a key cutter whose identifier, 2, is the FIAS key coder
// (KC) that cuts its cards.
var lobbyCutter = mews.Device{ID: "5a0c7a5e-1f0b-4c61-8a7e-2b8d9c0e1f23", Type: mews.DeviceKeyCutter, Name: "Lobby encoder", Identifier: "2"}

// startFromMews runs a daemon that serves every key cutter from its
// settings in Mews; extra is appended before the key cutters.
func startFromMews(t *testing.T, srv *mewstest.Server, extra string) *harness {
	t.Helper()
	dir := t.TempDir()
	return launch(t, srv, dir, fromMewsText(srv, dir, extra), zerolog.DebugLevel)
}

func fromMewsText(srv *mewstest.Server, dir, extra string) string {
	return configWith(srv, dir, extra, "device_id = \"*\"\nfrom_mews = true\n")
}

// listenSalto runs a Salto interface simulator for the test.
func listenSalto(t *testing.T) *saltotest.Interface {
	t.Helper()
	sim, err := saltotest.Listen(saltotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// fiasEncoder is the config of encoder desk-1 on the FIAS lock system at
// addr; extra lines (settings, then other tables) follow its own.
func fiasEncoder(addr, extra string) string {
	return fmt.Sprintf(`
[[encoders]]
name = "desk-1"
driver = "fias"
timeout = "5s"
address = %q
%s`, addr, extra)
}

// listenFIAS runs a FIAS lock simulator for the test.
func listenFIAS(t *testing.T) *fiastest.Lock {
	t.Helper()
	lock, err := fiastest.Listen(fiastest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	return lock
}

// TestFromMewsCutsWithoutEncoders: key cutters described in Mews cut keys
// with no [[encoders]] at all: a FiasProtocol one through the FIAS lock
// system at its API URL, with its identifier as KC; an
// IndustryStandardProtocol one through Salto, with its identifier as the
// encoder. Both show in the health report.
func TestFromMewsCutsWithoutEncoders(t *testing.T) {
	lock := listenFIAS(t)
	salto := listenSalto(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddDevice(lobbyCutter)
	srv.SetKeyCutterSettings(lobbyCutter.ID, mewstest.KeyCutterSettings{APIURL: "http://" + lock.Addr(), Data: `{"Type": "FiasProtocol"}`})
	srv.SetKeyCutterSettings(mewstest.KeyCutter1.ID, mewstest.KeyCutterSettings{APIURL: "http://" + lock.Addr(), Data: `{"Type": "FiasProtocol"}`})
	srv.SetKeyCutterSettings(mewstest.KeyCutter2.ID, mewstest.KeyCutterSettings{APIURL: "http://" + salto.Addr() + "/", Data: `{"Type": "IndustryStandardProtocol", "MobileKeys": "false"}`})
	h := startFromMews(t, srv, "[from_mews]\ntime_zone = \"Europe/Prague\"\n")

	fiasCmd := h.cut(lobbyCutter, mewstest.ReservationArriving, 2)
	// Another reservation: the two run at once, and a second card for the
	// same reservation and room would be a copy (CC) whichever came second.
	saltoCmd := h.cut(mewstest.KeyCutter2, mewstest.ReservationCheckedIn, 1)
	h.waitFinal(fiasCmd, saltoCmd)
	assertState(t, srv, fiasCmd, mews.CommandProcessed, "2 keys")
	assertState(t, srv, saltoCmd, mews.CommandProcessed, "1 key")

	kr, ok := fiastest.Last(lock.Received(), "KR")
	if !ok {
		t.Fatal("the lock system received no KR")
	}
	if kc, rn := kr.Get("KC"), kr.Get("RN"); kc != "2" || rn != "102" {
		t.Errorf("KR KC = %q, RN = %q, want 2 and 102 (record %s)", kc, rn, kr)
	}
	cn, ok := saltotest.Last(salto.Received(), "CN")
	if !ok {
		t.Fatal("Salto received no CN")
	}
	if enc := cn.Msg.Field(1); enc != mewstest.KeyCutter2.Identifier {
		t.Errorf("CN encoder %q, want %q", enc, mewstest.KeyCutter2.Identifier)
	}

	var names []string
	for _, e := range h.d.Health().Encoders {
		names = append(names, e.Name)
	}
	want := []string{"fias " + lock.Addr(), "salto " + salto.Addr()}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("health lists encoders %q, want %q", names, want)
	}

	// Another key cutter on the same lock server: the same station, the
	// same link, its own KC.
	other := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	h.waitFinal(other)
	assertState(t, srv, other, mews.CommandProcessed, "1 key")
	if kr, _ := fiastest.Last(lock.Received(), "KR"); kr.Get("KC") != mewstest.KeyCutter1.Identifier {
		t.Errorf("KR for the second key cutter has KC %q, want %q", kr.Get("KC"), mewstest.KeyCutter1.Identifier)
	}
	if n := lock.Connects(); n != 1 {
		t.Errorf("%d connections to the lock system, want 1", n)
	}
	if n := len(h.d.Health().Encoders); n != 2 {
		t.Errorf("%d encoders after a second card, want 2", n)
	}
}

// TestFromMewsRefusals: settings in Mews this daemon cannot serve end in
// Error with a note that says why, and touch no lock system.
func TestFromMewsRefusals(t *testing.T) {
	lock := listenFIAS(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	h := startFromMews(t, srv, "[from_mews]\nallowed_hosts = [\"10.0.0.0/8\"]\n")

	for _, tt := range []struct {
		name     string
		settings mewstest.KeyCutterSettings
		note     string
	}{
		{"unsupported type", mewstest.KeyCutterSettings{APIURL: "http://10.0.0.5:8090", Data: `{"Type": "OnityKeyCutter"}`},
			`the key cutter's lock type "OnityKeyCutter" in Mews is not spoken natively by mews-keyd yet; configure an exec or http encoder for this key cutter`},
		{"bad Data JSON", mewstest.KeyCutterSettings{APIURL: "http://10.0.0.5:8090", Data: `{"Type": "FiasProtocol"`},
			"the key cutter's Data JSON in Mews is not valid: "},
		{"no Data JSON", mewstest.KeyCutterSettings{APIURL: "http://10.0.0.5:8090"},
			"the key cutter's Data JSON in Mews is not valid: it is empty"},
		{"API URL outside allowed_hosts", mewstest.KeyCutterSettings{APIURL: "http://" + lock.Addr(), Data: `{"Type": "FiasProtocol"}`},
			"the key cutter's API URL in Mews points to 127.0.0.1, which [from_mews] allowed_hosts does not allow; nothing was sent to it"},
		{"API URL without port", mewstest.KeyCutterSettings{APIURL: "http://10.0.0.5", Data: `{"Type": "FiasProtocol"}`},
			`the key cutter's API URL in Mews ("http://10.0.0.5") names no port`},
	} {
		// Not subtests: the harness fails the test that started it.
		t.Log(tt.name)
		srv.SetKeyCutterSettings(mewstest.KeyCutter1.ID, tt.settings)
		id := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
		h.waitFinal(id)
		assertState(t, srv, id, mews.CommandError, tt.note)
	}
	if n := lock.Connects(); n != 0 {
		t.Errorf("%d connections to a lock system outside allowed_hosts", n)
	}
	if enc := h.d.Health().Encoders; len(enc) != 0 {
		t.Errorf("encoders opened for refused settings: %+v", enc)
	}
}

// TestFromMewsExplicitEntryWins: a key cutter with its own entry is served
// by that entry's encoder whatever Mews says; "*" serves the others, and
// the next command uses settings changed in Mews meanwhile.
func TestFromMewsExplicitEntryWins(t *testing.T) {
	first, second := listenFIAS(t), listenFIAS(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddDevice(lobbyCutter)
	srv.SetKeyCutterSettings(mewstest.KeyCutter1.ID, mewstest.KeyCutterSettings{APIURL: "http://10.0.0.5:1", Data: `{"Type": "OnityKeyCutter"}`})
	srv.SetKeyCutterSettings(lobbyCutter.ID, mewstest.KeyCutterSettings{APIURL: "http://" + first.Addr(), Data: `{"Type": "FiasProtocol"}`})
	h := startFromMews(t, srv, fmt.Sprintf(`
[[encoders]]
name = "desk-1"
driver = "sim"
timeout = "5s"

[[key_cutters]]
device_id = %q
encoder = "desk-1"
`, mewstest.KeyCutter1.ID))

	explicit := h.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 1)
	lobby := h.cut(lobbyCutter, mewstest.ReservationArriving, 1)
	h.waitFinal(explicit, lobby)
	assertState(t, srv, explicit, mews.CommandProcessed, "1 key")
	assertState(t, srv, lobby, mews.CommandProcessed, "1 key")
	if n := fiastest.Count(first.Received(), "KR"); n != 1 {
		t.Errorf("first lock system got %d KR, want 1", n)
	}

	srv.SetKeyCutterSettings(lobbyCutter.ID, mewstest.KeyCutterSettings{APIURL: "http://" + second.Addr(), Data: `{"Type": "FiasProtocol"}`})
	moved := h.cut(lobbyCutter, mewstest.ReservationArriving, 1)
	h.waitFinal(moved)
	assertState(t, srv, moved, mews.CommandProcessed, "1 key")
	if n := fiastest.Count(second.Received(), "KR"); n != 1 {
		t.Errorf("the lock system Mews names now got %d KR, want 1", n)
	}
	if !strings.Contains(h.logs.String(), "desk-1") {
		t.Error("the explicit encoder never logged")
	}
}

// TestCheckFromMews: `check` passes a "*" entry and names the KeyCutters it
// serves from their settings in Mews, leaving out the ones with an entry
// of their own.
func TestCheckFromMews(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	text := configText(srv, filepath.Join(t.TempDir(), "state"), encoders+"\n[[key_cutters]]\ndevice_id = \"*\"\nfrom_mews = true\n")
	cfg, _, err := config.Parse("test.toml", []byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if daemon.Check(context.Background(), cfg, daemon.Deps{Logger: zerolog.Nop(), Version: "test"}, daemon.CheckOptions{Progress: &out}).Failed() > 0 {
		t.Errorf("check failed:\n%s", out.String())
	}
	want := fmt.Sprintf("ok    key cutter *: %q in Mews → its settings in Mews", mewstest.KeyCutter2.Name)
	if !strings.Contains(out.String(), want) {
		t.Errorf("check output lacks %q:\n%s", want, out.String())
	}
	if strings.Contains(out.String(), fmt.Sprintf("%q in Mews → its settings", mewstest.KeyCutter1.Name)) {
		t.Errorf("check says KeyCutter1, which has its own entry, is served from Mews:\n%s", out.String())
	}
}

// TestFromMewsReload: a reload closes the encoders opened from settings in
// Mews; the next command opens its encoder again, with the new
// configuration.
func TestFromMewsReload(t *testing.T) {
	lock := listenFIAS(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddDevice(lobbyCutter)
	srv.SetKeyCutterSettings(lobbyCutter.ID, mewstest.KeyCutterSettings{APIURL: "http://" + lock.Addr(), Data: `{"Type": "FiasProtocol"}`})
	h := startFromMews(t, srv, "")
	before := h.cut(lobbyCutter, mewstest.ReservationArriving, 1)
	h.waitFinal(before)
	assertState(t, srv, before, mews.CommandProcessed, "1 key")

	cfg, _, err := config.Parse("test.toml", []byte(fromMewsText(srv, h.dir, "[from_mews]\nfias_workstation = \"9\"\n")), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.d.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if enc := h.d.Health().Encoders; len(enc) != 0 {
		t.Errorf("encoders still listed after the reload: %+v", enc)
	}

	after := h.cut(lobbyCutter, mewstest.ReservationArriving, 1)
	h.waitFinal(after)
	assertState(t, srv, after, mews.CommandProcessed, "1 key")
	kr, _ := fiastest.Last(lock.Received(), "KR")
	if ws := kr.Get("WS"); ws != "9" {
		t.Errorf("KR after the reload has WS %q, want 9 (record %s)", ws, kr)
	}
	if n := lock.Connects(); n != 2 {
		t.Errorf("%d connections to the lock system, want 2: one before the reload, one after", n)
	}
}

// TestFromMewsFIASListens: with fias_role = "listen" the FIAS lock system
// connects to mews-keyd on the API URL's port, from the API URL's host.
func TestFromMewsFIASListens(t *testing.T) {
	addr := testaddr.Free(t)
	lock := fiastest.Dial(addr, fiastest.Options{})
	t.Cleanup(func() { lock.Close() })
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddDevice(lobbyCutter)
	srv.SetKeyCutterSettings(lobbyCutter.ID, mewstest.KeyCutterSettings{APIURL: "http://" + addr, Data: `{"Type": "FiasProtocol"}`})
	h := startFromMews(t, srv, "[from_mews]\nfias_role = \"listen\"\n")

	id := h.cut(lobbyCutter, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandProcessed, "1 key")
	if kr, ok := fiastest.Last(lock.Received(), "KR"); !ok || kr.Get("KC") != "2" {
		t.Errorf("the lock system got KR %v (%v), want one with KC 2", kr, ok)
	}
}

// TestFromMewsSaltoMobileKeys: "MobileKeys": "true" in the Data JSON sends
// Salto JustIN mobile keys (CNM) instead of cutting cards.
func TestFromMewsSaltoMobileKeys(t *testing.T) {
	salto := listenSalto(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetKeyCutterSettings(mewstest.KeyCutter2.ID, mewstest.KeyCutterSettings{APIURL: "http://" + salto.Addr(), Data: `{"Type": "IndustryStandardProtocol", "MobileKeys": "true"}`})
	h := startFromMews(t, srv, "")
	id := h.cut(mewstest.KeyCutter2, mewstest.ReservationArriving, 1)
	h.waitFinal(id)
	assertState(t, srv, id, mews.CommandProcessed, "")
	if _, ok := saltotest.Last(salto.Received(), "CNM"); !ok {
		t.Errorf("Salto received no CNM: %v", salto.Received())
	}
	if enc := h.d.Health().Encoders; len(enc) != 1 || enc[0].Name != "salto "+salto.Addr()+" mobile" {
		t.Errorf("encoders %+v, want one named salto %s mobile", enc, salto.Addr())
	}
}

// TestFromMewsResumesAcceptedCommands: commands of key cutters described
// in Mews that a previous run accepted and never started are cut after a
// restart through the lock system their settings name, or reported with
// the note that says why not.
func TestFromMewsResumesAcceptedCommands(t *testing.T) {
	lock := listenFIAS(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddDevice(lobbyCutter)
	srv.SetKeyCutterSettings(lobbyCutter.ID, mewstest.KeyCutterSettings{APIURL: "http://" + lock.Addr(), Data: `{"Type": "FiasProtocol"}`})
	srv.SetKeyCutterSettings(mewstest.KeyCutter2.ID, mewstest.KeyCutterSettings{APIURL: "http://10.0.0.5:1", Data: `{"Type": "HotekKeyCutter"}`})
	served := mustCut(t, srv, lobbyCutter, mewstest.ReservationArriving, 1)
	unsupported := mustCut(t, srv, mewstest.KeyCutter2, mewstest.ReservationArriving, 1)

	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{served, unsupported} {
		if _, _, err := j.Accept(id, "from-mews", "a key cutter"); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	h := launch(t, srv, dir, fromMewsText(srv, dir, ""), zerolog.DebugLevel)
	h.waitFinal(served, unsupported)
	assertState(t, srv, served, mews.CommandProcessed, "1 key")
	assertState(t, srv, unsupported, mews.CommandError, `lock type "HotekKeyCutter"`)
	if kr, ok := fiastest.Last(lock.Received(), "KR"); !ok || kr.Get("KC") != "2" {
		t.Errorf("the lock system got KR %v (%v), want one with KC 2", kr, ok)
	}
}

// TestCheckListsKeyCuttersInMews: `check` lists every KeyCutter Mews has,
// with the type and API URL its active command carries and how it is
// served (an encoder, its settings in Mews, not supported, not served),
// and probes the lock server a key cutter's settings name, once.
func TestCheckListsKeyCuttersInMews(t *testing.T) {
	lock := listenFIAS(t)
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	hotek := mews.Device{ID: "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", Type: mews.DeviceKeyCutter, Name: "Hotek desk"}
	twin := mews.Device{ID: "8d2e3f4a-5b6c-4d7e-9f0a-1b2c3d4e5f60", Type: mews.DeviceKeyCutter, Name: "Lobby twin", Identifier: "3"}
	for _, dev := range []mews.Device{lobbyCutter, hotek, twin} {
		srv.AddDevice(dev)
	}
	fias := mewstest.KeyCutterSettings{APIURL: "http://" + lock.Addr(), Data: `{"Type": "FiasProtocol"}`}
	srv.SetKeyCutterSettings(lobbyCutter.ID, fias)
	srv.SetKeyCutterSettings(twin.ID, fias)
	srv.SetKeyCutterSettings(hotek.ID, mewstest.KeyCutterSettings{APIURL: "http://127.0.0.1:9", Data: `{"Type": "HotekKeyCutter"}`})
	for _, dev := range []mews.Device{lobbyCutter, hotek, twin} {
		if _, err := srv.CreateKeyCutterCommand(dev.ID, mewstest.ReservationArriving, 1); err != nil {
			t.Fatal(err)
		}
	}
	var cutters strings.Builder
	for _, dev := range []mews.Device{lobbyCutter, hotek, twin} {
		fmt.Fprintf(&cutters, "\n[[key_cutters]]\ndevice_id = %q\nfrom_mews = true\n", dev.ID)
	}
	text := configText(srv, filepath.Join(t.TempDir(), "state"), encoders+cutters.String())
	cfg, _, err := config.Parse("test.toml", []byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	results := daemon.Check(context.Background(), cfg, daemon.Deps{Logger: zerolog.Nop(), Version: "test"}, daemon.CheckOptions{Progress: &out})

	server := "fias " + lock.Addr()
	for _, want := range []string{
		fmt.Sprintf("ok    KeyCutter %q (identifier %s): its settings in Mews are not known", mewstest.KeyCutter1.Name, mewstest.KeyCutter1.Identifier),
		"→ encoder desk-1",
		fmt.Sprintf("ok    KeyCutter %q (identifier 2): type FiasProtocol, http://%s → its settings in Mews: encoder %s (fias)", lobbyCutter.Name, lock.Addr(), server),
		fmt.Sprintf("FAIL  KeyCutter %q: type HotekKeyCutter, http://127.0.0.1:9 → not supported: the key cutter's lock type \"HotekKeyCutter\"", hotek.Name),
		fmt.Sprintf("WARN  KeyCutter %q (identifier %s): its settings in Mews are not known", mewstest.KeyCutter2.Name, mewstest.KeyCutter2.Identifier),
		"→ not served: no [[key_cutters]] entry lists it",
		fmt.Sprintf("ok    encoder %s (from Mews): ", server),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	probes := 0
	for _, r := range results {
		if r.Probe == "encoder" && strings.Contains(r.Name, "from Mews") {
			probes++
		}
	}
	if probes != 1 {
		t.Errorf("%d probes of lock servers from Mews, want 1 for the two key cutters that share one:\n%s", probes, out.String())
	}
	if results.Failed() != 1 {
		t.Errorf("%d failures, want the unsupported type's alone:\n%s", results.Failed(), out.String())
	}
}

// TestCheckWhenActiveCommandsFail: Mews refuses the active commands (403,
// then on another run 429). check says so as a warning and still lists the
// key cutters, their settings not known; nothing fails for it.
func TestCheckWhenActiveCommandsFail(t *testing.T) {
	for _, status := range []int{403, 429} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := mewstest.NewServer()
			t.Cleanup(srv.Close)
			srv.FailNext(mews.OpActiveCommands, 1, status, "30")
			text := configText(srv, filepath.Join(t.TempDir(), "state"), encoders+"\n[[key_cutters]]\ndevice_id = \"*\"\nfrom_mews = true\n")
			cfg, _, err := config.Parse("test.toml", []byte(text), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			results := daemon.Check(context.Background(), cfg, daemon.Deps{Logger: zerolog.Nop(), Version: "test"}, daemon.CheckOptions{Progress: &out})
			if results.Failed() != 0 {
				t.Errorf("%d failures:\n%s", results.Failed(), out.String())
			}
			for _, want := range []string{
				"WARN  key cutters' settings in Mews (active commands): ",
				fmt.Sprintf("ok    KeyCutter %q (identifier %s): its settings in Mews are not known", mewstest.KeyCutter2.Name, mewstest.KeyCutter2.Identifier),
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("check output lacks %q:\n%s", want, out.String())
				}
			}
			if n := srv.RequestCount(mews.OpActiveCommands); n != 1 {
				t.Errorf("the active commands were asked for %d times, want once (check does not retry)", n)
			}
		})
	}
}
