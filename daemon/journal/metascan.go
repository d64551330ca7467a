package journal

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// metaWithPrefix returns copies of every meta entry whose key starts with
// prefix, keyed by the full key. Features that keep one entry per item
// (e.g. "digital/<reservation>") use it at start-up to find the items still
// needing attention and to prune their own old entries.
func (j *Journal) metaWithPrefix(prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	p := []byte(prefix)
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out[string(k)] = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, j.readErr("scan meta "+prefix, err)
	}
	return out, nil
}
