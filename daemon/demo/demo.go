// Package demo runs mews-keyd against the built-in Mews simulator,
// simulated encoders, a simulated Salto lock system and a simulated FIAS
// lock system that a key cutter's settings in Mews name: a short, scripted
// morning at a front desk, printed as it happens, with a summary at the
// end. No credentials, no network.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon"
	"github.com/mews-keyd/mews-keyd/daemon/daemontest"
	_ "github.com/mews-keyd/mews-keyd/keys/all" // the demo runs what the product links
	"github.com/mews-keyd/mews-keyd/keys/fias/fiastest"
	"github.com/mews-keyd/mews-keyd/keys/salto/saltotest"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// Options tune the demo.
type Options struct {
	Out      io.Writer
	Duration time.Duration
	Version  string
	// Logger receives the daemon's own log; zero value discards it.
	Logger zerolog.Logger
}

// configTemplate is a real configuration file, parsed by the real loader:
// the demo exercises the same path an installation does.
const configTemplate = `
%smax_command_age = "30m"
reconcile_interval = "1m"

[daemon]
state_dir = %q

[[encoders]]
name = "desk-1"
driver = "sim"
timeout = "5s"
delay = "250ms"

[[encoders]]
name = "desk-2"
driver = "sim"
timeout = "5s"
delay = "400ms"

# The back-office encoder has a worn-out reader: every card fails.
[[encoders]]
name = "back-office"
driver = "sim"
timeout = "5s"
delay = "600ms"
failure_rate = 1.0
fail_message = "card could not be written, please try another card"

# The third desk's encoder belongs to a Salto lock system, reached through
# a simulated Salto PC interface. No encoder name is set: Salto gets the
# key cutter's identifier from Mews.
[[encoders]]
name = "desk-3"
driver = "salto"
timeout = "5s"
address = %q
connect_timeout = "2s"

# Mobile keys: issued at check-in, revoked at check-out.
[[encoders]]
name = "mobile"
driver = "sim"
timeout = "5s"
delay = "100ms"

[digital_keys]
enabled = true
encoder = "mobile"

[[key_cutters]]
device_id = %q
encoder = "desk-1"

[[key_cutters]]
identifier = %q
encoder = "desk-2"

[[key_cutters]]
device_id = %q
encoder = "back-office"

[[key_cutters]]
device_id = %q
encoder = "desk-3"

# Every other key cutter is served as Mews describes it: the lobby's says
# {"Type": "FiasProtocol"} and the API URL of a simulated FIAS lock system.
[[key_cutters]]
device_id = "*"
from_mews = true
`

// Key cutters the demo adds to the simulator: the back office's, and the
// third desk's, whose identifier is the encoder's name in Salto.
var (
	backOffice = mews.Device{ID: "0f5e3c2a-9b8d-4e71-a6c5-3d2e1f0a9b8c", Type: mews.DeviceKeyCutter,
		Name: "Back office encoder", Identifier: "back-office"}
	saltoDesk = mews.Device{ID: "4c7e2a91-5b3d-4f86-9e1a-7d2c8b6f0e35", Type: mews.DeviceKeyCutter,
		Name: "Front desk Salto encoder", Identifier: "Salto encoder 3"}
	// lobby is described in Mews only: its identifier is the FIAS key
	// coder (KC).
	lobby = mews.Device{ID: "5a0c7a5e-1f0b-4c61-8a7e-2b8d9c0e1f23", Type: mews.DeviceKeyCutter,
		Name: "Lobby encoder", Identifier: "2"}
)

// saltoCardTime is how long the simulated Salto encoder takes to make a
// card once the request is acknowledged.
const saltoCardTime = 300 * time.Millisecond

