package keys

import (
	"context"
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
