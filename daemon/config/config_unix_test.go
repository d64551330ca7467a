//go:build !windows

package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Token files and their permission warnings, where mode bits mean something.

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is subject to the umask.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestTokenFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "client_token"), "  ct-from-file\n", 0o600)
	writeFile(t, filepath.Join(dir, "access_token"), "at-from-file\n", 0o600)
	writeFile(t, filepath.Join(dir, "empty"), "\n", 0o600)
	// Relative paths resolve against the directory of the config file.
	doc := edit(t, "client_token = \"CT-SECRET-1\"\naccess_token = \"AT-SECRET-2\"\n",
		"client_token_file = \"client_token\"\naccess_token_file = \""+filepath.Join(dir, "access_token")+"\"\n")
	path := filepath.Join(dir, "config.toml")

	t.Run("read and trimmed", func(t *testing.T) {
		cfg, warnings, err := Parse(path, []byte(doc), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if len(warnings) != 0 {
			t.Errorf("warnings: %q", warnings)
		}
		if cfg.Mews.ClientToken.Reveal() != "ct-from-file" || cfg.Mews.AccessToken.Reveal() != "at-from-file" {
			t.Error("tokens not read from files")
		}
		if cfg.Mews.ClientTokenFile != filepath.Join(dir, "client_token") {
			t.Errorf("client_token_file %q not made absolute", cfg.Mews.ClientTokenFile)
		}
		if want := "token file " + filepath.Join(dir, "client_token"); cfg.Mews.ClientTokenFrom != want {
			t.Errorf("client token from %q, want %q", cfg.Mews.ClientTokenFrom, want)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		_, _, err := Parse(path, []byte(strings.Replace(doc, `"client_token"`, `"empty"`, 1)), noEnv)
		want := fmt.Sprintf("%s:3: mews.client_token_file: token file %s is empty", path, filepath.Join(dir, "empty"))
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
	})
	t.Run("loose permissions", func(t *testing.T) {
		if exposed(path) { // exposed is false where mode bits mean nothing
			t.Fatal("exposed true for a missing file")
		}
		// The install advice: group mews-keyd, the service's, may read.
		writeFile(t, filepath.Join(dir, "client_token"), "ct-from-file\n", 0o640)
		if _, warnings, err := Parse(path, []byte(doc), noEnv); err != nil || len(warnings) != 0 {
			t.Errorf("mode 0640: warnings %q, err %v; want none", warnings, err)
		}
		writeFile(t, filepath.Join(dir, "client_token"), "ct-from-file\n", 0o644)
		_, warnings, err := Parse(path, []byte(doc), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s:3: mews.client_token_file: %s is readable by every user; restrict it (chmod 0640, group mews-keyd)",
			path, filepath.Join(dir, "client_token"))
		if len(warnings) != 1 || warnings[0] != want {
			t.Errorf("warnings %q, want %q", warnings, want)
		}
		if strings.Contains(strings.Join(warnings, ""), "ct-from-file") {
			t.Error("a token leaked into a warning")
		}
	})
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")

	_, _, err := Load(path)
	var ce *Error
	if !errors.As(err, &ce) || err.Error() != path+": cannot read: no such file or directory" {
		t.Fatalf("missing file: %v", err)
	}

	writeFile(t, path, base, 0o600)
	cfg, warnings, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != path || len(warnings) != 0 {
		t.Errorf("file %q, warnings %q", cfg.File, warnings)
	}

	writeFile(t, path, base, 0o640)
	if _, warnings, err = Load(path); err != nil || len(warnings) != 0 {
		t.Errorf("mode 0640: warnings %q, err %v; want none", warnings, err)
	}

	writeFile(t, path, base, 0o644)
	_, warnings, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := path + ": holds a token and is readable by every user; restrict it (chmod 0640, group mews-keyd) or move the token to a *_file"
	if len(warnings) != 1 || warnings[0] != want {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
}
