// Package daemon is the service: it wires the Mews WebSocket and Connector
// API clients, the journal and the encoders into the key pipeline, and runs
// it until its context ends.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/config"
	"github.com/mews-keyd/mews-keyd/daemon/digitalkeys"
	"github.com/mews-keyd/mews-keyd/daemon/hints"
	"github.com/mews-keyd/mews-keyd/daemon/journal"
	"github.com/mews-keyd/mews-keyd/daemon/retry"
	"github.com/mews-keyd/mews-keyd/daemon/status"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Log field names, shared by every line the daemon writes.
const (
	fieldCommand   = "command_id"
	fieldDevice    = "device"
	fieldEncoder   = "encoder"
	fieldLatencyMS = "latency_ms"
	fieldState     = "state"
)

// Deps are the daemon's collaborators that do not come from the config file.
type Deps struct {
	Logger  zerolog.Logger
	Version string
	// Now replaces the clock in tests; nil means time.Now.
	Now func() time.Time
	// OnEncoded, if set, is called after every encoder call with the time
	// from the first event to the call, for the demo and benchmarks.
	OnEncoded func(Outcome)
	// OnDigitalKey, if set, is called after every digital key operation
	// (and its write-back to Mews), for the demo and tests.
	OnDigitalKey func(DigitalOutcome)
	// ReportBackoff is the first step of the retry schedule of reports and
	// digital keys; zero means the production schedule (1 s doubling to
	// 5 min). Tests shorten it.
	ReportBackoff time.Duration
	// OnReady, if set, is called once the journal is open and recovered:
	// the service manager's readiness notification.
	OnReady func()
	// Registry receives the daemon's metrics; nil creates a private one.
	Registry *prometheus.Registry
}

// DigitalOutcome describes one digital key operation.
type DigitalOutcome = digitalkeys.Outcome

// Outcome describes one finished key command.
type Outcome struct {
	CommandID string
	Encoder   string
	State     mews.CommandState
	Note      string
	// Latency is from the event (or poll) that announced the command to the
	// encoder being called.
	Latency time.Duration
	// Queued is the part of Latency spent waiting behind other cards for
	// the same encoder.
	Queued time.Duration
	// IO is the part of Latency spent waiting on Mews and the disk: the
	// getAllByIds round trip, the journal writes, the Processing update.
	// Latency - Queued - IO is the daemon's own overhead.
	IO time.Duration
	// Duration is how long the encoder took.
	Duration time.Duration
}

// Daemon wires the parts and runs them; it does none of their work. Each
// part is a type that owns its goroutine and its state:
//   - the WebSocket client's reader hands events to the intake and the
//     digital-key pipeline (onEvents);
//   - intake: one goroutine admits commands into the stations' queues,
//     and applies reloads;
//   - station: one worker per encoder cuts its queue's cards in order
//     (cutter.encode);
//   - outbox: one goroutine delivers the final states to Mews;
//   - digitalkeys.Pipeline: one goroutine issues, changes and revokes
//     digital keys;
//   - runCompaction and the status server: one goroutine each.
//
// Run opens and recovers the journal, starts the stations and the outbox,
// then what feeds them (intake, digital keys, compaction, the WebSocket),
// and stops them the other way round: the feeders first, then the stations
// (the card in hand finishes), then the outbox (one last delivery).
type Daemon struct {
	cfg  *config.Config
	deps Deps
	log  zerolog.Logger
	// mewsErrLog is for the errors an outage repeats with every event or
	// poll: a few lines a minute say it all.
	mewsErrLog zerolog.Logger
	now        func() time.Time
	retry      retry.Schedule

	api      *mews.Client
	ws       *mews.WSClient
	registry *prometheus.Registry
	metrics  *status.Metrics
	// statusAddr is where /healthz is served, once it is.
	statusAddr atomic.Value
	journal    *journal.Journal
	// route is swapped whole by a reload, only on the intake goroutine;
	// anyone may read it.
	route atomic.Pointer[routing]
	// reloads carries Reload requests to the intake goroutine.
	reloads chan reloadRequest
	// reloadRejected is why the last reload failed, "" after a good one
	// (ReloadOutcome), for /healthz.
	reloadRejected atomic.Pointer[string]
	// startStation runs a station's worker once the station it replaces
	// (nil for none) has finished; set by Run, for reloads too.
	startStation func(st, replaces *station)
	dk           *digitalkeys.Pipeline // nil unless [digital_keys] is enabled

	updates *updates
	// Set by Run, once the journal is open.
	outbox *outbox
	intake *intake

	// connectedOnce tells a reconnect from the first connect; only the
	// WebSocket's reading goroutine touches it.
	connectedOnce bool
}

