package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/keys/sim"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestNoEncodeWithoutJournal: when the journal cannot record that an
// encode starts, the card is not cut and Mews hears Error directly. The
// journal is closed under the daemon, which fails StartEncode the way a
// full disk does (the journal's own tests cover the write failure itself);
// what matters here is what the pipeline does with any such error.
func TestNoEncodeWithoutJournal(t *testing.T) {
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	text := fmt.Sprintf(`
%s
[daemon]
state_dir = %q

[[encoders]]
name = "desk-1"
driver = "sim"

[[key_cutters]]
device_id = %q
encoder = "desk-1"
`, srv.MewsTOML(), t.TempDir(), mewstest.KeyCutter1.ID)
	cfg, _, err := config.Parse("test.toml", []byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Deps{Logger: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.closeEncoders()
	defer d.api.Close()
	j, err := journal.Open(cfg.Daemon.StateDir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.journal = j
	d.outbox = newOutbox(j, d.updates, d.metrics, d.retry, d.now, d.log)

	id, err := srv.CreateKeyCutterCommand(mewstest.KeyCutter1.ID, mewstest.ReservationArriving, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cmds, err := d.api.CommandsByIDs(ctx, []string{id})
	if err != nil || len(cmds) != 1 {
		t.Fatalf("fetch: %v %v", cmds, err)
	}
	data, err := cmds[0].KeyCutter()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.Accept(id, "desk-1", cmds[0].Device.Name); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	st := d.route.Load().station("desk-1")
	d.newCutter().encode(ctx, st, job{cmd: cmds[0], data: data, seen: time.Now()})

	if calls := st.enc.(*sim.Encoder).Calls(); len(calls) != 0 {
		t.Errorf("encoder called without a journal: %+v", calls)
	}
	c, _ := srv.Command(id)
	if note := srv.CommandNotes(id); c.State != mews.CommandError || note != "mews-keyd cannot write its journal (disk full?); no key was cut" {
		t.Errorf("command %s with note %q, want Error saying no key was cut", c.State, note)
	}
}
