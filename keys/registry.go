package keys

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Driver creates encoders of one kind. Drivers register themselves with
// Register in their package's init function.
type Driver interface {
	// NewConfig returns a pointer to the driver's configuration struct with
	// defaults preset. The configuration loader decodes the encoder's TOML
	// table into it, rejecting unknown keys, then calls Validate if the
	// struct has one.
	NewConfig() any
	// Open builds an encoder from a config previously returned by NewConfig
	// and filled in. It should not block on the lock system: a link that is
	// down now may come up later, and Health says so.
	Open(cfg any, env Env) (Encoder, error)
}

// DriverOf makes the Driver of a config type C: newConfig returns C with
// its defaults, open builds an encoder from a filled-in one. It is what a
// driver package registers: keys.Register("fias", keys.DriverOf(DefaultConfig, New)).
func DriverOf[C any, E Encoder](newConfig func() C, open func(C, Env) (E, error)) Driver {
	return typedDriver[C, E]{newConfig, open}
}

type typedDriver[C any, E Encoder] struct {
	newConfig func() C
	open      func(C, Env) (E, error)
}

func (d typedDriver[C, E]) NewConfig() any {
	c := d.newConfig()
	return &c
}

func (d typedDriver[C, E]) Open(cfg any, env Env) (Encoder, error) {
	c, ok := cfg.(*C)
	if !ok {
		return nil, fmt.Errorf("config is %T, want %T", cfg, c)
	}
	enc, err := d.open(*c, env)
	if err != nil {
		return nil, err // not a typed nil
	}
	return enc, nil
}

// Validator is implemented by driver configs that check themselves.
type Validator interface {
	Validate() error
}

// Env is what every encoder gets besides its own config.
type Env struct {
	// Name is the encoder's configured name.
	Name string
	// Timeout bounds one key operation; callers also put it on ctx.
	Timeout time.Duration
	// Rooms maps Mews lock ids / room names to lock-system room ids.
	Rooms  map[string]string
	Logger zerolog.Logger
}

// CommonKeys are the encoder table keys the configuration loader reads
// itself; a driver's Config must not declare them.
var CommonKeys = []string{"name", "driver", "timeout"}

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes a driver available by name. It panics on an empty name, a
// nil driver or a second registration of a name: all are programming errors.
func Register(name string, d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if name == "" || d == nil {
		panic("keys: Register with empty name or nil driver")
	}
	if _, dup := drivers[name]; dup {
		panic(fmt.Sprintf("keys: Register called twice for driver %q", name))
	}
	drivers[name] = d
}

// Lookup returns the driver registered under name.
func Lookup(name string) (Driver, bool) {
	driversMu.RLock()
	defer driversMu.RUnlock()
	d, ok := drivers[name]
	return d, ok
}

// Drivers returns the registered driver names, sorted.
func Drivers() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
