package config

import (
	"maps"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestScanLines(t *testing.T) {
	doc := `# comment = not a key
top = 1
[mews]   # trailing comment
environment = "custom" # x = y
  api_url="https://x"
"quoted key" = 1
'literal key' = 2
dotted.sub = 3

[[encoders]]
name = "a"
command = [
  "/usr/bin/enc",
  "--flag=value",   # a = b
  ["nested = 1"],
]
note = """
fake = 1
still "inside" \"""
"""
raw = '''
fake2 = 2
'''
inline = { x = 1, y = [
  1 ] }
after = true
[encoders.headers]
Authorization = "Bearer x"

[[encoders]]
name = "b"
[encoders.env]
PATH = "/bin"

[[encoders.sub]]
k = 1
[[encoders.sub]]
k = 2

[rooms]
"101" = "0101"
"Suite \"A\"" = "0900"
[ digital_keys ]
enabled=true
`
	want := map[string]int{
		"top":                               2,
		"mews":                              3,
		"mews.environment":                  4,
		"mews.api_url":                      5,
		`mews."quoted key"`:                 6,
		`mews."literal key"`:                7,
		"mews.dotted.sub":                   8,
		"encoders[0]":                       10,
		"encoders[0].name":                  11,
		"encoders[0].command":               12,
		"encoders[0].note":                  17,
		"encoders[0].raw":                   21,
		"encoders[0].inline":                24,
		"encoders[0].after":                 26,
		"encoders[0].headers":               27,
		"encoders[0].headers.Authorization": 28,
		"encoders[1]":                       30,
		"encoders[1].name":                  31,
		"encoders[1].env":                   32,
		"encoders[1].env.PATH":              33,
		"encoders[1].sub[0]":                35,
		"encoders[1].sub[0].k":              36,
		"encoders[1].sub[1]":                37,
		"encoders[1].sub[1].k":              38,
		"rooms":                             40,
		"rooms.101":                         41,
		`rooms."Suite \"A\""`:               42,
		"digital_keys":                      43,
		"digital_keys.enabled":              44,
	}
	var parsed map[string]any
	if _, err := toml.Decode(doc, &parsed); err != nil {
		t.Fatalf("the scanner only sees valid files: %v", err)
	}
	ix := scanLines([]byte(doc))
	if !maps.Equal(ix.byPath, want) {
		for k, v := range want {
			if ix.byPath[k] != v {
				t.Errorf("%s: line %d, want %d", k, ix.byPath[k], v)
			}
		}
		for k, v := range ix.byPath {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s at line %d", k, v)
			}
		}
	}
	// A key the scanner does not index (inside an inline table) falls back
	// to its enclosing key.
	if got := ix.line("encoders[0].inline.x"); got != 24 {
		t.Errorf("inline key: line %d, want 24", got)
	}
	if got, line := ix.firstOf([]string{"encoders", "sub", "k"}); got != "encoders[1].sub[0].k" || line != 36 {
		t.Errorf("firstOf: %s %d", got, line)
	}
}
