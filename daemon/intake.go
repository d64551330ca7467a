package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/daemon/hints"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/mews"
)

// maxBatch is the most ids commands/getAllByIds takes in one request.
const maxBatch = 1000

// intake is the single goroutine (run) that admits commands, so an event
// and a poll that find the same command cannot both admit it. It owns the
// fields below beat; beat is its proof of life for the watchdog, and hints
// and catchUpCh are how the WebSocket reader and others reach it.
type intake struct {
	journal     *journal.Journal
	api         *mews.Client
	outbox      *outbox
	route       *atomic.Pointer[routing]
	log         zerolog.Logger
	errLog      zerolog.Logger // for errors an outage repeats per event
	now         func() time.Time
	maxAge      time.Duration
	reconcile   time.Duration
	reloads     <-chan reloadRequest
	applyReload func(*config.Config) error

	hints     *hints.Set
	catchUpCh chan struct{}
	// beat is when the loop last came round (UnixNano).
	beat atomic.Int64

	// resume holds commands a previous run accepted but never started; they
	// are fetched again and queued without a second Accept.
	resume map[string]bool
	// clockChecked is set once the first catch-up has compared our clock
	// with Mews's.
	clockChecked bool
	// handed holds the commands handed to a station before the journal
	// knew them (job.fresh), with their station, which may be retired by
	// a reload meanwhile.
	handed map[string]*station
}

// requestCatchUp asks for a poll of the active commands, after a
// (re)connection.
func (in *intake) requestCatchUp() {
	select {
	case in.catchUpCh <- struct{}{}:
	default:
	}
}

// resumeLater makes a command accepted by a previous run be fetched and
// queued again; before run starts.
func (in *intake) resumeLater(id string, at time.Time) {
	in.resume[id] = true
	in.hints.Add(id, at)
}

// handedOver reports whether id was handed to a station fresh and the
// station still has it; it forgets the ones let go of.
func (in *intake) handedOver(id string) bool {
	maps.DeleteFunc(in.handed, func(id string, st *station) bool { return !st.holds(id) })
	_, ok := in.handed[id]
	return ok
}

// lastBeat is when the loop last came round.
func (in *intake) lastBeat() time.Time { return time.Unix(0, in.beat.Load()) }

// run admits commands until ctx ends.
func (in *intake) run(ctx context.Context) {
	reconcile := time.NewTicker(in.reconcile)
	defer reconcile.Stop()
	// The watchdog's proof of life (Healthy): an idle intake still comes
	// round once a minute.
	beat := time.NewTicker(time.Minute)
	defer beat.Stop()
	for {
		in.beat.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			in.route.Load().described.closeIdle()
		case <-in.hints.Ready():
			ids, seen := in.hints.Take(maxBatch)
			in.fetchAndAdmit(ctx, ids, seen)
		case <-in.catchUpCh:
			in.catchUpActive(ctx)
		case <-reconcile.C:
			in.catchUpActive(ctx)
		case req := <-in.reloads:
			req.done <- in.applyReload(req.cfg)
		}
	}
}

// fetchAndAdmit fetches the commands events announced, skipping those the
// journal already knows: a duplicate event costs no request.
func (in *intake) fetchAndAdmit(ctx context.Context, ids []string, seen map[string]time.Time) {
	fresh := ids[:0:0]
	for _, id := range ids {
		if in.admissible(id) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return
	}
	fetchStart := time.Now()
	cmds, err := in.api.CommandsByIDs(ctx, fresh)
	fetched := arrival{io: time.Since(fetchStart)}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			// The reconcile poll picks these up again: nothing is lost.
			in.errLog.Error().Err(err).Int("commands", len(fresh)).Msg("fetching announced commands failed; the next poll retries")
		}
		return
	}
	// Admit in the order the events came, which getAllByIds does not keep.
	byID := make(map[string]*mews.Command, len(cmds))
	for i := range cmds {
		byID[cmds[i].ID] = &cmds[i]
	}
	for _, id := range fresh {
		if cmd, ok := byID[id]; ok {
			fetched.seen = seen[id]
			in.admit(cmd, fetched)
		} else if in.resume[id] {
			// Without this a vanished command would be fetched again at
			// every poll, forever.
			delete(in.resume, id)
			in.log.Warn().Str(fieldCommand, id).Msg("command accepted before the restart no longer exists in Mews; not cutting")
			if err := in.journal.Abandon(id, "gone from Mews while mews-keyd was down"); err != nil {
				in.log.Error().Err(err).Str(fieldCommand, id).Msg("recording abandoned command")
			}
		}
	}
}

