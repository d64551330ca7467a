package exec

import (
	"maps"
	"os"
	"slices"
)

// environ is the program's environment: the few daemon variables a program
// needs to run (inherited, those that are set) and the configured ones,
// which win. Nothing else of the daemon's environment is passed on: it holds
// the Mews tokens (MEWS_CLIENT_TOKEN, MEWS_ACCESS_TOKEN).
func environ(configured map[string]string) []string {
	var vars []string
	for _, name := range inherited {
		if value, ok := os.LookupEnv(name); ok {
			vars = append(vars, name+"="+value)
		}
	}
	// Later entries win in os/exec; sorted so that runs are reproducible.
	for _, name := range slices.Sorted(maps.Keys(configured)) {
		vars = append(vars, name+"="+configured[name])
	}
	return vars
}