// New builds the daemon: clients, journal and encoders. Nothing is contacted
// yet; Run does that.
func New(cfg *config.Config, deps Deps) (*Daemon, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	d := &Daemon{
		cfg:        cfg,
		deps:       deps,
		log:        deps.Logger,
		mewsErrLog: deps.Logger.Sample(&zerolog.BurstSampler{Burst: 3, Period: time.Minute}),
		now:        deps.Now,
		retry:      retry.Schedule{Base: deps.ReportBackoff},
		reloads:    make(chan reloadRequest),
		registry:   deps.Registry,
		metrics:    status.NewMetrics(deps.Registry),
	}
	client := fmt.Sprintf("%s %s", cfg.Mews.Client, deps.Version)
	api, err := mews.NewClient(mews.ClientConfig{
		APIURL:        cfg.Mews.APIURL,
		ClientToken:   cfg.Mews.ClientToken,
		AccessToken:   cfg.Mews.AccessToken,
		Client:        client,
		RequestLimit:  cfg.Mews.RequestLimit,
		RequestWindow: cfg.Mews.RequestWindow.D(),
		Logger:        d.log,
		OnRequest:     func(op string, status int, _ time.Duration) { d.metrics.APIRequest(op, status) },
	})
	if err != nil {
		return nil, fmt.Errorf("mews api: %w", err)
	}
	d.api = api
	d.updates = &updates{api: api, log: d.log}
	ws, err := mews.NewWSClient(mews.WSConfig{
		URL:         cfg.Mews.WSURL,
		ClientToken: cfg.Mews.ClientToken,
		AccessToken: cfg.Mews.AccessToken,
		Logger:      d.log,
	})
	if err != nil {
		return nil, fmt.Errorf("mews websocket: %w", err)
	}
	d.ws = ws
	route, _, err := d.buildRouting(cfg, nil)
	if err != nil {
		return nil, err
	}
	d.route.Store(route)
	if err := d.openDigital(); err != nil {
		d.closeEncoders()
		return nil, err
	}
	return d, nil
}

// closeEncoders closes the stations of the current routing; stations a
// reload retired close themselves once drained.
func (d *Daemon) closeEncoders() {
	for _, st := range d.route.Load().all() {
		st.close()
	}
}

