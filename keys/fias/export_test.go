package fias

import "context"

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
