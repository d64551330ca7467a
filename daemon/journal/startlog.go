package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// StartLogName is the start log's file inside the state directory.
const StartLogName = "starts.log"

// The start log makes starting an encode (StartEncode, AcceptStarted)
// cost one flush where a bbolt commit costs two (its pages, then its meta
// page): the encoder may be called as soon as a fixed-size record saying
// "this command's encode started" is on disk. journal.db takes the step
// later, in the transaction of the command's next step (FinishEncode, or
// Withdraw), which saves it a commit of its own; Close commits what is
// left, and Open replays what a crash left, so an encode a crash
// interrupted is reported as interrupted, whichever of the two files had
// it.
//
// The file is preallocated and never grows, so a flush writes data only
// (fdatasync, no file-system metadata). Each record sits in its own slot
// with a checksum, so a torn write reads as an empty slot: its encoder was
// never called, because the write never returned. A slot is held from the
// start to the next step: one per encoder at most, far fewer than there
// are slots.
const (
	startSlotSize  = 256
	startSlotCount = 1024
	startMagic     = "mks1"
)

// startLog hands out slots and writes records.
type startLog struct {
	f *os.File

	mu     sync.Mutex
	next   int
	inUse  map[int]bool
	closed bool
}

// startRecord is what a slot holds.
type startRecord struct {
	at                  time.Time
	id, encoder, device string
}

var errRecordTooLong = errors.New("start record does not fit a slot")

// openStartLog opens (or creates and preallocates) the start log and
// returns the records it holds. The caller commits them to journal.db and
// then calls reset.
func openStartLog(path string, openFile func(string, int, os.FileMode) (*os.File, error)) (*startLog, []startRecord, error) {
	if openFile == nil {
		openFile = os.OpenFile
	}
	_, statErr := os.Stat(path)
	f, err := openFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open start log: %w", err)
	}
	l := &startLog{f: f, inUse: map[int]bool{}}
	if errors.Is(statErr, os.ErrNotExist) {
		// A new file must itself survive a power cut before any record in
		// it counts.
		if err := l.reset(); err != nil {
			_ = f.Close()
			return nil, nil, err
		}
		if err := syncDir(path); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("start log: %w", err)
		}
		return l, nil, nil
	}
	records, err := l.read()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return l, records, nil
}

// read returns the valid records, in slot order.
func (l *startLog) read() ([]startRecord, error) {
	buf := make([]byte, startSlotSize*startSlotCount)
	n, err := l.f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read start log: %w", err)
	}
	var out []startRecord
	for off := 0; off+startSlotSize <= n; off += startSlotSize {
		if r, ok := decodeStart(buf[off : off+startSlotSize]); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// reset empties every slot, on disk, once the records are in journal.db.
func (l *startLog) reset() error {
	if _, err := l.f.WriteAt(make([]byte, startSlotSize*startSlotCount), 0); err != nil {
		return fmt.Errorf("clear start log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("clear start log: %w", err)
	}
	return nil
}

// write puts r in a free slot and flushes it. It returns the slot, to be
// released once journal.db has the step.
func (l *startLog) write(r startRecord) (int, error) {
	rec, err := encodeStart(r)
	if err != nil {
		return 0, err
	}
	slot, err := l.take()
	if err != nil {
		return 0, err
	}
	if _, err := l.f.WriteAt(rec, int64(slot)*startSlotSize); err != nil {
		l.free(slot)
		return 0, err
	}
	if err := datasync(l.f); err != nil {
		l.free(slot)
		return 0, err
	}
	return slot, nil
}

func (l *startLog) take() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	for range startSlotCount {
		slot := l.next
		l.next = (l.next + 1) % startSlotCount
		if !l.inUse[slot] {
			l.inUse[slot] = true
			return slot, nil
		}
	}
	return 0, errors.New("every start log slot is in use")
}

// release clears and frees a slot once journal.db has its step. The
// clearing is not flushed: should it not reach the disk, the record
// replays into an entry that exists, which changes nothing.
func (l *startLog) release(slot int) {
	_, _ = l.f.WriteAt(make([]byte, startSlotSize), int64(slot)*startSlotSize)
	l.free(slot)
}

func (l *startLog) free(slot int) {
	l.mu.Lock()
	delete(l.inUse, slot)
	l.mu.Unlock()
}

func (l *startLog) close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.f.Close()
}

// A slot: magic, CRC-32C of the rest, Unix nanoseconds, then the command
// id, encoder and device, each behind its length; zeros after.
func encodeStart(r startRecord) ([]byte, error) {
	body := binary.BigEndian.AppendUint64(nil, uint64(r.at.UnixNano()))
	for _, s := range []string{r.id, r.encoder, r.device} {
		body = binary.AppendUvarint(body, uint64(len(s)))
		body = append(body, s...)
	}
	if len(startMagic)+4+len(body) > startSlotSize {
		return nil, errRecordTooLong
	}
	rec := make([]byte, startSlotSize)
	copy(rec, startMagic)
	copy(rec[8:], body)
	binary.BigEndian.PutUint32(rec[4:8], crc32.Checksum(rec[8:], castagnoli))
	return rec, nil
}

