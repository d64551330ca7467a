package salto

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"
	"unicode/utf8"
	// Property time zones must resolve on Windows too, which has no zoneinfo
	// database of its own.
	_ "time/tzdata"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/internal/ascii"
	"github.com/mews-keyd/mews-keyd/keys/internal/serialport"
)

// Limits of the protocol's text fields.
const (
	maxOperator = 24
	maxRoom     = 24
	maxRooms    = 4
	maxMessage  = 256
)

// Config is the driver's part of an [[encoders]] table.
type Config struct {
	// Address is Salto's PC interface, "host:port", as set in Salto's PMS
	// settings with TCP/IP enabled.
	Address string `toml:"address"`
	// Settings holds serial, the port of an interface on a serial cable
	// (Salto's default PMS channel) instead of address, and the line
	// settings baud, data_bits, parity and stop_bits. Exactly one of
	// Address and Serial is set.
	serialport.Settings
	// Encoder is the encoder as Salto names it; empty takes the key cutter's
	// identifier from each Mews command.
	Encoder string `toml:"encoder"`
	// Operator is who Salto records as having made the keys.
	Operator string `toml:"operator"`
	// Eject is "retain" (the card stays in the encoder) or "eject" (the
	// encoder waits until the card is taken out).
	Eject string `toml:"eject"`
	// TimeZone is the property's IANA time zone, in which Salto reads dates;
	// empty means the machine's local zone.
	TimeZone string `toml:"time_zone"`
	// DateFormat is "hhmmDDMMYY" or "hhDDMMYY" (hours only, as Mews's own
	// connector sends).
	DateFormat string `toml:"date_format"`
	// LRC sends the checksum byte; false sends 0x0D, "no checksum", for
	// interfaces set up that way.
	LRC bool `toml:"lrc"`
	// PrintGuestName prints the guest's name on the card's first print line.
	PrintGuestName bool `toml:"print_guest_name"`
	// ConnectTimeout bounds a TCP connect and each wait for Salto's ACK.
	ConnectTimeout keys.Duration `toml:"connect_timeout"`
	// Mobile sends Salto JustIN mobile keys to the guest's phone (CNM/CCM)
	// instead of cutting cards.
	Mobile bool `toml:"mobile"`
	// MobileMessage is the text that goes with a mobile key; {room}, {from}
	// and {until} are replaced.
	MobileMessage string `toml:"mobile_message"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() Config {
	return Config{
		Settings:       serialport.Defaults(),
		Operator:       "mews-keyd",
		Eject:          "retain",
		DateFormat:     "hhmmDDMMYY",
		LRC:            true,
		PrintGuestName: true,
		ConnectTimeout: keys.Duration(10 * time.Second),
		MobileMessage:  "Your key for room {room} is in the JustIN Mobile app, valid from {from} to {until}.",
	}
}

// placeholder matches what mobile_message may hold in braces.
var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// Validate checks the configuration and names the key of every problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.Address == "" && c.Serial == "":
		bad("address", `required: Salto's PC interface as "host:port", or serial, its port`)
	case c.Address != "" && c.Serial != "":
		bad("serial", "set either address or serial, not both")
	case c.Serial != "":
		errs = append(errs, c.Settings.Validate()...)
	default:
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			bad("address", `want "host:port": %v`, err)
		}
	}
	if !plain(c.Encoder) {
		bad("encoder", "must be printable ASCII, not %q", c.Encoder)
	}
	if c.Mobile && c.Encoder != "" {
		bad("encoder", "not used with mobile = true: a mobile key goes to the guest's phone")
	}
	switch {
	case c.Operator == "" || !plain(c.Operator):
		bad("operator", "must be printable ASCII, not %q", c.Operator)
	case len(c.Operator) > maxOperator:
		bad("operator", "at most %d characters, not %d", maxOperator, len(c.Operator))
	}
	if _, err := c.ejectCode(); err != nil {
		bad("eject", "%v", err)
	}
	if _, err := c.location(); err != nil {
		bad("time_zone", "%v", err)
	}
	if _, err := c.dateLayout(); err != nil {
		bad("date_format", "%v", err)
	}
	if c.ConnectTimeout <= 0 {
		bad("connect_timeout", "must be positive")
	}
	if n := utf8.RuneCountInString(c.MobileMessage); n > maxMessage {
		bad("mobile_message", "at most %d characters, not %d", maxMessage, n)
	}
	for _, p := range placeholder.FindAllString(c.MobileMessage, -1) {
		if p != "{room}" && p != "{from}" && p != "{until}" {
			bad("mobile_message", "unknown placeholder %s (known: {room}, {from}, {until})", p)
		}
	}
	return errors.Join(errs...)
}

// plain reports whether s goes to Salto as it is: printable ASCII, which
// cannot hold the field separator or frame bytes.
func plain(s string) bool { return ascii.Clean(s, "") == s }

func (c *Config) ejectCode() (string, error) {
	switch c.Eject {
	case "retain":
		return "R", nil
	case "eject":
		return "E", nil
	}
	return "", fmt.Errorf(`want "retain" or "eject", not %q`, c.Eject)
}

func (c *Config) location() (*time.Location, error) {
	if c.TimeZone == "" {
		return time.Local, nil
	}
	return time.LoadLocation(c.TimeZone)
}

// dateLayout is the Go time layout of date_format.
func (c *Config) dateLayout() (string, error) {
	switch c.DateFormat {
	case "hhmmDDMMYY":
		return "1504020106", nil
	case "hhDDMMYY":
		return "15020106", nil
	}
	return "", fmt.Errorf(`want "hhmmDDMMYY" or "hhDDMMYY", not %q`, c.DateFormat)
}
