package salto_test

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/salto"
)

func TestDefaultConfig(t *testing.T) {
	c := salto.DefaultConfig()
	want := salto.Config{
		Operator:       "mews-keyd",
		Eject:          "retain",
		DateFormat:     "hhmmDDMMYY",
		LRC:            true,
		PrintGuestName: true,
		ConnectTimeout: keys.Duration(10 * time.Second),
		MobileMessage:  c.MobileMessage,
	}
	// 9600 8N1, used with serial only.
	want.Baud, want.DataBits, want.Parity, want.StopBits = 9600, 8, "none", 1
	if c != want {
		t.Errorf("DefaultConfig() = %+v, want %+v", c, want)
	}
	if !strings.Contains(c.MobileMessage, "{room}") {
		t.Errorf("default mobile_message %q does not name the room", c.MobileMessage)
	}
	c.Address = "127.0.0.1:8090"
	if err := c.Validate(); err != nil {
		t.Errorf("defaults with an address: %v", err)
	}
}

// The keys are SPEC §6 and issue 14's.
func TestConfigKeys(t *testing.T) {
	cfg := new(salto.Config)
	md, err := toml.Decode(`
address = "10.0.0.5:8090"
encoder = "Online Encoder 1"
operator = "reception"
eject = "eject"
time_zone = "Europe/Madrid"
date_format = "hhDDMMYY"
lrc = false
print_guest_name = false
connect_timeout = "3s"
mobile = false
mobile_message = "Room {room}: {from} to {until}"
`, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Fatalf("keys not in Config: %v", u)
	}
	want := salto.Config{
		Address: "10.0.0.5:8090", Encoder: "Online Encoder 1", Operator: "reception", Eject: "eject",
		TimeZone: "Europe/Madrid", DateFormat: "hhDDMMYY", ConnectTimeout: keys.Duration(3 * time.Second),
		MobileMessage: "Room {room}: {from} to {until}",
	}
	if *cfg != want {
		t.Errorf("decoded %+v, want %+v", *cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*salto.Config)
		want string // the key the error must start with
	}{
		{"no address", func(c *salto.Config) { c.Address = "" }, "address: required"},
		{"address without port", func(c *salto.Config) { c.Address = "10.0.0.5" }, "address:"},
		{"operator too long", func(c *salto.Config) { c.Operator = strings.Repeat("x", 25) }, "operator: at most 24"},
		{"operator empty", func(c *salto.Config) { c.Operator = "" }, "operator:"},
		{"operator not ASCII", func(c *salto.Config) { c.Operator = "Recepción" }, "operator:"},
		{"encoder with a separator", func(c *salto.Config) { c.Encoder = "Enc\u00b31" }, "encoder:"},
		{"eject", func(c *salto.Config) { c.Eject = "rear" }, "eject:"},
		{"time zone", func(c *salto.Config) { c.TimeZone = "Mars/Olympus" }, "time_zone:"},
		{"date format", func(c *salto.Config) { c.DateFormat = "DDMMYY" }, "date_format:"},
		{"connect timeout", func(c *salto.Config) { c.ConnectTimeout = 0 }, "connect_timeout:"},
		{"message too long", func(c *salto.Config) { c.MobileMessage = strings.Repeat("x", 257) }, "mobile_message: at most 256"},
		{"message placeholder", func(c *salto.Config) { c.MobileMessage = "Room {rooms}" }, "mobile_message:"},
		{"encoder with mobile", func(c *salto.Config) { c.Mobile, c.Encoder = true, "Enc 1" }, "encoder:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := salto.DefaultConfig()
			c.Address = "127.0.0.1:8090"
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error starting %q", err, tt.want)
			}
		})
	}
}