func decodeStart(slot []byte) (startRecord, bool) {
	if !bytes.Equal(slot[:4], []byte(startMagic)) || binary.BigEndian.Uint32(slot[4:8]) != crc32.Checksum(slot[8:], castagnoli) {
		return startRecord{}, false
	}
	rest := slot[16:]
	var fields [3]string
	for i := range fields {
		n, size := binary.Uvarint(rest)
		if size <= 0 || n > uint64(len(rest)-size) {
			return startRecord{}, false
		}
		fields[i] = string(rest[size : size+int(n)])
		rest = rest[size+int(n):]
	}
	if fields[0] == "" {
		return startRecord{}, false
	}
	at := time.Unix(0, int64(binary.BigEndian.Uint64(slot[8:16]))).UTC()
	return startRecord{at: at, id: fields[0], encoder: fields[1], device: fields[2]}, true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// openStarts opens the start log and commits what it holds to journal.db:
// encodes that started just before a crash, which the next start reports
// as interrupted.
func (j *Journal) openStarts(path string) error {
	l, records, err := openStartLog(path, j.opts.openFile)
	if err != nil {
		return err
	}
	j.starts = l
	delta, err := j.commitStarts(records)
	if err != nil {
		_ = l.close()
		return fmt.Errorf("replay start log %s: %w", path, err)
	}
	for step, n := range delta {
		j.counts[step] += n
	}
	if n := delta[StepEncodeStarted]; n > 0 {
		j.log.Info().Int("commands", n).Msg("the start log had encodes journal.db did not: they were interrupted by the stop")
	}
	return nil
}

// commitStarts puts the starts journal.db does not have into it, in one
// transaction, and then empties the start log. It returns how the entries
// per step changed.
func (j *Journal) commitStarts(records []startRecord) (delta [len(stepNames)]int, err error) {
	if len(records) == 0 {
		return delta, nil
	}
	err = j.db.Update(func(tx *bolt.Tx) error {
		for _, r := range records {
			_, before, err := withStart(tx, pendingStart{rec: r})
			if err != nil {
				return err
			}
			if before != StepEncodeStarted {
				delta[before]--
				delta[StepEncodeStarted]++
			}
		}
		return nil
	})
	if err != nil {
		return delta, err
	}
	return delta, j.starts.reset()
}

// withStart writes a start from the start log into journal.db and returns
// the command's entry with it. A command journal.db does not have is put
// in as started; a queued one (accepted) moves to started; one further
// along is left as it is. before is the step it had in journal.db, and
// StepEncodeStarted when it changed nothing.
func withStart(tx *bolt.Tx, p pendingStart) (e Entry, before Step, err error) {
	v := tx.Bucket(bucketCommands).Get([]byte(p.rec.id))
	if v == nil {
		e, _, err = insert(tx, p.entry(), p.rec.at)
		return e, 0, err
	}
	if e, err = decodeEntry([]byte(p.rec.id), v); err != nil {
		return Entry{}, 0, err
	}
	if e.Step != StepAccepted {
		return e, StepEncodeStarted, nil
	}
	p.startQueued(&e)
	return e, StepAccepted, putEntry(tx, &e, p.rec.at)
}

// startedOnly holds the commands whose start is in the start log alone:
// journal.db takes the step with the command's next one (FinishEncode,
// Withdraw), in one transaction, or at Close. Until then the journal's
// reads show them started: a command journal.db does not have yet as a
// new entry, a queued one moved on from accepted.
type startedOnly struct {
	mu sync.Mutex
	m  map[string]pendingStart
}

type pendingStart struct {
	rec  startRecord
	slot int
}

func (s *startedOnly) add(p pendingStart) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]pendingStart{}
	}
	s.m[p.rec.id] = p
}

func (s *startedOnly) get(id string) (pendingStart, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id]
	return p, ok
}

func (s *startedOnly) remove(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

func (s *startedOnly) all() []pendingStart {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]pendingStart, 0, len(s.m))
	for _, p := range s.m {
		out = append(out, p)
	}
	return out
}

// startQueued moves a queued (accepted) entry to the start p records;
// an entry in any other step is left as it is.
func (p pendingStart) startQueued(e *Entry) {
	if e.Step == StepAccepted {
		e.Step, e.EncodeStartedAt = StepEncodeStarted, p.rec.at
	}
}

// entry is the command as the journal will record it.
func (p pendingStart) entry() Entry {
	r := p.rec
	return Entry{CommandID: r.id, Encoder: r.encoder, Device: r.device, Step: StepEncodeStarted, AcceptedAt: r.at, EncodeStartedAt: r.at}
}
