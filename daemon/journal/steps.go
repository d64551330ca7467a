package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Operation names, as they appear in errors.
const (
	opAccept       = "accept"
	opIgnore       = "ignore"
	opStartEncode  = "start encode"
	opFinishEncode = "finish encode"
	opQueueReport  = "queue report"
	opReportFailed = "record failed report"
	opMarkReported = "mark reported"
	opAbandon      = "abandon"
	// Accept and start encode in one write.
	opAcceptStarted = "accept and start encode"
	opWithdraw      = "withdraw"
)

// Get returns the entry for a command id.
func (j *Journal) Get(id string) (Entry, bool, error) {
	pending, startedOnly := j.startedOnly.get(id)
	var e Entry
	var found bool
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCommands).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		var err error
		e, err = decodeEntry([]byte(id), v)
		return err
	})
	if err != nil {
		return Entry{}, false, j.readErr("get "+id, err)
	}
	// A start only the start log has counts as written.
	if startedOnly && !found {
		return pending.entry(), true, nil
	}
	if startedOnly {
		pending.startQueued(&e)
	}
	return e, found, nil
}

// Accept records a command for one of our key cutters, queued for encoder.
// It is idempotent: for a command already in the journal (in any step) it
// changes nothing and returns the existing entry with isNew false — that is
// the deduplication of repeated events and polls.
func (j *Journal) Accept(id, encoder, device string) (e Entry, isNew bool, err error) {
	return j.create(opAccept, Entry{CommandID: id, Encoder: encoder, Device: device, Step: StepAccepted})
}

// AcceptStarted records a command as accepted and its encode as started,
// for a command whose encoder is free at once. The same rule as
// StartEncode holds: call the encoder only after it returned nil with
// isNew true (false: the journal had the command already, and whoever put
// it there handles it).
//
// It returns once the start log has the step: one flush, where a
// journal.db commit takes two. journal.db takes the step with the
// command's next one, in the same transaction.
func (j *Journal) AcceptStarted(id, encoder, device string) (isNew bool, err error) {
	if j.starts == nil || j.startsFailed.Load() {
		return j.acceptStartedNow(id, encoder, device)
	}
	if _, known, err := j.Get(id); err != nil || known {
		return false, err
	}
	logged, err := j.logStart(opAcceptStarted, startRecord{at: j.now(), id: id, encoder: encoder, device: device}, 0)
	if !logged && err == nil {
		return j.acceptStartedNow(id, encoder, device)
	}
	return err == nil, err
}

// logStart puts a start in the start log and holds it for journal.db;
// from is the step the command leaves (none for a new one). logged is
// false with no error when the record does not fit a slot: the caller
// takes the slow way.
func (j *Journal) logStart(op string, rec startRecord, from Step) (logged bool, err error) {
	slot, err := j.starts.write(rec)
	if errors.Is(err, errRecordTooLong) {
		return false, nil
	}
	if err != nil {
		return false, j.wrapErr(op, rec.id, err)
	}
	j.startedOnly.add(pendingStart{rec: rec, slot: slot})
	j.mu.Lock()
	if from != 0 {
		j.counts[from]--
	}
	j.counts[StepEncodeStarted]++
	j.mu.Unlock()
	return true, nil
}

// acceptStartedNow commits the step to journal.db before returning.
func (j *Journal) acceptStartedNow(id, encoder, device string) (bool, error) {
	_, isNew, err := j.create(opAcceptStarted, Entry{CommandID: id, Encoder: encoder, Device: device, Step: StepEncodeStarted})
	if err == nil {
		j.startsFailed.Store(false)
	}
	return isNew, err
}

// Withdraw makes a command whose encode was recorded as started final
// without a report, when the encoder was never called after all: Mews
// closed the command (e.g. cancelled it) just before.
func (j *Journal) Withdraw(id, reason string) error {
	return j.transition(opWithdraw, id, StepEncodeStarted, func(e *Entry, _ time.Time) {
		e.Step = StepIgnored
		e.Reason = reason
	})
}

// Ignore records a command we leave untouched, such as one for a device
// that is not ours, so it is logged and looked at once. Like Accept it is
// idempotent and returns isNew false for a known command.
func (j *Journal) Ignore(id, device, reason string) (e Entry, isNew bool, err error) {
	return j.create(opIgnore, Entry{CommandID: id, Device: device, Step: StepIgnored, Reason: reason})
}

func (j *Journal) create(op string, e Entry) (Entry, bool, error) {
	if e.CommandID == "" {
		return Entry{}, false, fmt.Errorf("%s: empty command id", op)
	}
	if _, ok := j.startedOnly.get(e.CommandID); ok {
		known, _, err := j.Get(e.CommandID)
		return known, false, err
	}
	now := j.now()
	isNew := false
	err := j.db.Update(func(tx *bolt.Tx) error {
		var err error
		e, isNew, err = insert(tx, e, now)
		return err
	})
	if err != nil {
		return Entry{}, false, j.wrapErr(op, e.CommandID, err)
	}
	if isNew {
		j.mu.Lock()
		j.counts[e.Step]++
		j.mu.Unlock()
	}
	return e, isNew, nil
}