// Run runs the pipeline until ctx ends, then shuts down in order: intake
// stops, in-flight encodes finish (bounded by their timeout), pending
// reports get one last try, the WebSocket closes normally, the journal is
// flushed. It returns nil on a clean shutdown.
func (d *Daemon) Run(ctx context.Context) error {
	j, err := journal.Open(d.cfg.Daemon.StateDir, journal.Options{
		History: d.cfg.Daemon.History.D(),
		Logger:  d.log,
		Now:     d.now,
	})
	if err != nil {
		d.closeEncoders()
		return err
	}
	d.journal = j
	d.outbox = newOutbox(j, d.updates, d.metrics, d.retry, d.now, d.log)
	d.intake = d.newIntake()
	defer func() {
		if err := j.Close(); err != nil {
			d.log.Error().Err(err).Msg("closing journal")
		}
	}()
	defer d.closeEncoders()

	if err := d.recover(); err != nil {
		return err
	}
	var side sync.WaitGroup
	defer side.Wait()
	if addr := d.cfg.Daemon.StatusListen; addr != "" {
		srv, err := status.NewServer(addr, d.cfg.Daemon.StatusAllowRemote, d, d.registry, d.log)
		if err != nil {
			return fmt.Errorf("status endpoint: %w", err)
		}
		d.statusAddr.Store(srv.Addr())
		side.Go(func() {
			if err := srv.Run(ctx); err != nil {
				d.log.Error().Err(err).Msg("status endpoint stopped")
			}
		})
	}
	if d.deps.OnReady != nil {
		d.deps.OnReady()
	}

	// Stations stop taking cards as soon as ctx ends; the card being
	// encoded finishes (encode detaches it from ctx). The outbox outlives
	// them, to report those last cards.
	cut := d.newCutter()
	var work sync.WaitGroup
	d.startStation = func(st, replaces *station) {
		work.Go(func() {
			if replaces != nil {
				select {
				case <-replaces.finished:
				case <-ctx.Done():
					// runStation returns at once, closing st if retired.
				}
			}
			cut.runStation(ctx, st)
		})
	}
	for _, st := range d.route.Load().stations {
		d.startStation(st, nil)
	}
	var outbox sync.WaitGroup
	outboxCtx, stopOutbox := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOutbox()
	outbox.Go(func() { d.outbox.run(outboxCtx) })

	var feeding sync.WaitGroup
	feeding.Go(func() { d.intake.run(ctx) })
	feeding.Go(func() { d.runCompaction(ctx) })
	if d.dk != nil {
		feeding.Go(func() { d.dk.Run(ctx, j) })
	}
	wsErr := d.ws.Run(ctx, mews.WSHandler{
		OnConnect:    d.onConnect,
		OnEvents:     d.onEvents,
		OnDisconnect: d.onDisconnect,
	})
	feeding.Wait()

	d.log.Info().Msg("shutting down: letting in-flight encodes finish")
	work.Wait()
	stopOutbox()
	outbox.Wait()
	if wsErr != nil && !errors.Is(wsErr, context.Canceled) {
		return wsErr
	}
	return nil
}

// newIntake gives the intake the journal and outbox Run opened.
func (d *Daemon) newIntake() *intake {
	in := &intake{journal: d.journal, api: d.api, outbox: d.outbox, route: &d.route, log: d.log, errLog: d.mewsErrLog,
		now: d.now, maxAge: d.cfg.Mews.MaxCommandAge.D(), reconcile: d.cfg.Mews.ReconcileInterval.D(),
		reloads: d.reloads, applyReload: d.applyReload,
		hints: hints.New(), catchUpCh: make(chan struct{}, 1), resume: map[string]bool{}, handed: map[string]*station{}}
	in.beat.Store(time.Now().UnixNano())
	return in
}

// newCutter gives the stations the journal and outbox Run opened.
func (d *Daemon) newCutter() *cutter {
	return &cutter{journal: d.journal, updates: d.updates, outbox: d.outbox, metrics: d.metrics,
		rooms: func() map[string]string { return d.route.Load().rooms }, now: d.now, onEncoded: d.deps.OnEncoded}
}

// StatusAddr returns the address /healthz and /metrics are served on, or ""
// when status_listen is off or Run has not opened it yet.
func (d *Daemon) StatusAddr() string {
	a, _ := d.statusAddr.Load().(string)
	return a
}

func (d *Daemon) onConnect() {
	if d.connectedOnce {
		d.metrics.Reconnect()
	}
	d.connectedOnce = true
	d.log.Info().Msg("connected to Mews; catching up with active commands")
	d.intake.requestCatchUp()
	if d.dk != nil {
		d.dk.Connected()
	}
}

func (d *Daemon) onDisconnect(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, mews.ErrReconnectRequested) {
		return
	}
	d.log.Warn().Err(err).Msg("disconnected from Mews; reconnecting")
}

func (d *Daemon) onEvents(events []mews.Event) {
	at := d.now()
	for _, ev := range events {
		d.metrics.Event(string(ev.Type))
		switch ev.Type {
		case mews.EventDeviceCommand:
			d.intake.event(ev, at)
		case mews.EventReservation, mews.EventResource:
			d.digitalEvent(ev, at)
		default:
			d.log.Debug().Str("type", string(ev.Type)).Str("id", ev.ID).Msg("event ignored")
		}
	}
}
