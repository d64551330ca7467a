package keys_test

import (
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mews-keyd/mews-keyd/keys"
)

func TestDurationTOML(t *testing.T) {
	var cfg struct {
		Timeout keys.Duration `toml:"timeout"`
	}
	if _, err := toml.Decode(`timeout = "1m30s"`, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout.D() != 90*time.Second || cfg.Timeout.String() != "1m30s" {
		t.Errorf("decoded %v", cfg.Timeout)
	}
	for _, bad := range []string{`timeout = "90"`, `timeout = "-1s"`, `timeout = "soon"`} {
		if _, err := toml.Decode(bad, &cfg); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	b, err := keys.Duration(1500 * time.Millisecond).MarshalText()
	if err != nil || string(b) != "1.5s" {
		t.Errorf("MarshalText = %s, %v", b, err)
	}
}