// insert puts a new command's entry, its steps dated now; for a command
// already there it returns the entry there instead.
func insert(tx *bolt.Tx, e Entry, now time.Time) (Entry, bool, error) {
	commands := tx.Bucket(bucketCommands)
	if v := commands.Get([]byte(e.CommandID)); v != nil {
		e, err := decodeEntry([]byte(e.CommandID), v)
		return e, false, err
	}
	seq, err := commands.NextSequence()
	if err != nil {
		return Entry{}, false, err
	}
	e.Seq = seq
	switch e.Step {
	case StepAccepted:
		e.AcceptedAt = now
	case StepEncodeStarted:
		e.AcceptedAt, e.EncodeStartedAt = now, now
	}
	return e, true, putEntry(tx, &e, now)
}

// StartEncode records that the encoder is about to be called. Call the
// encoder only after it returned nil: an error means the step is not on
// disk, and an encode now could not be told apart from none after a crash.
//
// Like AcceptStarted, it returns once the start log has the step, and
// journal.db takes it with the command's next one.
func (j *Journal) StartEncode(id string) error {
	if j.starts == nil || j.startsFailed.Load() {
		return j.startEncodeNow(id)
	}
	e, found, err := j.Get(id)
	switch {
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("%s %s: %w", opStartEncode, id, ErrNotFound)
	case e.Step != StepAccepted:
		return fmt.Errorf("%w: cannot %s command %s in step %s", ErrInvalidTransition, opStartEncode, id, e.Step)
	}
	logged, err := j.logStart(opStartEncode, startRecord{at: j.now(), id: id, encoder: e.Encoder, device: e.Device}, StepAccepted)
	if !logged && err == nil {
		return j.startEncodeNow(id)
	}
	return err
}

// startEncodeNow commits the step to journal.db before returning.
func (j *Journal) startEncodeNow(id string) error {
	err := j.transition(opStartEncode, id, StepAccepted, func(e *Entry, now time.Time) {
		e.Step = StepEncodeStarted
		e.EncodeStartedAt = now
	})
	if err == nil {
		j.startsFailed.Store(false)
	}
	return err
}

// FinishEncode records the encoder's result and queues the Mews state
// update (state and notes) in one transaction, so there is no moment in
// which a finished encode is on disk without its report. After a restart
// the command is reported from here, never encoded again. Recovery also
// uses it for an interrupted encode, with a result that says so.
func (j *Journal) FinishEncode(id string, r Result, state, notes string) error {
	return j.transition(opFinishEncode, id, StepEncodeStarted, func(e *Entry, now time.Time) {
		e.EncodeFinishedAt = now
		e.Result = &r
		queue(e, state, notes, now)
	})
}

// QueueReport queues a final state for an accepted command that will not
// be encoded (too old, no usable key data), due now.
func (j *Journal) QueueReport(id, state, notes string) error {
	return j.transition(opQueueReport, id, StepAccepted, func(e *Entry, now time.Time) {
		queue(e, state, notes, now)
	})
}

func queue(e *Entry, state, notes string, now time.Time) {
	e.Step = StepReportQueued
	e.ReportQueuedAt = now
	e.Report = &Report{State: state, Notes: notes}
	e.NextAttempt = now
}

// ReportFailed records a failed delivery of the queued report and when to
// try again; the report stays in the outbox.
func (j *Journal) ReportFailed(id string, cause error, next time.Time) error {
	return j.transition(opReportFailed, id, StepReportQueued, func(e *Entry, _ time.Time) {
		e.Attempts++
		e.NextAttempt = next.UTC().Round(0)
		if cause != nil {
			e.LastError = cause.Error()
		}
	})
}

// MarkReported makes a queued report final: Mews accepted it, or told us
// the command no longer exists or is already in a final state. The key
// values are forgotten: a PIN code is a credential, and nothing needs it
// once Mews has the outcome.
func (j *Journal) MarkReported(id string) error {
	return j.transition(opMarkReported, id, StepReportQueued, func(e *Entry, _ time.Time) {
		e.Step = StepReported
		if e.Result != nil {
			for i := range e.Result.Keys {
				e.Result.Keys[i].Value = ""
			}
		}
	})
}

// Abandon makes an accepted command final without encoding or reporting
// it, for a command Mews closed (e.g. cancelled) while it waited in our
// queue.
func (j *Journal) Abandon(id, reason string) error {
	return j.transition(opAbandon, id, StepAccepted, func(e *Entry, _ time.Time) {
		e.Step = StepIgnored
		e.Reason = reason
	})
}

