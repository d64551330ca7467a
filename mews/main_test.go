package mews_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain is the one TestMain of the mews test binary (internal and
// external tests share it): every test in the package must leave no
// goroutine behind, WebSocket readers and pingers included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
