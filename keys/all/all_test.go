package all_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mews-keyd/mews-keyd/keys"
	_ "github.com/mews-keyd/mews-keyd/keys/all"
)

const module = "github.com/mews-keyd/mews-keyd/"

// TestEveryDriverIsLinked: every package under keys/ that registers a
// driver is imported by all.go, and every driver the binary knows is one
// of those.
func TestEveryDriverIsLinked(t *testing.T) {
	registering := driverPackages(t)
	if len(registering) == 0 {
		t.Fatal("found no driver packages under keys/")
	}
	f, err := parser.ParseFile(token.NewFileSet(), "all.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var linked []string
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		linked = append(linked, strings.TrimPrefix(path, module))
	}
	for _, pkg := range registering {
		if !slices.Contains(linked, pkg) {
			t.Errorf("%s registers a driver but keys/all does not import it", pkg)
		}
	}
	if n := len(keys.Drivers()); n != len(registering) {
		t.Errorf("%d drivers registered (%v), %d driver packages %v", n, keys.Drivers(), len(registering), registering)
	}
}

// registers reports whether Go source calls keys.Register outside a
// comment.
func registers(src string) bool {
	for line := range strings.Lines(src) {
		if code, _, _ := strings.Cut(line, "//"); strings.Contains(code, "keys.Register(") {
			return true
		}
	}
	return false
}

// driverPackages lists the packages under keys/ whose non-test files call
// keys.Register.
func driverPackages(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if registers(string(src)) {
			rel := strings.TrimPrefix(filepath.ToSlash(path), "../")
			pkg := "keys/" + filepath.ToSlash(filepath.Dir(rel))
			if !slices.Contains(out, pkg) {
				out = append(out, pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
