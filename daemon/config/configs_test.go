package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	_ "github.com/mews-keyd/mews-keyd/keys/all"
)

// TestExampleConfigs keeps the annotated files in configs/ valid: they are
// what operators copy.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example configs found")
	}
	// The token files the examples name do not exist here; the environment
	// wins over them.
	env := envOf(map[string]string{"MEWS_CLIENT_TOKEN": "client-token", "MEWS_ACCESS_TOKEN": "access-token"})
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, warnings, err := Parse(path, data, env)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
			fromMews := slices.ContainsFunc(cfg.KeyCutters, func(kc KeyCutter) bool { return kc.FromMews })
			if (len(cfg.Encoders) == 0 && !fromMews) || len(cfg.KeyCutters) == 0 {
				t.Errorf("an example without encoders or key cutters: %+v", cfg)
			}
		})
	}
}
