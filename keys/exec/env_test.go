package exec_test

import (
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys/exec"
)

// The vendor program must not see the daemon's Mews tokens, nor anything
// else of the daemon's environment beyond what a program needs to run.
func TestProgramEnvironmentIsMinimal(t *testing.T) {
	t.Setenv("MEWS_CLIENT_TOKEN", "client-secret")
	t.Setenv("MEWS_ACCESS_TOKEN", "access-secret")
	t.Setenv("SOME_OTHER", "daemon-only")
	t.Setenv("TZ", "Europe/Prague")
	t.Setenv("LANG", "cs_CZ.UTF-8")
	enc, dir := open(t, map[string]string{"VENDOR_HOME": "/opt/vendor"}, zerolog.Nop())
	if _, err := issueAs(t, enc, "ENV", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range strings.Split(string(b), "\n") {
		name, value, _ := strings.Cut(kv, "=")
		if name = strings.ToUpper(name); !addedByPlatform(name) {
			got[name] = value
		}
	}

	want := map[string]string{
		"ENCODER_STATE_DIR": dir,
		"VENDOR_HOME":       "/opt/vendor",
		"TZ":                "Europe/Prague",
		"LANG":              "cs_CZ.UTF-8",
	}
	inherited := []string{"PATH"}
	if runtime.GOOS == "windows" {
		inherited = append(inherited, "SYSTEMROOT", "TEMP", "TMP")
	}
	for _, name := range inherited {
		if v, ok := os.LookupEnv(name); ok {
			want[name] = v
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("program environment has %v, want exactly %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for _, secret := range []string{"client-secret", "access-secret"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("program environment holds the token %q", secret)
		}
	}
}

// A MEWS_ variable in env is a token or a mistake; either way the vendor
// program must not get it.
func TestValidateRefusesMewsVariables(t *testing.T) {
	for _, name := range []string{"MEWS_ACCESS_TOKEN", "mews_client_token", "Mews_Anything"} {
		cfg := exec.Config{Command: []string{"x"}, Env: map[string]string{name: "v"}}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "MEWS_") {
			t.Errorf("Validate with env %s = %v, want an error naming it", name, err)
		}
	}
}
