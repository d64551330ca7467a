package config

import (
	"strconv"
	"strings"
)

// lineIndex knows on which line each table header and key of a config file
// sits. BurntSushi/toml reports lines for syntax errors only, and names keys
// in arrays of tables without their index ("encoders.adress"), so unknown-key
// and validation errors would otherwise point nowhere; this index gives them
// "config.toml:14: encoders[1].adress".
//
// It is a line scanner, not a TOML parser: it runs only on files the TOML
// parser has accepted, and follows headers, dotted and quoted keys, strings
// and values spanning lines. Keys inside inline tables are not indexed; a
// lookup for one falls back to the line of the enclosing key.
type lineIndex struct {
	byPath map[string]int    // "encoders[1].address" -> line
	byLine map[int]string    // line -> "encoders[1].address"
	first  map[string]string // "encoders.address" -> "encoders[0].address", the first in the file
}

// scanLines indexes data. Paths are formatted by pathString.
func scanLines(data []byte) *lineIndex {
	ix := &lineIndex{byPath: map[string]int{}, byLine: map[int]string{}, first: map[string]string{}}
	var (
		table  []seg              // current table, with array indexes
		arrays = map[string]int{} // indexed path of an array of tables -> elements so far
		val    valueScanner
	)
	// Windows editors save with a byte order mark, which TOML allows.
	text := strings.TrimPrefix(string(data), "\ufeff")
	for n, line := range strings.Split(text, "\n") {
		lineNo := n + 1
		if val.open() {
			val.scan(line)
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			array := strings.HasPrefix(t, "[[")
			names, _ := readKey(strings.TrimLeft(t, "["))
			if len(names) == 0 {
				continue
			}
			table = resolve(arrays, names[:len(names)-1])
			last := seg{name: names[len(names)-1], index: -1}
			if array {
				k := pathString(append(table, seg{name: last.name, index: -1}))
				last.index = arrays[k]
				arrays[k]++
			}
			table = append(table, last)
			ix.add(lineNo, table)
			continue
		}
		names, rest := readKey(t)
		rest = strings.TrimSpace(rest)
		if len(names) == 0 || !strings.HasPrefix(rest, "=") {
			continue
		}
		path := append([]seg(nil), table...)
		for _, name := range names {
			path = append(path, seg{name: name, index: -1})
		}
		ix.add(lineNo, path)
		val.scan(rest[1:])
	}
	return ix
}

func (ix *lineIndex) add(line int, path []seg) {
	p := pathString(path)
	ix.byPath[p] = line
	ix.byLine[line] = p
	plain := make([]seg, len(path))
	for i, s := range path {
		plain[i] = seg{name: s.name, index: -1}
	}
	if _, seen := ix.first[pathString(plain)]; !seen {
		ix.first[pathString(plain)] = p
	}
}

// line returns the line of path, or of its nearest enclosing key or table
// that the index knows; 0 if none.
func (ix *lineIndex) line(path string) int {
	for path != "" {
		if l, ok := ix.byPath[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// firstOf returns the indexed path and line of the first occurrence of a key
// named without array indexes, as BurntSushi's MetaData names them.
func (ix *lineIndex) firstOf(names []string) (string, int) {
	plain := make([]seg, len(names))
	for i, n := range names {
		plain[i] = seg{name: n, index: -1}
	}
	p := pathString(plain)
	if indexed, ok := ix.first[p]; ok {
		return indexed, ix.byPath[indexed]
	}
	return p, ix.line(p)
}

// seg is one component of a key path; index is the element of an array of
// tables, or -1.
type seg struct {
	name  string
	index int
}

// resolve gives each component that names an array of tables the index of
// its latest element, as TOML does for a header like [encoders.headers].
func resolve(arrays map[string]int, names []string) []seg {
	var path []seg
	for _, name := range names {
		s := seg{name: name, index: -1}
		if n, ok := arrays[pathString(append(path, s))]; ok {
			s.index = n - 1
		}
		path = append(path, s)
	}
	return path
}

// pathString formats a path the way errors show it: encoders[1].address,
// rooms."101".
func pathString(path []seg) string {
	var b strings.Builder
	for i, s := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(s.name))
		if s.index >= 0 {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		}
	}
	return b.String()
}

func quoteKey(name string) string {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isBare(r) }) >= 0 {
		return strconv.Quote(name)
	}
	return name
}

func isBare(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// parentPath drops the last component of a formatted path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		return p[:strings.LastIndexByte(p, '[')]
	}
	inQuote := false
	for i := len(p) - 1; i >= 0; i-- {
		switch {
		case p[i] == '"' && (i == 0 || p[i-1] != '\\'):
			inQuote = !inQuote
		case p[i] == '.' && !inQuote:
			return p[:i]
		}
	}
	return ""
}

// readKey reads a dotted key of bare and quoted parts from the start of s
// and returns the parts and what follows.
func readKey(s string) ([]string, string) {
	var names []string
	for {
		s = strings.TrimLeft(s, " \t")
		var name string
		switch {
		case strings.HasPrefix(s, `"`):
			end := closingQuote(s)
			if end < 0 {
				return nil, s
			}
			var err error
			if name, err = strconv.Unquote(s[:end+1]); err != nil {
				name = s[1:end]
			}
			s = s[end+1:]
		case strings.HasPrefix(s, "'"):
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, s
			}
			name, s = s[1:end+1], s[end+2:]
		default:
			end := strings.IndexFunc(s, func(r rune) bool { return !isBare(r) })
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return names, s
			}
			name, s = s[:end], s[end:]
		}
		names = append(names, name)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return names, s
		}
		s = s[1:]
	}
}

// closingQuote returns the index of the quote that ends the basic string
// starting at s[0], or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// valueScanner follows a value across lines: multi-line strings and arrays
// or inline tables left open, so their lines are not mistaken for keys.
type valueScanner struct {
	depth int    // open [ and {
	multi string // `"""` or `'''` while inside a multi-line string
}

func (v *valueScanner) open() bool { return v.depth > 0 || v.multi != "" }

func (v *valueScanner) scan(s string) {
	for i := 0; i < len(s); i++ {
		if v.multi != "" {
			if v.multi == `"""` && s[i] == '\\' {
				i++
				continue
			}
			if strings.HasPrefix(s[i:], v.multi) {
				i += len(v.multi) - 1
				// A closing delimiter may carry up to two extra quotes
				// belonging to the string.
				for i+1 < len(s) && s[i+1] == v.multi[0] {
					i++
				}
				v.multi = ""
			}
			continue
		}
		switch c := s[i]; c {
		case '#':
			return
		case '[', '{':
			v.depth++
		case ']', '}':
			v.depth--
		case '"', '\'':
			if strings.HasPrefix(s[i:], strings.Repeat(string(c), 3)) {
				v.multi = strings.Repeat(string(c), 3)
				i += 2
				continue
			}
			var end int
			if c == '"' {
				end = closingQuote(s[i:])
			} else {
				end = strings.IndexByte(s[i+1:], '\'') + 1
			}
			if end <= 0 {
				return
			}
			i += end
		}
	}
}