// catchUpActive processes every Pending or Received command: after a
// (re)connect nothing created meanwhile is missed, and periodically as a
// safety net.
func (in *intake) catchUpActive(ctx context.Context) {
	start := in.now()
	cmds, err := in.api.ActiveCommands(ctx)
	polled := arrival{seen: start, io: in.now().Sub(start)}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			in.errLog.Error().Err(err).Msg("fetching active commands failed; retrying at the next poll")
		}
		return
	}
	if !in.clockChecked {
		in.clockChecked = true
		in.warnClockSkew()
	}
	for i := range cmds {
		if in.admissible(cmds[i].ID) {
			in.admit(&cmds[i], polled)
		}
	}
	// Resumed commands Mews already shows as Processing are not active, so
	// the poll above cannot return them: fetch them by id.
	for id := range in.resume {
		in.hints.Add(id, start)
	}
}

// processingEvent handles a command Mews announces as Processing. The
// reconciliation rule: only mews-keyd sets Processing, and it journals a
// command before that, so a Processing command for one of our key cutters
// that the journal does not know was started by a mews-keyd that has lost
// its journal (moved aside as corrupt, or a state dir wiped or replaced).
// Whether a card was cut cannot be known, so it is reported Error with
// lostTrackNote and never encoded. getAllActive returns only Pending and
// Received commands, so such commands surface only through events like
// this one. Our own Processing updates come back as events for commands
// the journal knows: they cost one journal read and no request.
func (in *intake) processingEvent(id string, at time.Time) {
	_, known, err := in.journal.Get(id)
	switch {
	case err != nil:
		in.log.Error().Err(err).Str(fieldCommand, id).Msg("reading journal")
	case !known:
		in.hints.Add(id, at)
	}
}

// cancelledEvent takes a command Mews cancelled out of its station's queue,
// so it is never cut — even while Mews is failing the Processing update
// that would otherwise have told us. A command already taken by its worker
// is left to that update.
func (in *intake) cancelledEvent(id string) {
	for _, st := range in.route.Load().all() {
		if j, ok := st.withdraw(id); ok {
			in.log.Info().Str(fieldCommand, id).Str(fieldEncoder, st.name).Msg("command cancelled in Mews while queued; not cutting")
			if j.fresh {
				return // the journal never had it
			}
			if err := in.journal.Abandon(id, "cancelled in Mews while queued"); err != nil {
				in.log.Error().Err(err).Str(fieldCommand, id).Msg("recording abandoned command")
			}
			return
		}
	}
}

const lostTrackNote = "mews-keyd lost track of this key (its journal was reset); please check the card and cut again"

// errLostTrack is the logged cause of a lostTrackNote report.
var errLostTrack = errors.New("command is Processing in Mews but unknown to the journal")

// admissible reports whether a command id may still need work: the journal
// has not seen it, or it is a resumed command still waiting for its details.
func (in *intake) admissible(id string) bool {
	if in.resume[id] {
		return true
	}
	// Before the journal: a command handed to a station fresh is in the
	// journal by the time the station lets go of it.
	if in.handedOver(id) {
		return false
	}
	_, known, err := in.journal.Get(id)
	if err != nil {
		in.log.Error().Err(err).Str(fieldCommand, id).Msg("reading journal")
		return false
	}
	return !known
}

// admit decides what happens to a command: queue it for its encoder, cancel
// it as too old, or leave it alone.
// arrival is how a command reached the intake: when the daemon first heard
// of it, and how long fetching its details took (I/O, for the latency
// breakdown).
type arrival struct {
	seen time.Time
	io   time.Duration
}

