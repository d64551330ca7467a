package keys

import (
	"context"
	"errors"
	"slices"
	"testing"
)

type nopDriver struct{}

func (nopDriver) NewConfig() any                 { return &struct{}{} }
func (nopDriver) Open(any, Env) (Encoder, error) { return nopEncoder{}, nil }

type nopEncoder struct{}

func (nopEncoder) Issue(context.Context, Request) (Result, error) { return Result{}, nil }
func (nopEncoder) Close() error                                   { return nil }

// withEmptyRegistry runs the test against a registry of its own, so that it
// neither sees nor disturbs drivers registered by init functions.
func withEmptyRegistry(t *testing.T) {
	t.Helper()
	driversMu.Lock()
	saved := drivers
	drivers = map[string]Driver{}
	driversMu.Unlock()
	t.Cleanup(func() {
		driversMu.Lock()
		drivers = saved
		driversMu.Unlock()
	})
}

func TestDriversSorted(t *testing.T) {
	withEmptyRegistry(t)
	for _, name := range []string{"sim", "fias", "http", "exec"} {
		Register(name, nopDriver{})
	}
	if got, want := Drivers(), []string{"exec", "fias", "http", "sim"}; !slices.Equal(got, want) {
		t.Errorf("Drivers() = %v, want %v", got, want)
	}
	if _, ok := Lookup("fias"); !ok {
		t.Error(`Lookup("fias") failed`)
	}
	if _, ok := Lookup("serial"); ok {
		t.Error(`Lookup("serial") found a driver never registered`)
	}
}

func TestRegisterPanics(t *testing.T) {
	withEmptyRegistry(t)
	Register("sim", nopDriver{})
	for name, register := range map[string]func(){
		"duplicate":  func() { Register("sim", nopDriver{}) },
		"empty name": func() { Register("", nopDriver{}) },
		"nil driver": func() { Register("x", nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Register did not panic")
				}
			}()
			register()
		})
	}
	if got := Drivers(); !slices.Equal(got, []string{"sim"}) {
		t.Errorf("after the panics Drivers() = %v", got)
	}
}

type countConfig struct{ N int }

type countEncoder struct{ nopEncoder }

// TestDriverOf: the driver hands out its config with defaults, opens from
// a filled-in one, refuses another type, and a failed open is a plain nil
// (a typed nil would pass an `enc != nil` check).
func TestDriverOf(t *testing.T) {
	d := DriverOf(func() countConfig { return countConfig{N: 7} }, func(c countConfig, _ Env) (*countEncoder, error) {
		if c.N < 0 {
			return nil, errors.New("negative")
		}
		return &countEncoder{}, nil
	})
	cfg, ok := d.NewConfig().(*countConfig)
	if !ok || cfg.N != 7 {
		t.Fatalf("NewConfig = %#v, want *countConfig with the default", d.NewConfig())
	}
	if enc, err := d.Open(cfg, Env{}); err != nil || enc == nil {
		t.Errorf("Open = %v, %v", enc, err)
	}
	cfg.N = -1
	if enc, err := d.Open(cfg, Env{}); err == nil || enc != nil {
		t.Errorf("failed Open = %#v, %v; want a plain nil and the error", enc, err)
	}
	if _, err := d.Open(&struct{}{}, Env{}); err == nil {
		t.Error("Open took another driver's config")
	}
}
