package fias

import (
	"context"
	"net/netip"

	"github.com/mews-keyd/mews-keyd/keys"
)

// WaitLink blocks until the link is up (or down), for tests that must not
// guess how long a reconnect or a keep-alive timeout takes.
func (e *Encoder) WaitLink(ctx context.Context, up bool) error {
	for {
		s, _, changed := e.link.state()
		if (s != nil) == up {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitHealth blocks until Health satisfies ok, for tests that wait for the
// link to fail in a particular way.
func (e *Encoder) WaitHealth(ctx context.Context, ok func(keys.Health) bool) error {
	for {
		_, _, changed := e.link.state()
		if ok(e.link.health()) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Allows reports whether a lock system connecting from ip is let in.
func (c *Config) Allows(ip string) bool {
	prefixes, err := c.allowFrom()
	if err != nil {
		panic(err)
	}
	return allowed(prefixes, netip.MustParseAddr(ip))
}
