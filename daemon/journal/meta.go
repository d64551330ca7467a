package journal

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// GetMeta, SetMeta and DeleteMeta keep small state other features need
// across restarts with the same durability as the commands (e.g. the
// digital-key watermark). Callers give their keys a prefix
// ("first-key/<reservation>") to keep features apart. Meta entries are not
// compacted: a feature that writes one per reservation deletes its own.

// GetMeta returns a copy of the value under key, or nil if there is none.
func (j *Journal) GetMeta(key string) ([]byte, error) {
	var value []byte
	err := j.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get([]byte(key)); v != nil {
			value = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, j.readErr("get meta "+key, err)
	}
	return value, nil
}

// SetMeta stores value under key; it is on disk when SetMeta returns nil.
// A nil value is stored as empty, so GetMeta tells it from a missing key.
func (j *Journal) SetMeta(key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	err := j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(key), value)
	})
	if err != nil {
		return j.wrapErr("set meta", key, err)
	}
	return nil
}

// DeleteMeta removes key; a missing key is not an error.
func (j *Journal) DeleteMeta(key string) error {
	err := j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Delete([]byte(key))
	})
	if err != nil {
		return j.wrapErr("delete meta", key, err)
	}
	return nil
}
