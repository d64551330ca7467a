package journal

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Store is a named key/value namespace in the journal file, for small state
// other features must keep across restarts with the same durability as the
// commands (e.g. the digital-key watermark, per-reservation key state).
// Stores are separate from the commands and from each other.
type Store struct {
	j    *Journal
	name []byte
}

// Store returns the namespace called name; it is created on the first Put.
// An empty name is a programming error and panics.
func (j *Journal) Store(name string) *Store {
	if name == "" {
		panic("journal: empty store name")
	}
	return &Store{j: j, name: []byte(name)}
}

// Get returns a copy of the value under key.
func (s *Store) Get(key string) (value []byte, found bool, err error) {
	err = s.j.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketStores).Bucket(s.name); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				value, found = bytes.Clone(v), true
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, s.j.readErr(s.op("get", key), err)
	}
	return value, found, nil
}

// Put stores value under key; it is on disk when Put returns nil.
func (s *Store) Put(key string, value []byte) error {
	err := s.j.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketStores).CreateBucketIfNotExists(s.name)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	})
	if err != nil {
		return s.j.wrapErr(s.op("put", key), "", err)
	}
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(key string) error {
	err := s.j.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketStores).Bucket(s.name); b != nil {
			return b.Delete([]byte(key))
		}
		return nil
	})
	if err != nil {
		return s.j.wrapErr(s.op("delete", key), "", err)
	}
	return nil
}

// ForEach calls fn for every key in byte order, inside one read
// transaction; value is only valid during the call. An error from fn stops
// the walk and is returned as it is.
func (s *Store) ForEach(fn func(key string, value []byte) error) error {
	var fnErr error
	err := s.j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStores).Bucket(s.name)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			fnErr = fn(string(k), v)
			return fnErr
		})
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return s.j.readErr(s.op("list", ""), err)
	}
	return nil
}

func (s *Store) op(verb, key string) string {
	if key == "" {
		return fmt.Sprintf("%s store %s", verb, s.name)
	}
	return fmt.Sprintf("%s %s in store %s", verb, key, s.name)
}
