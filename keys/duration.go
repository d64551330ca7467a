package keys

import (
	"fmt"
	"time"
)

// Duration is a time.Duration that TOML (and any encoding.TextUnmarshaler
// consumer) reads from Go duration syntax such as "300ms" or "1m30s".
type Duration time.Duration

// UnmarshalText parses a Go duration; negative values are refused because no
// setting in this program means anything with them.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration like \"300ms\" or \"1m\": %q", b)
	}
	if v < 0 {
		return fmt.Errorf("must not be negative: %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration back in the syntax UnmarshalText reads.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// String returns the Go syntax, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
