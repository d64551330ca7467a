package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[mews]\nenvironmnt = \"demo\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		output string
	}{
		{[]string{"version"}, exitOK, "mews-keyd "},
		{nil, exitConfig, "usage:"},
		{[]string{"frobnicate"}, exitConfig, `unknown command "frobnicate"`},
		{[]string{"run", "--bogus"}, exitConfig, "flag provided but not defined"},
		{[]string{"check", "--config", bad}, exitConfig, "bad.toml:2: mews.environmnt: unknown key"},
		{[]string{"run", "--config", filepath.Join(dir, "missing.toml")}, exitConfig, "missing.toml"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := NewMain(&out, &errOut).Run(context.Background(), tc.args)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errOut.String())
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tc.output) {
				t.Errorf("output %q lacks %q", all, tc.output)
			}
		})
	}
}
