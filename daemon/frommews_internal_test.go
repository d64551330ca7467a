package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/sim"
	"github.com/mews-keyd/mews-keyd/mews"
)

// TestDescribedClosesIdleStations: an encoder opened from settings in Mews
// that no command used for idleClose is retired and forgotten; the next
// command opens a new one, after the retired one.
func TestDescribedClosesIdleStations(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var replaced []*station
	cfg := config.FromMews{AllowedHosts: []string{"127.0.0.1"}, FIASWorkstation: "1", FIASRole: config.FIASDial, Timeout: 1}
	d := newDescribed(cfg, nil, func() time.Time { return now },
		func(ec config.Encoder, replaces *station) (*station, error) {
			enc, err := sim.New(sim.Config{FailMessage: sim.DefaultFailMessage}, keys.Env{Name: ec.Name, Logger: zerolog.Nop()})
			if err != nil {
				return nil, err
			}
			replaced = append(replaced, replaces)
			return newStation(ec.Name, enc, time.Second, zerolog.Nop()), nil
		})
	data := &mews.KeyCutterData{KeyCutterID: "2", APIURL: "http://127.0.0.1:5010", KeyCutterData: `{"Type": "FiasProtocol"}`}
	first, ref := d.station(data)
	if ref != nil {
		t.Fatal(ref.note)
	}
	t.Cleanup(first.close)

	now = now.Add(idleClose - time.Minute)
	if again, _ := d.station(data); again != first {
		t.Fatal("a second command opened a second station")
	}
	now = now.Add(idleClose - time.Second)
	d.closeIdle()
	if first.isRetired() || len(d.all()) != 1 {
		t.Fatal("a station used less than idleClose ago was closed")
	}
	now = now.Add(time.Second)
	d.closeIdle()
	if !first.isRetired() || len(d.all()) != 0 {
		t.Fatalf("a station idle for idleClose is still open: retired %v, stations %d", first.isRetired(), len(d.all()))
	}

	next, ref := d.station(data)
	if ref != nil {
		t.Fatal(ref.note)
	}
	t.Cleanup(next.close)
	if next == first || replaced[len(replaced)-1] != first {
		t.Errorf("the reopened station does not wait for the retired one: %v", replaced)
	}
}

// check and the notes show a key cutter's API URL without the password
// it may carry.
func TestSettingsWordsHidePasswords(t *testing.T) {
	got := settingsWords(&mews.KeyCutterData{APIURL: "http://admin:s3cret@10.0.0.5:5010", KeyCutterData: `{"Type": "FiasProtocol"}`})
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "type FiasProtocol, http://admin:xxxxx@10.0.0.5:5010") {
		t.Errorf("settingsWords = %q", got)
	}
	d := newDescribed(config.FromMews{}, nil, time.Now, nil)
	if _, _, ref := d.lockServer("http://admin:s3cret@10.0.0.5"); ref == nil || strings.Contains(ref.note, "s3cret") {
		t.Errorf("refusal of a URL without a port: %+v", ref)
	}
}
