// Package all links every driver that ships with mews-keyd: importing it
// registers them. The binary, the example-config tests and the demo import
// it, so a driver added here is in the product; a driver folder under
// keys/ that is missing here fails this package's test.
package all

import (
	_ "github.com/mews-keyd/mews-keyd/keys/exec"    // exec: a vendor program per operation
	_ "github.com/mews-keyd/mews-keyd/keys/fias"    // fias: FIAS lock systems
	_ "github.com/mews-keyd/mews-keyd/keys/httpenc" // http: a vendor web service
	_ "github.com/mews-keyd/mews-keyd/keys/salto"   // salto: Salto PMS Industry Standard
	_ "github.com/mews-keyd/mews-keyd/keys/sim"     // sim: simulated, for the demo and tests
)