func (in *intake) admit(cmd *mews.Command, at arrival) {
	log := in.log.With().Str(fieldCommand, cmd.ID).Str(fieldDevice, cmd.Device.Name).Logger()
	if in.resume[cmd.ID] {
		in.resumeCommand(cmd, at, log)
		return
	}
	t := in.targetFor(cmd.Device)
	ours := cmd.Device.Type == mews.DeviceKeyCutter && t.served()
	switch {
	case cmd.State.Final():
		log.Debug().Str(fieldState, string(cmd.State)).Msg("command already final; nothing to do")
		return
	case cmd.State == mews.CommandProcessing && ours:
		// The reconciliation rule: see processingEvent.
		in.rejectCommand(cmd, t.name(), mews.CommandError, lostTrackNote, errLostTrack)
		return
	case !ours:
		// Journalled so that later events for it cost nothing and it is
		// logged once, across restarts too.
		if _, _, err := in.journal.Ignore(cmd.ID, cmd.Device.Name, "not a key cutter served here"); err != nil {
			log.Error().Err(err).Msg("recording ignored command")
		}
		log.Info().Str("device_type", string(cmd.Device.Type)).Str("device_id", cmd.Device.ID).
			Msg("command is not for a key cutter this daemon serves; left untouched")
		return
	}
	data, err := cmd.KeyCutter()
	if err != nil {
		in.rejectCommand(cmd, t.name(), mews.CommandError, "the key data sent by Mews could not be read", err)
		return
	}
	st, ref := in.stationOf(t, data)
	if ref != nil {
		in.rejectCommand(cmd, t.name(), mews.CommandError, ref.note, ref.cause)
		return
	}
	log = log.With().Str(fieldEncoder, st.name).Logger()
	if len(data.LockIDs) == 0 {
		in.rejectCommand(cmd, st.name, mews.CommandError, "the reservation has no room assigned in Mews; assign a room and cut the key again", nil)
		return
	}
	if data.KeyCount < 1 {
		in.rejectCommand(cmd, st.name, mews.CommandError, fmt.Sprintf("Mews asked for %d keys; nothing to cut", data.KeyCount), nil)
		return
	}
	if age, limit := in.commandAge(cmd), in.maxAge; limit > 0 && age > limit {
		in.rejectCommand(cmd, st.name, mews.CommandCancelled, tooOldNote(age, limit), nil)
		return
	}
	j := job{cmd: *cmd, data: data, seen: at.seen, io: at.io}
	if st.idle() {
		// Taken at once: the station journals it accepted and started in
		// one write (cutter.start).
		j.fresh = true
		in.handed[cmd.ID] = st
	} else {
		acceptStart := time.Now()
		if _, _, err := in.journal.Accept(cmd.ID, st.name, cmd.Device.Name); err != nil {
			log.Error().Err(err).Msg("cannot record the command in the journal; not cutting")
			return
		}
		j.io += time.Since(acceptStart)
	}
	st.enqueue(j)
	log.Info().Int("keys", data.KeyCount).Msg("key command queued")
}

// commandAge is how old a command is by Mews's clock: the Date of the
// answer that delivered it, minus its creation. A PC clock that is off must
// not make every key "too old" (or a stale one young). Without a Date, our
// own clock is all there is.
func (in *intake) commandAge(cmd *mews.Command) time.Duration {
	now := cmd.ServerTime
	if now.IsZero() {
		now = in.now()
	}
	return now.Sub(cmd.CreatedUtc)
}

// rejectCommand records a command that will not be encoded and queues its
// final state for Mews.
func (in *intake) rejectCommand(cmd *mews.Command, encoder string, state mews.CommandState, note string, cause error) {
	log := in.log.With().Str(fieldCommand, cmd.ID).Str(fieldEncoder, encoder).Logger()
	if _, _, err := in.journal.Accept(cmd.ID, encoder, cmd.Device.Name); err != nil {
		log.Error().Err(err).Msg("cannot record the command in the journal")
		return
	}
	log.Warn().AnErr("cause", cause).Str(fieldState, string(state)).Str("note", note).Msg("command not encoded")
	in.queueReport(cmd.ID, state, note, log)
}