// transition applies one step change in one transaction, refusing it
// unless the command is in step from.
func (j *Journal) transition(op, id string, from Step, apply func(e *Entry, now time.Time)) error {
	pending, startedOnly := j.startedOnly.get(id)
	now := j.now()
	var before, after Step
	err := j.db.Update(func(tx *bolt.Tx) error {
		var e Entry
		if startedOnly {
			// The start, from the start log, goes in with this step.
			var err error
			if e, _, err = withStart(tx, pending); err != nil {
				return err
			}
		} else if v := tx.Bucket(bucketCommands).Get([]byte(id)); v != nil {
			var err error
			if e, err = decodeEntry([]byte(id), v); err != nil {
				return err
			}
		} else {
			return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
		}
		if e.Step != from {
			return fmt.Errorf("%w: cannot %s command %s in step %s", ErrInvalidTransition, op, id, e.Step)
		}
		before = e.Step
		apply(&e, now)
		after = e.Step
		if after.Final() {
			if err := tx.Bucket(bucketOpen).Delete(seqKey(e.Seq)); err != nil {
				return err
			}
		}
		return putEntry(tx, &e, now)
	})
	if err != nil {
		err = j.wrapErr(op, id, err)
		if startedOnly && errors.Is(err, ErrWriteFailed) {
			// The start stays in the start log for the next start to
			// report; no further card starts on a journal.db that
			// cannot take it.
			j.startsFailed.Store(true)
		}
		return err
	}
	if startedOnly {
		j.startedOnly.remove(id)
		j.starts.release(pending.slot)
	}
	j.mu.Lock()
	j.counts[before]--
	j.counts[after]++
	j.mu.Unlock()
	return nil
}

// putEntry writes e and keeps the open and final indexes in step with it.
func putEntry(tx *bolt.Tx, e *Entry, now time.Time) error {
	if e.Step.Final() {
		e.Final = true
		e.FinalAt = now
		if err := tx.Bucket(bucketFinal).Put(finalKey(now, e.CommandID), nil); err != nil {
			return err
		}
	} else if err := tx.Bucket(bucketOpen).Put(seqKey(e.Seq), []byte(e.CommandID)); err != nil {
		return err
	}
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketCommands).Put([]byte(e.CommandID), v)
}

func decodeEntry(id, v []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return Entry{}, fmt.Errorf("entry %q: %w", id, err)
	}
	if e.CommandID != string(id) || e.Step == 0 {
		return Entry{}, fmt.Errorf("entry %q: malformed (id %q, step %s)", id, e.CommandID, e.Step)
	}
	return e, nil
}

// Unfinished returns the commands a restart must deal with, in Seq (accept)
// order: StepAccepted ones are still to be encoded, StepEncodeStarted ones
// were interrupted. (Finished encodes are already in the Outbox.)
func (j *Journal) Unfinished() ([]Entry, error) {
	return j.openEntries("list unfinished", func(s Step) bool {
		return s == StepAccepted || s == StepEncodeStarted
	})
}

// Outbox returns the queued reports, the earliest due first (Seq breaks
// ties, so reports go out in accept order).
func (j *Journal) Outbox() ([]Entry, error) {
	out, err := j.openEntries("list outbox", func(s Step) bool { return s == StepReportQueued })
	slices.SortStableFunc(out, func(a, b Entry) int { return a.NextAttempt.Compare(b.NextAttempt) })
	return out, err
}

func (j *Journal) openEntries(op string, keep func(Step) bool) ([]Entry, error) {
	var out []Entry
	// Starts only the start log has count as written; the ones journal.db
	// does not have at all come last.
	starts := map[string]pendingStart{}
	for _, p := range j.startedOnly.all() {
		starts[p.rec.id] = p
	}
	err := j.db.View(func(tx *bolt.Tx) error {
		commands := tx.Bucket(bucketCommands)
		return tx.Bucket(bucketOpen).ForEach(func(_, id []byte) error {
			v := commands.Get(id)
			if v == nil {
				return fmt.Errorf("open index names %q, which is not in the journal", id)
			}
			e, err := decodeEntry(id, v)
			if err != nil {
				return err
			}
			if p, ok := starts[e.CommandID]; ok {
				delete(starts, e.CommandID)
				p.startQueued(&e)
			}
			if keep(e.Step) {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, j.readErr(op, err)
	}
	for _, p := range starts {
		if e := p.entry(); keep(e.Step) {
			out = append(out, e)
		}
	}
	return out, nil
}

// now is the journal clock without the monotonic reading, so entries read
// back compare equal to the ones returned.
func (j *Journal) now() time.Time { return j.opts.Now().UTC().Round(0) }
