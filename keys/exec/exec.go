// Package exec is the encoder driver that runs a vendor program for every
// key operation (SPEC §6): the request as one JSON object on stdin, the
// answer as one JSON object on stdout. It registers as "exec".
package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	osexec "os/exec"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

// Log field names.
const (
	fieldProgram        = "program"
	fieldOp             = "op"
	fieldIdempotencyKey = "idempotency_key"
	fieldStderr         = "stderr"
	fieldTruncated      = "truncated"
)

func init() { keys.Register("exec", keys.DriverOf(func() Config { return Config{} }, New)) }

// Config is the encoder's TOML table.
type Config struct {
	// Command is the program and its arguments; no shell is involved.
	Command []string `toml:"command"`
	// Env holds the program's variables beyond the few it inherits (see
	// inherited): the daemon's own environment holds the Mews tokens.
	Env map[string]string `toml:"env"`
}

// Validate checks what TOML cannot.
func (c *Config) Validate() error {
	if len(c.Command) == 0 || strings.TrimSpace(c.Command[0]) == "" {
		return errors.New("command: must not be empty")
	}
	for name := range c.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return fmt.Errorf("env: %q is not a valid variable name", name)
		}
		// Case-blind because Windows variable names are.
		if strings.HasPrefix(strings.ToUpper(name), mewsPrefix) {
			return fmt.Errorf("env: %q: %s variables are the daemon's (its Mews tokens) and are never passed to the program", name, mewsPrefix)
		}
	}
	return nil
}

const (
	// An answer is a few keys; anything near this is not an answer.
	maxStdout = 1 << 20
	// Enough for a vendor's error trace in the debug log.
	maxStderr = 64 << 10
	// How long to wait for the program's pipes to close once it has exited
	// or been killed, in case a descendant escaped the kill and holds them.
	pipeGrace = 2 * time.Second
	who       = "encoder program"
	// mewsPrefix starts the names of the daemon's token variables.
	mewsPrefix = "MEWS_"
)

// Encoder runs the configured program, one operation at a time.
type Encoder struct {
	path string
	args []string
	env  []string
	log  zerolog.Logger
	// station admits one operation at a time: the program drives one
	// encoder. A channel rather than a mutex so that waiting honours ctx.
	station chan struct{}
}

var (
	_ keys.Encoder = (*Encoder)(nil)
	_ keys.Updater = (*Encoder)(nil)
	_ keys.Revoker = (*Encoder)(nil)
)

// New checks that the program exists and returns an encoder running it.
func New(cfg Config, env keys.Env) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	path, err := osexec.LookPath(cfg.Command[0])
	if err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	return &Encoder{
		path:    path,
		args:    cfg.Command[1:],
		env:     environ(cfg.Env),
		log:     env.Logger.With().Str(fieldProgram, path).Logger(),
		station: make(chan struct{}, 1),
	}, nil
}

// Issue runs the program with operation "issue".
func (e *Encoder) Issue(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, wire.Issue, req)
}

// Update runs the program with operation "update".
func (e *Encoder) Update(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, wire.Update, req)
}

// Revoke runs the program with operation "revoke".
func (e *Encoder) Revoke(ctx context.Context, req keys.Request) (keys.Result, error) {
	return e.run(ctx, wire.Revoke, req)
}

// Close has nothing to release: every program has ended by the time its
// operation returns.
func (e *Encoder) Close() error { return nil }

func (e *Encoder) run(ctx context.Context, op wire.Operation, req keys.Request) (keys.Result, error) {
	began := time.Now()
	select {
	case e.station <- struct{}{}:
	case <-ctx.Done():
		return keys.Result{}, wire.NotStarted(ctx)
	}
	defer func() { <-e.station }()
	if ctx.Err() != nil {
		return keys.Result{}, wire.NotStarted(ctx)
	}

	body, err := json.Marshal(wire.NewRequest(op, req))
	if err != nil {
		return keys.Result{}, keys.Failf("could not encode the request: %v", err)
	}
	var stdout, stderr capped
	stdout.max, stderr.max = maxStdout, maxStderr
	cmd := osexec.CommandContext(ctx, e.path, e.args...)
	cmd.Env = e.env
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = pipeGrace
	tree, err := newTree(cmd)
	if err != nil {
		return keys.Result{}, keys.Failf("could not prepare the encoder program: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tree.close()
		return keys.Result{}, &keys.Error{Msg: "could not start the encoder program", Err: err}
	}
	tree.started(cmd)
	waitErr := cmd.Wait()
	tree.close()

	log := e.log.With().Str(fieldOp, string(op)).Str(fieldIdempotencyKey, req.IdempotencyKey).Logger()
	if stderr.buf.Len() > 0 {
		// Vendors print guest names on stderr as readily as anything else.
		log.Debug().Bool(fieldTruncated, stderr.over).Str(fieldStderr, stderr.buf.String()).Msg("encoder program stderr")
	}
	return e.outcome(ctx, began, waitErr, &stdout)
}

func (e *Encoder) outcome(ctx context.Context, began time.Time, waitErr error, stdout *capped) (keys.Result, error) {
	// A program that exited 0 answered, even if ctx ran out just after.
	if waitErr != nil && !errors.Is(waitErr, osexec.ErrWaitDelay) {
		if ctx.Err() != nil {
			return keys.Result{}, wire.NoAnswer(ctx, who, began)
		}
		var exit *osexec.ExitError
		if !errors.As(waitErr, &exit) {
			return keys.Result{}, wire.Invalid(who, waitErr)
		}
		// A refusal on stdout explains the exit status better than the
		// number does, and says nothing was done.
		if _, err := wire.ParseAnswer(stdout.buf.Bytes()); isRefusal(err) && !stdout.over {
			return keys.Result{}, err
		}
		if exit.ExitCode() < 0 {
			return keys.Result{}, &keys.Error{Msg: "encoder program crashed", MaybeCut: true, Err: waitErr}
		}
		return keys.Result{}, &keys.Error{
			Msg:      fmt.Sprintf("encoder program exited with status %d", exit.ExitCode()),
			MaybeCut: true,
		}
	}
	if stdout.over {
		return keys.Result{}, wire.Invalid(who, fmt.Errorf("more than %d bytes on stdout", maxStdout))
	}
	res, err := wire.ParseAnswer(stdout.buf.Bytes())
	if errors.Is(err, wire.ErrNoValidAnswer) {
		return keys.Result{}, wire.Invalid(who, err)
	}
	return res, err
}

func isRefusal(err error) bool {
	var ke *keys.Error
	return errors.As(err, &ke) && !ke.MaybeCut
}

// capped keeps the first max bytes written and swallows the rest, so that
// a chatty program neither fills our memory nor blocks on a full pipe. The
// buffer is a field, not embedded, so that io.Copy cannot bypass Write
// through bytes.Buffer's ReadFrom.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if len(p) > room {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}
