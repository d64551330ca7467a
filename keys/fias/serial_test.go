package fias_test

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/fias"
)

func TestSerialConfig(t *testing.T) {
	for _, tc := range []struct {
		name, wantKey string
		mod           func(*fias.Config)
	}{
		{"serial and address", "serial", func(c *fias.Config) { c.Serial, c.Address = "/dev/ttyUSB0", "h:1" }},
		{"serial and listen", "serial", func(c *fias.Config) { c.Serial, c.Listen = "COM3", ":1" }},
		{"allow_from with serial", "allow_from", func(c *fias.Config) { c.Serial, c.AllowFrom = "COM3", []string{"10.0.0.1"} }},
		{"baud", "baud", func(c *fias.Config) { c.Serial, c.Baud = "COM3", 0 }},
		{"parity", "parity", func(c *fias.Config) { c.Serial, c.Parity = "COM3", "mark" }},
		{"stop bits", "stop_bits", func(c *fias.Config) { c.Serial, c.StopBits = "COM3", 3 }},
		{"data bits", "data_bits", func(c *fias.Config) { c.Serial, c.DataBits = "COM3", 9 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fias.DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantKey+":") {
				t.Errorf("Validate = %v, want an error about %s", err, tc.wantKey)
			}
		})
	}
	c := fias.DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "serial") {
		t.Errorf("Validate without a transport = %v, want it to name serial among the choices", err)
	}
}

func TestSerialConfigFromTOML(t *testing.T) {
	d, _ := keys.Lookup("fias")
	cfg := d.NewConfig()
	md, err := toml.Decode(`
serial = "/dev/ttyUSB0"
baud = 19200
data_bits = 7
parity = "even"
stop_bits = 2
`, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("keys the config does not know: %v", u)
	}
	c := cfg.(*fias.Config)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Serial != "/dev/ttyUSB0" || c.Baud != 19200 || c.DataBits != 7 || c.Parity != "even" || c.StopBits != 2 {
		t.Errorf("decoded %+v", c.Settings)
	}
	def := fias.DefaultConfig()
	if def.Baud != 9600 || def.DataBits != 8 || def.Parity != "none" || def.StopBits != 1 {
		t.Errorf("defaults %+v, want 9600 8N1", def.Settings)
	}
}
