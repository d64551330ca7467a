package salto_test

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/salto"
)

func TestSerialConfig(t *testing.T) {
	for _, tc := range []struct {
		name, wantKey string
		mod           func(*salto.Config)
	}{
		{"neither", "address", func(c *salto.Config) {}},
		{"both", "serial", func(c *salto.Config) { c.Serial, c.Address = "COM3", "h:1" }},
		{"parity", "parity", func(c *salto.Config) { c.Serial, c.Parity = "COM3", "mark" }},
		{"baud", "baud", func(c *salto.Config) { c.Serial, c.Baud = "COM3", -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := salto.DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantKey+":") {
				t.Errorf("Validate = %v, want an error about %s", err, tc.wantKey)
			}
		})
	}
	d, _ := keys.Lookup("salto")
	cfg := d.NewConfig()
	md, err := toml.Decode(`
serial = "COM3"
baud = 19200
parity = "even"
data_bits = 7
stop_bits = 1
`, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("keys the config does not know: %v", u)
	}
	c := cfg.(*salto.Config)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Serial != "COM3" || c.Baud != 19200 || c.Parity != "even" || c.DataBits != 7 {
		t.Errorf("decoded %+v", c.Settings)
	}
}
