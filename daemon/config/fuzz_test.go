package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tokens FuzzParse hands over through the environment. They never
// appear in the fuzzed file, so any message that shows them leaked a
// secret.
const (
	fuzzClientToken = "F0221E7C1C5B4A3E9D8C7B6A5F4E3D2C-FUZZCLIENTSECRET"
	fuzzAccessToken = "A9B8C7D6E5F44A3B8C2D1E0F9A8B7C6D-FUZZACCESSSECRET"
)

// FuzzParse checks the config parser on any file: no panic; a refused file
// is an *Error naming the file, as the exit status 78 of the CLI relies on;
// and no error, warning or printed Config shows a token. The seeds are the
// annotated examples in configs/ plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	examples, err := filepath.Glob("../../configs/*.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range examples {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	env := func(name string) string {
		return map[string]string{"MEWS_CLIENT_TOKEN": fuzzClientToken, "MEWS_ACCESS_TOKEN": fuzzAccessToken}[name]
	}
	leaks := func(s string) bool {
		return strings.Contains(s, fuzzClientToken) || strings.Contains(s, fuzzAccessToken)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, warnings, err := Parse("fuzz.toml", data, env)
		for _, w := range warnings {
			if leaks(w) {
				t.Fatalf("warning shows a token: %s", w)
			}
		}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %q (%T) is not a *config.Error", err, err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("error %q does not name the file", err)
			}
			if leaks(err.Error()) {
				t.Fatalf("error shows a token: %s", err)
			}
			return
		}
		if printed := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); leaks(printed) {
			t.Fatalf("printed config shows a token: %s", printed)
		}
	})
}