// Run plays the scenario and returns when it is over (about opts.Duration)
// or ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Duration <= 0 {
		opts.Duration = 15 * time.Second
	}
	// The scenario and every encoder station print: one writer, locked.
	out := &lockedWriter{w: opts.Out}
	srv := mewstest.NewServer()
	defer srv.Close()
	srv.AddDevice(backOffice)
	srv.AddDevice(saltoDesk)
	sim, err := saltotest.Listen(saltotest.Options{})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer sim.Close()
	sim.SetDelay(saltoCardTime)
	lock, err := fiastest.Listen(fiastest.Options{})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer lock.Close()
	srv.AddDevice(lobby)
	srv.SetKeyCutterSettings(lobby.ID, mewstest.KeyCutterSettings{APIURL: "http://" + lock.Addr(), Data: `{"Type": "FiasProtocol"}`})
	stateDir, err := os.MkdirTemp("", "mews-keyd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)

	text := fmt.Sprintf(configTemplate, srv.MewsTOML(), stateDir, sim.Addr(),
		mewstest.KeyCutter1.ID, mewstest.KeyCutter2.Identifier, backOffice.ID, saltoDesk.ID)
	rec := newRecorder(out)
	d, err := daemontest.Start(text, daemon.Deps{Logger: opts.Logger, Version: opts.Version, OnEncoded: rec.encoded, OnDigitalKey: rec.digital})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer d.Stop()

	fmt.Fprintf(out, "mews-keyd demo: simulated Mews at %s, three simulated encoders (desk-1, desk-2, back-office)"+
		", a simulated Salto lock system (desk-3) and a simulated FIAS lock system the lobby's key cutter names in Mews\n\n", srv.URL())
	sc := &scenario{srv: srv, sim: sim, rec: rec, out: out, step: opts.Duration / 12}
	scErr := sc.play(ctx)
	runErr := d.Stop()
	rec.summary(srv)
	saltoSummary(out, sim)
	return errors.Join(scErr, runErr)
}

// scenario is the scripted morning.
type scenario struct {
	srv  *mewstest.Server
	sim  *saltotest.Interface
	rec  *recorder
	out  io.Writer
	step time.Duration
}

