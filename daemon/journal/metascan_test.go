package journal_test

import (
	"fmt"
	"testing"
)

func TestMetaWithPrefix(t *testing.T) {
	j := openJournal(t, t.TempDir(), newClock())
	for k, v := range map[string]string{"digital/a": "1", "digital/b": "2", "digitalx": "3", "first-key/a": "4", "d": "5"} {
		if err := j.SetMeta(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := j.MetaWithPrefix("digital/")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(got); s != "map[digital/a:[49] digital/b:[50]]" {
		t.Errorf("MetaWithPrefix = %s", s)
	}
	none, err := j.MetaWithPrefix("nothing/")
	if err != nil || len(none) != 0 {
		t.Errorf("MetaWithPrefix(nothing/) = %v, %v", none, err)
	}
}
