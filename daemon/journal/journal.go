// Package journal is mews-keyd's durable record of every device command:
// how far it got (accepted, encode started, encode finished, report queued,
// reported) so that after a crash or restart no card is encoded twice and no
// command is left without a final state in Mews.
//
// The rule for callers is write before act: commit the step, then do what it
// announces. Every method that changes a command is on disk (fsynced) when
// it returns; if it returns an error, nothing changed and the caller must
// not act (in particular: no encode without a successful StartEncode or
// AcceptStarted). Each is one bbolt transaction, except the two that
// start an encode, StartEncode and AcceptStarted (an idle encoder's fast
// path): they are on disk once the start log (state_dir/starts.log, see
// startlog.go) has them, one flush instead of bbolt's two, and reach
// journal.db with the command's next step.
//
// The store is go.etcd.io/bbolt rather than files of our own or SQLite:
//   - one file (state_dir/journal.db) that an operator can back up or move
//     aside (beside it, starts.log holds at most the encodes of the last
//     moments);
//   - ACID transactions with copy-on-write pages and two meta pages, so a
//     crash or power cut leaves the last committed transaction, never a
//     half-written entry;
//   - fsync (fdatasync on Linux, FlushFileBuffers on Windows) on every
//     commit by default — the guarantee the pipeline relies on;
//   - an exclusive file lock (flock / LockFileEx) held while open, so a
//     second mews-keyd on the same state dir fails at start instead of
//     double-encoding;
//   - pure Go (no cgo), so the Windows and Linux builds stay plain
//     cross-compiles;
//   - a small, mature code base (etcd's fork of boltdb) with a consistency
//     checker we run at open.
package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the journal's file inside the state directory.
const FileName = "journal.db"

// Options tune Open. The zero value is ready to use.
type Options struct {
	// History is how long final entries are kept (and so still deduplicate
	// late events) before Compact removes them. Default 7 days.
	History time.Duration
	// Logger receives the loud error when a corrupt journal is moved aside.
	Logger zerolog.Logger
	// LockTimeout bounds the wait for the file lock. Default 1s.
	LockTimeout time.Duration
	// Now is the clock for step timestamps and compaction. Default time.Now.
	Now func() time.Time
	// UnsafeNoSync skips fsync on commit. A crash may then lose or undo
	// steps and a card may be cut twice: for tests and benchmarks only.
	UnsafeNoSync bool

	// openFile lets tests hand bbolt a file on which writes fail.
	openFile func(string, int, os.FileMode) (*os.File, error)
}

// Errors callers can test for with errors.Is.
var (
	// ErrLocked: another process (another mews-keyd) holds the journal.
	ErrLocked = errors.New("journal is locked by another process")
	// ErrNotFound: the command id is not in the journal.
	ErrNotFound = errors.New("command not in journal")
	// ErrInvalidTransition: the step asked for does not follow from the
	// command's current step — a pipeline bug, never to be retried.
	ErrInvalidTransition = errors.New("invalid journal transition")
	// ErrWriteFailed: the journal could not be written (disk full, I/O
	// error). Nothing changed; retrying later may succeed.
	ErrWriteFailed = errors.New("journal write failed")
	// ErrClosed: the journal was used after Close.
	ErrClosed = errors.New("journal is closed")
)

// Bucket names. "open" indexes the non-final commands by Seq so that the
// pipeline's frequent Outbox and Unfinished calls read only those; "final"
// indexes final commands by the time they became final so that Compact
// reads only the expired ones.
var (
	bucketCommands = []byte("commands")
	bucketOpen     = []byte("open")
	bucketFinal    = []byte("final")
	bucketMeta     = []byte("meta")
	allBuckets     = [][]byte{bucketCommands, bucketOpen, bucketFinal, bucketMeta}
)

// Journal is the open journal. Its methods are safe for concurrent use;
// writes are serialised by bbolt.
type Journal struct {
	db         *bolt.DB
	path       string
	opts       Options
	log        zerolog.Logger
	movedAside string

	mu     sync.Mutex
	counts [len(stepNames)]int

	// starts is the start log (nil with UnsafeNoSync); startedOnly holds
	// the commands whose start is in it and not yet in journal.db.
	starts      *startLog
	startedOnly startedOnly
	// startsFailed sends AcceptStarted the slow way after journal.db
	// could not take a start from the start log: the disk is full or
	// failing, and no further card may be cut on a record journal.db
	// cannot take.
	startsFailed atomic.Bool
}

