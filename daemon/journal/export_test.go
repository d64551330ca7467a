package journal

import (
	"os"
	"path/filepath"
	"time"
)

// PutLegacyFirstKey writes a first-key record as versions before room sets
// did, for tests of the upgrade.
func PutLegacyFirstKey(j *Journal, reservationID, raw string) error {
	return j.setMeta(firstKeyPrefix+reservationID, []byte(raw))
}

// WriteStartRecord leaves dir as a crash between the start log's flush and
// journal.db's commit does: the record in the start log and nothing else.
func WriteStartRecord(dir, id, encoder, device string, at time.Time) error {
	l, records, err := openStartLog(filepath.Join(dir, StartLogName), nil)
	if err != nil {
		return err
	}
	l.next = len(records) // after the records written so far
	if _, err := l.write(startRecord{at: at, id: id, encoder: encoder, device: device}); err != nil {
		return err
	}
	return l.close()
}

// FailJournalDBWrites is FailWrites for journal.db alone: the start log
// still takes records, as a preallocated file does on a full disk.
func FailJournalDBWrites(o *Options) {
	FailWrites(o)
	failing := o.openFile
	o.openFile = func(path string, flag int, mode os.FileMode) (*os.File, error) {
		if filepath.Base(path) != FileName {
			return os.OpenFile(path, flag, mode)
		}
		return failing(path, flag, mode)
	}
}