func (in *intake) queueReport(id string, state mews.CommandState, note string, log zerolog.Logger) {
	if err := in.journal.QueueReport(id, string(state), note); err != nil {
		log.Error().Err(err).Msg("cannot record the report in the journal")
		return
	}
	in.outbox.wake()
}

func (in *intake) targetFor(dev mews.Device) target {
	return in.route.Load().targetFor(dev.ID, dev.Identifier)
}

// stationOf returns the station that cuts a command for t: its configured
// one, or the one the key cutter's settings in Mews describe.
func (in *intake) stationOf(t target, data *mews.KeyCutterData) (*station, *refusal) {
	if !t.fromMews {
		return t.st, nil
	}
	return in.route.Load().described.station(data)
}

// resumeCommand queues a command accepted by a previous run. Mews may show
// it as Processing already (the update went out before the crash); it is
// still ours to encode because the journal proves the encoder was never
// called.
func (in *intake) resumeCommand(cmd *mews.Command, at arrival, log zerolog.Logger) {
	delete(in.resume, cmd.ID)
	t := in.targetFor(cmd.Device)
	data, err := cmd.KeyCutter()
	age, limit := in.commandAge(cmd), in.maxAge
	switch {
	case cmd.State.Final():
		log.Info().Str(fieldState, string(cmd.State)).Msg("resumed command was closed in Mews meanwhile; not cutting")
		if err := in.journal.Abandon(cmd.ID, "closed in Mews while mews-keyd was down"); err != nil {
			log.Error().Err(err).Msg("recording abandoned command")
		}
	case !t.served():
		in.queueReport(cmd.ID, mews.CommandError, "mews-keyd no longer serves this key cutter; please cut the key again", log)
	case err != nil:
		in.queueReport(cmd.ID, mews.CommandError, "the key data sent by Mews could not be read", log)
	case limit > 0 && age > limit:
		// The guest has waited through the restart; the same age rule as
		// for a new command keeps a card from being cut for nobody.
		in.queueReport(cmd.ID, mews.CommandCancelled, tooOldNote(age, limit), log)
	default:
		st, ref := in.stationOf(t, data)
		if ref != nil {
			log.Warn().AnErr("cause", ref.cause).Str("note", ref.note).Msg("resumed command not encoded")
			in.queueReport(cmd.ID, mews.CommandError, ref.note, log)
			return
		}
		log.Info().Msg("resuming a command accepted before the restart")
		st.enqueue(job{cmd: *cmd, data: data, seen: at.seen, io: at.io})
	}
}

// maxClockSkew is how far this machine's clock may be from Mews's before
// it is worth a warning: key command ages are measured by Mews's clock, but
// digital key validity and the logs use ours.
const maxClockSkew = time.Minute

// warnClockSkew logs a warning when this machine's clock is off Mews's.
func (in *intake) warnClockSkew() {
	if skew, known := in.api.ClockSkew(); known && skew.Abs() > maxClockSkew {
		in.log.Warn().Str("skew", skewWords(skew)).
			Msg("this machine's clock is off Mews's; key command ages use Mews's clock, but fix the clock (NTP) for the logs and digital key times")
	}
}

// skewWords says which way a clock is off: "31m0s behind Mews".
func skewWords(skew time.Duration) string {
	if skew > 0 {
		return skew.Round(time.Second).String() + " behind Mews"
	}
	return (-skew).Round(time.Second).String() + " ahead of Mews"
}

// commandEvent decides whether an event is worth a fetch. Pending and
// Received commands can need us, and Processing ones the journal does not
// know (intake.go); our own Processing/Processed updates come back as
// events too and must cost nothing.
func (in *intake) event(ev mews.Event, at time.Time) {
	switch mews.CommandState(ev.State) {
	case mews.CommandPending, mews.CommandReceived:
		in.hints.Add(ev.ID, at)
	case mews.CommandProcessing:
		in.processingEvent(ev.ID, at)
	case mews.CommandCancelled:
		in.cancelledEvent(ev.ID)
	default:
		in.log.Debug().Str(fieldCommand, ev.ID).Str(fieldState, ev.State).Msg("command event needs no action")
	}
}