func (s *scenario) say(format string, args ...any) {
	fmt.Fprintf(s.out, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (s *scenario) cut(device mews.Device, reservation string, keys int, what string) {
	id, err := s.srv.CreateKeyCutterCommand(device.ID, reservation, keys)
	if err != nil {
		s.say("simulator refused the command: %v", err)
		return
	}
	s.rec.expect(id, device.Name, what)
	s.say("receptionist presses \"cut key\" on %s: %s", device.Name, what)
}

func (s *scenario) pause(ctx context.Context, n int) error {
	t := time.NewTimer(time.Duration(n) * s.step)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *scenario) play(ctx context.Context) error {
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := s.srv.Wait(waitCtx, func(srv *mewstest.Server) bool { return srv.Sockets() > 0 })
	cancel()
	if err != nil {
		return fmt.Errorf("the daemon did not connect to the simulator: %w", err)
	}
	s.say("daemon connected to Mews over WebSocket")
	steps := []func(){
		func() { s.cut(mewstest.KeyCutter1, mewstest.ReservationArriving, 2, "2 keys, Ångström, room 102") },
		func() {
			s.cut(mewstest.KeyCutter2, mewstest.ReservationCheckedIn, 1, "extra key, Novák, room 101")
			s.cut(saltoDesk, mewstest.ReservationLongStay, 2, "2 keys, García Peña, room 112: her first, a new key (CN2)")
		},
		func() {
			s.say("morning rush: six keys at once")
			for _, r := range []string{mewstest.ReservationLongStay, mewstest.ReservationCheckedIn, mewstest.ReservationArriving} {
				s.cut(mewstest.KeyCutter1, r, 1, "rush")
			}
			s.cut(mewstest.KeyCutter2, mewstest.ReservationLongStay, 2, "rush")
			s.cut(mewstest.KeyCutter2, mewstest.ReservationArriving, 1, "rush")
			s.say("the Salto interface is busy for a moment: it refuses the next request (NAK), mews-keyd asks again (ENQ) and resends")
			s.sim.SetNAK(1)
			s.cut(saltoDesk, mewstest.ReservationLongStay, 1, "rush: a third key for García Peña, a copy (CC)")
		},
		func() {
			s.srv.CreateCommand(mews.Command{Device: mewstest.Printer1, Data: []byte(`{"CopyCount":1}`)})
			s.say("a printer command arrives: not a key cutter, left untouched")
		},
		func() {
			s.cut(backOffice, mewstest.ReservationLongStay, 1, "García Peña, room 112, on the worn-out back-office encoder")
			s.cut(mewstest.KeyCutter2, mewstest.ReservationUnassigned, 1, "Müller, early arrival, no room assigned yet")
			s.saltoFails(ctx, "EP", func() {
				s.cut(saltoDesk, mewstest.ReservationLongStay, 1, "a fourth key for García Peña, but no card is in the encoder")
			})
		},
		func() {
			s.say("network trouble: Mews drops the WebSocket; two keys are requested meanwhile")
			s.srv.DropSockets()
			s.cut(mewstest.KeyCutter1, mewstest.ReservationLongStay, 1, "during the outage")
			s.cut(mewstest.KeyCutter2, mewstest.ReservationCheckedIn, 1, "during the outage")
		},
		func() {
			s.cut(mewstest.KeyCutter1, mewstest.ReservationCheckedIn, 1, "after the reconnect")
			s.cut(lobby, mewstest.ReservationCheckedIn, 1, "Novák, room 101, on the lobby encoder: no [[encoders]] entry, its FIAS lock system comes from Mews (KC 2)")
		},
		func() {
			s.say("Ångström checks in (reservation 1002, room 102): a mobile key is issued")
			s.srv.UpdateReservation(mewstest.ReservationArriving, func(r *mews.Reservation) {
				now := time.Now().UTC()
				r.State, r.ActualStartUtc = mews.ReservationStarted, &now
			})
		},
		func() {
			s.say("Ångström's plans change: she checks out early; her mobile key is revoked")
			s.srv.UpdateReservation(mewstest.ReservationArriving, func(r *mews.Reservation) {
				now := time.Now().UTC()
				r.State, r.ActualEndUtc = mews.ReservationProcessed, &now
			})
		},
	}
	for _, step := range steps {
		step()
		if err := s.pause(ctx, 1); err != nil {
			return err
		}
	}
	// Let the queues drain, bounded by the demo's length.
	waitCtx, cancel = context.WithTimeout(ctx, 6*s.step)
	defer cancel()
	if err := s.srv.Wait(waitCtx, func(srv *mewstest.Server) bool { return s.rec.allFinal(srv) }); err != nil {
		s.say("some commands did not finish in time")
	}
	return nil
}

// saltoFails has the Salto interface answer the next request with an error
// code, as when the receptionist forgets to put a card in: the code holds
// until that request has arrived, and for it alone.
func (s *scenario) saltoFails(ctx context.Context, code string, cut func()) {
	before := len(s.sim.Received())
	s.sim.SetError(code, "")
	s.sim.SetMode(saltotest.ModeError)
	defer s.sim.SetMode(saltotest.ModeOK)
	cut()
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.sim.Wait(waitCtx, func(recs []saltotest.Record) bool { return len(recs) > before }); err != nil {
		s.say("the Salto interface did not get the request in time")
	}
}

// saltoSummary says what the Salto interface was asked: the messages by
// command, and the ones it refused and got again.
func saltoSummary(w io.Writer, sim *saltotest.Interface) {
	recs := sim.Received()
	by := map[string]int{}
	refused := 0
	for _, r := range recs {
		by[r.Command()]++
		if r.Refused {
			refused++
		}
	}
	var parts []string
	for cmd, n := range by {
		parts = append(parts, fmt.Sprintf("%d %s", n, cmd))
	}
	sort.Strings(parts)
	fmt.Fprintf(w, "Salto interface (desk-3): %d messages (%s), %d refused with NAK and sent again after %d ENQ\n",
		len(recs), strings.Join(parts, ", "), refused, sim.ENQs())
}

// recorder prints each key as it is cut and keeps what the summary needs.
type recorder struct {
	out io.Writer

	mu        sync.Mutex
	expected  []string
	what      map[string]string
	device    map[string]string
	outcomes  map[string]daemon.Outcome
	latencies []time.Duration
	digitals  []daemon.DigitalOutcome
}

func newRecorder(out io.Writer) *recorder {
	return &recorder{out: out, what: map[string]string{}, device: map[string]string{}, outcomes: map[string]daemon.Outcome{}}
}

func (r *recorder) expect(id, device, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expected = append(r.expected, id)
	r.what[id], r.device[id] = what, device
}

func (r *recorder) encoded(o daemon.Outcome) {
	r.mu.Lock()
	r.outcomes[o.CommandID] = o
	r.latencies = append(r.latencies, o.Latency-o.Queued)
	r.mu.Unlock()
	mark := "cut   "
	if o.State != mews.CommandProcessed {
		mark = "FAILED"
	}
	queued := ""
	if o.Queued >= time.Millisecond {
		queued = fmt.Sprintf(" (+%d ms in queue)", o.Queued.Milliseconds())
	}
	fmt.Fprintf(r.out, "%s  %s %-11s %-44s event→encoder %5.2f ms%s, encode %d ms\n",
		time.Now().Format("15:04:05.000"), mark, o.Encoder, o.Note,
		ms(o.Latency-o.Queued), queued, o.Duration.Milliseconds())
}

func (r *recorder) digital(o daemon.DigitalOutcome) {
	r.mu.Lock()
	r.digitals = append(r.digitals, o)
	r.mu.Unlock()
	if o.Err != nil {
		fmt.Fprintf(r.out, "%s  FAILED digital %-7s reservation %s: %v\n", time.Now().Format("15:04:05.000"), o.Action, o.ReservationNumber, o.Err)
		return
	}
	fmt.Fprintf(r.out, "%s  digital %-7s reservation %s, room %s, valid until %s  event→encoder %5.2f ms\n",
		time.Now().Format("15:04:05.000"), o.Action, o.ReservationNumber, o.Room,
		o.ValidUntil.Format("2006-01-02 15:04 MST"), ms(o.Latency))
}

func (r *recorder) allFinal(srv *mewstest.Server) bool {
	r.mu.Lock()
	ids := slices.Clone(r.expected)
	r.mu.Unlock()
	for _, id := range ids {
		if c, ok := srv.Command(id); !ok || !c.State.Final() {
			return false
		}
	}
	return true
}

func (r *recorder) summary(srv *mewstest.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(r.out, "\nSummary")
	tw := tabwriter.NewWriter(r.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "command\tdevice\tstate in Mews\tnote")
	states := map[mews.CommandState]int{}
	for _, id := range r.expected {
		c, _ := srv.Command(id)
		states[c.State]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id[:8], r.device[id], c.State, srv.CommandNotes(id))
	}
	tw.Flush()
	var parts []string
	for st, n := range states {
		parts = append(parts, fmt.Sprintf("%d %s", n, st))
	}
	sort.Strings(parts)
	fmt.Fprintf(r.out, "\n%d key commands: %s\n", len(r.expected), strings.Join(parts, ", "))
	if len(r.latencies) > 0 {
		lat := slices.Clone(r.latencies)
		slices.Sort(lat)
		fmt.Fprintf(r.out, "event → encoder latency (time queued behind other cards excluded): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1]))
	}
	for _, o := range r.digitals {
		result := "ok"
		if o.Err != nil {
			result = o.Err.Error()
		}
		fmt.Fprintf(r.out, "digital key %s for reservation %s (room %s): %s\n", o.Action, o.ReservationNumber, o.Room, result)
	}
	if n := len(r.expected); n > 0 {
		cmdRequests := 0
		for _, req := range srv.Requests() {
			if strings.HasPrefix(req.Op, "commands/") {
				cmdRequests++
			}
		}
		fmt.Fprintf(r.out, "Connector API requests for key commands: %d, %.1f per command (start-up and reconnect catch-up polls included)\n",
			cmdRequests, float64(cmdRequests)/float64(n))
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
