//go:build race

package journal_test

// The race detector slows bbolt down about tenfold; footprint figures are
// taken without it.
const raceEnabled = true