// Open opens (or creates) dir/journal.db. If another process holds it, the
// error wraps ErrLocked. If the file is corrupt it is renamed to
// journal.db.corrupt-<UTC time>, a loud error is logged naming both files,
// and a fresh journal is opened; MovedAside then returns the new name.
func Open(dir string, opts Options) (*Journal, error) {
	if opts.History <= 0 {
		opts.History = 7 * 24 * time.Hour
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	j := &Journal{
		path: filepath.Join(dir, FileName),
		opts: opts,
		log:  opts.Logger.With().Str("component", "journal").Logger(),
	}

	err := j.open()
	var corrupt *corruptError
	if errors.As(err, &corrupt) {
		err = j.moveAside(corrupt)
		if err == nil {
			err = j.open()
		}
	}
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, lockedError{dir: dir}
	}
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", j.path, err)
	}
	if !opts.UnsafeNoSync {
		if err := j.openStarts(filepath.Join(dir, StartLogName)); err != nil {
			_ = j.db.Close()
			return nil, err
		}
	}
	return j, nil
}

// open checks every page and entry of an existing file, then opens it for
// writing and creates the buckets. Damage is reported as *corruptError;
// anything else (permissions, the lock) as itself, so that a journal is only
// ever moved aside for damage, never because it was busy or unreadable for
// other reasons.
func (j *Journal) open() error {
	counts, complete, err := j.check()
	if err != nil {
		return err
	}
	db, err := openBolt(j.path, &bolt.Options{
		Timeout:  j.opts.LockTimeout,
		NoSync:   j.opts.UnsafeNoSync,
		OpenFile: j.opts.openFile,
	})
	if err != nil {
		return err
	}
	if !complete {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		_ = db.Close()
		return err
	}
	j.db = db
	j.counts = counts
	return nil
}

// check verifies an existing journal read-only, and closes it whatever it
// finds. Opened for writing, a damaged file could not be moved aside
// exactly as it was: bbolt panics on a damaged freelist while opening, with
// the file still open, and Windows refuses to rename an open file; and on
// Windows bbolt first extends the file to its map size, so the copy kept
// for support would no longer be the original. Read-only, bbolt changes
// nothing and reads the freelist only inside verify, whose panics leave
// the *bolt.DB to close. A missing or empty file has nothing to check.
func (j *Journal) check() (counts [len(stepNames)]int, complete bool, err error) {
	fi, err := os.Stat(j.path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		// Opening for writing reports what is wrong with it, if anything.
		return counts, false, nil
	}
	db, err := openBolt(j.path, &bolt.Options{Timeout: j.opts.LockTimeout, ReadOnly: true, OpenFile: j.opts.openFile})
	if err != nil {
		return counts, false, err
	}
	counts, complete, err = verify(db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close after check: %w", cerr)
	}
	return counts, complete, err
}

// openBolt turns bbolt's complaints about a damaged file, including panics
// and memory faults while reading a broken mmap, into *corruptError.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, &corruptError{err: fmt.Errorf("bbolt panicked: %v", r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	if isDamage(err) {
		return nil, &corruptError{err: err}
	}
	return db, err
}

// isDamage lists the errors that mean the content is not a journal. It is a
// list of known cases, not "anything but I/O errors", because wrongly moving
// a journal aside forgets commands in progress while wrongly failing only
// stops the start with a message.
func isDamage(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
		errors.Is(err, berrors.ErrVersionMismatch) ||
		// bbolt has no sentinel for a file shorter than two pages; the
		// corruption tests pin this text.
		(err != nil && strings.HasPrefix(err.Error(), "file size too small"))
}

// verify reads every entry and runs bbolt's page checker, so damage shows
// at start-up rather than in the middle of an encode. It returns the number
// of entries per step. The cost is a few tens of milliseconds for a week
// of a busy hotel's commands. complete is false when buckets are missing,
// as in a new file.
func verify(db *bolt.DB) (counts [len(stepNames)]int, complete bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &corruptError{err: fmt.Errorf("reading journal panicked: %v", r)}
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		complete = true
		for _, name := range allBuckets {
			complete = complete && tx.Bucket(name) != nil
		}
		open := 0
		if b := tx.Bucket(bucketCommands); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				e, err := decodeEntry(k, v)
				if err != nil {
					return err
				}
				counts[e.Step]++
				if !e.Final {
					open++
				}
				return nil
			})
			if err != nil {
				return &corruptError{err: err}
			}
		}
		if b := tx.Bucket(bucketOpen); b != nil && b.Stats().KeyN != open {
			return &corruptError{err: fmt.Errorf("open index has %d entries, commands %d", b.Stats().KeyN, open)}
		}
		for cerr := range tx.Check() {
			if err == nil {
				err = &corruptError{err: cerr}
			}
		}
		return err
	})
	return counts, complete, err
}

