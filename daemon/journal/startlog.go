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
)

// StartLogName is the start log's file inside the state directory.
const StartLogName = "starts.log"

// The start log makes AcceptStarted cost one flush where a bbolt commit
// costs two (its pages, then its meta page): the encoder may be called as
// soon as a fixed-size record saying "this command's encode started" is on
// disk, while the same step is committed to journal.db behind it. Open
// replays records journal.db does not have yet, so a crash in between
// leaves an interrupted encode, exactly what a crash after the bbolt
// commit leaves.
//
// The file is preallocated and never grows, so a flush writes data only
// (fdatasync, no file-system metadata). Each record sits in its own slot
// with a checksum, so a torn write reads as an empty slot: its encoder was
// never called, because the write never returned.
const (
	startSlotSize  = 256
	startSlotCount = 1024
	startMagic     = "mks1"
)

// startLog hands out slots and writes records; one slot per encode whose
// bbolt commit is still in flight.
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
	replayed := 0
	for _, r := range records {
		e := Entry{CommandID: r.id, Encoder: r.encoder, Device: r.device, Step: StepEncodeStarted}
		_, isNew, err := j.createAt(opAcceptStarted, e, r.at.Round(0))
		if err != nil {
			_ = l.close()
			return fmt.Errorf("replay start log %s: %w", path, err)
		}
		if isNew {
			replayed++
		}
	}
	if len(records) > 0 {
		if err := l.reset(); err != nil {
			_ = l.close()
			return err
		}
	}
	if replayed > 0 {
		j.log.Info().Int("commands", replayed).Msg("the start log had encodes journal.db did not: they were interrupted by the stop")
	}
	j.starts = l
	return nil
}

// inFlight is the set of commands whose start is in the start log while
// journal.db's commit is still running, or failed.
type inFlight struct {
	mu sync.Mutex
	m  map[string]*commit
	wg sync.WaitGroup
}

type commit struct {
	done chan struct{}
	err  error
}

// add registers id; false if it is in flight already.
func (f *inFlight) add(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[id]; ok {
		return false
	}
	if f.m == nil {
		f.m = map[string]*commit{}
	}
	f.m[id] = &commit{done: make(chan struct{})}
	f.wg.Add(1)
	return true
}

// done ends id's commit with its outcome. A failed one stays, so that
// every later step of the command hears that journal.db does not have it.
func (f *inFlight) done(id string, err error) {
	f.mu.Lock()
	c := f.m[id]
	if err == nil {
		delete(f.m, id)
	}
	f.mu.Unlock()
	c.err = err
	close(c.done)
	f.wg.Done()
}

// settle waits for id's commit, if one is running, and returns its error.
func (f *inFlight) settle(id string) error {
	f.mu.Lock()
	c := f.m[id]
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	<-c.done
	return c.err
}

// wait waits for every commit.
func (f *inFlight) wait() { f.wg.Wait() }
