package journal

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// The meta bucket keeps small state other features need across restarts
// with the same durability as the commands. Each kind of record has its
// typed door (firstkey.go, digital.go) with its key prefix and encoding;
// meta entries are not compacted: a kind that writes one per reservation
// deletes its own.

// getMeta returns a copy of the value under key, or nil if there is none.
func (j *Journal) getMeta(key string) ([]byte, error) {
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

// setMeta stores value under key; it is on disk when SetMeta returns nil.
// A nil value is stored as empty, so GetMeta tells it from a missing key.
func (j *Journal) setMeta(key string, value []byte) error {
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

// deleteMeta removes key; a missing key is not an error.
func (j *Journal) deleteMeta(key string) error {
	err := j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Delete([]byte(key))
	})
	if err != nil {
		return j.wrapErr("delete meta", key, err)
	}
	return nil
}