func (j *Journal) moveAside(cause *corruptError) error {
	aside := j.path + ".corrupt-" + j.opts.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(j.path, aside); err != nil {
		return fmt.Errorf("journal %s is corrupt (%v) and could not be moved aside: %w", j.path, cause.err, err)
	}
	j.movedAside = aside
	j.log.Error().Err(cause.err).Str("path", j.path).Str("moved_to", aside).
		Msg("journal is corrupt: moved it aside and started a fresh one; commands in progress at the last stop are unknown — check the key cutters in Mews")
	return nil
}

// MovedAside returns where a corrupt journal was moved by Open, or "".
func (j *Journal) MovedAside() string { return j.movedAside }

// Path returns the journal file's path.
func (j *Journal) Path() string { return j.path }

// Close commits the starts only the start log has to journal.db, then
// closes the files and releases the lock.
func (j *Journal) Close() error {
	if j.starts != nil {
		var pending []startRecord
		for _, p := range j.startedOnly.all() {
			pending = append(pending, p.rec)
		}
		if _, err := j.commitStarts(pending); err != nil {
			// They stay in the start log, for the next Open.
			j.log.Error().Err(err).Msg("closing the journal")
		}
		if err := j.starts.close(); err != nil {
			return fmt.Errorf("close start log: %w", err)
		}
	}
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("close journal: %w", err)
	}
	return nil
}

// Stats describes the journal for /healthz and metrics.
type Stats struct {
	// Steps counts entries per step, final ones until they are compacted.
	Steps map[Step]int
	// Open counts entries that are not final.
	Open int
	// FileBytes is the size of journal.db. bbolt reuses freed pages but
	// never shrinks the file, so this follows the busiest History window.
	FileBytes int64
}

// Stats returns counts kept in memory and the current file size.
func (j *Journal) Stats() Stats {
	s := Stats{Steps: make(map[Step]int, len(stepNames))}
	j.mu.Lock()
	for _, step := range Steps() {
		s.Steps[step] = j.counts[step]
		if !step.Final() {
			s.Open += j.counts[step]
		}
	}
	j.mu.Unlock()
	if fi, err := os.Stat(j.path); err == nil {
		s.FileBytes = fi.Size()
	}
	return s
}

// Compact removes final entries that became final more than History ago.
// Afterwards a late event for such a command is treated as new, which is
// why History should be far longer than Mews keeps commands active.
func (j *Journal) Compact() (removed int, err error) {
	cutoff := j.opts.Now().Add(-j.opts.History)
	var gone [len(stepNames)]int
	err = j.db.Update(func(tx *bolt.Tx) error {
		final, commands := tx.Bucket(bucketFinal), tx.Bucket(bucketCommands)
		var expired [][]byte
		c := final.Cursor()
		for k, _ := c.First(); k != nil && finalKeyTime(k).Before(cutoff); k, _ = c.Next() {
			expired = append(expired, k)
		}
		// Deleting behind a bbolt cursor skips keys, hence two passes.
		for _, k := range expired {
			id := finalKeyID(k)
			if v := commands.Get(id); v != nil {
				e, err := decodeEntry(id, v)
				if err != nil {
					return err
				}
				gone[e.Step]++
				if err := commands.Delete(id); err != nil {
					return err
				}
			}
			if err := final.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, j.wrapErr("compact", "", err)
	}
	j.mu.Lock()
	for step, n := range gone {
		j.counts[step] -= n
		removed += n
	}
	j.mu.Unlock()
	return removed, nil
}

// wrapErr leaves the caller's own mistakes as they are and makes storage
// failures say what they mean for the hotel.
func (j *Journal) wrapErr(op, id string, err error) error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalidTransition):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	return &writeError{op: op, id: id, path: j.path, err: err}
}

func (j *Journal) readErr(op string, err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	return fmt.Errorf("journal %s: %w", op, err)
}

type corruptError struct{ err error }

func (e *corruptError) Error() string { return "journal is corrupt: " + e.err.Error() }
func (e *corruptError) Unwrap() error { return e.err }

type lockedError struct{ dir string }

func (e lockedError) Error() string {
	return fmt.Sprintf("state dir %s is in use by another mews-keyd (%s is locked)", e.dir, FileName)
}

func (lockedError) Is(target error) bool { return target == ErrLocked }

type writeError struct {
	op, id, path string
	err          error
}

func (e *writeError) Error() string {
	msg := fmt.Sprintf("journal write failed (%s", e.op)
	if e.id != "" {
		msg += " " + e.id
	}
	msg += fmt.Sprintf(", %s): %v", e.path, e.err)
	if e.op == opStartEncode {
		msg += " — no key will be encoded until the journal can be written"
	}
	return msg
}

func (e *writeError) Unwrap() error        { return e.err }
func (e *writeError) Is(target error) bool { return target == ErrWriteFailed }

// Index keys are big-endian so bbolt's byte order is numeric order.

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func finalKey(at time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), id...)
}

func finalKeyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
}

func finalKeyID(k []byte) []byte { return k[8:] }
