package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is a problem with the configuration file. It names the file, the
// line (when the key is in the file) and the key, so the operator can go
// straight to it:
//
//	/etc/mews-keyd/config.toml:14: encoders[1].adress: unknown key
//
// Indexes of arrays of tables count from 0 in file order. Where a driver
// reports several problems at once, Load returns them joined (errors.Join),
// one per line. main exits with status 2 when errors.As finds an *Error.
type Error struct {
	File string
	Line int    // 0 when the key is absent (a required key) or unknown
	Key  string // e.g. "mews.api_url", "encoders[1].address", `rooms."101"`
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// BurntSushi/toml reports type mismatches as plain errors, in this shape.
var (
	tomlContext = regexp.MustCompile(`(?s)^toml: (?:line (\d+) )?\(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)
	tomlTypes   = regexp.MustCompile(`^incompatible types: TOML value has type (.+); destination has type (.+)$`)
	tomlTable   = regexp.MustCompile(`^type mismatch for .+: expected table but found (.+)$`)
)

// fromTOML turns a decoding error into an Error. at is "" for the whole
// file; for one element of an array of tables decoded on its own (see
// parser.reencode) it is the element's path, and the line the library gives
// is meaningless, so the line is found through the index instead. syntax
// says the error came from parsing, not from decoding into our types: such
// messages can quote the text the parser choked on, which may be a token.
func (p *parser) fromTOML(err error, at string, syntax bool) *Error {
	var (
		line    int
		lastKey string
		msg     string
	)
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line, lastKey, msg = pe.Position.Line, pe.LastKey, pe.Message
	} else if m := tomlContext.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		if k, uerr := strconv.Unquote(m[2]); uerr == nil {
			lastKey = k
		}
		msg = m[3]
	} else {
		msg = strings.TrimPrefix(err.Error(), "toml: ")
	}
	if m := tomlTypes.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("wrong type: want %s, got %s", tomlType(m[2]), tomlType(m[1]))
	} else if m := tomlTable.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("wrong type: want a table, got %s", tomlType(m[1]))
	}

	e := &Error{File: p.file, Msg: msg}
	switch {
	case at != "":
		e.Key = at
		if lastKey != "" {
			e.Key = at + "." + lastKey
		}
		e.Line = p.ix.line(e.Key)
	case line > 0:
		e.Line = line
		e.Key = p.ix.byLine[line]
		if e.Key == "" && !syntax {
			e.Key = lastKey
		}
	default:
		e.Key = lastKey
		e.Line = p.ix.line(lastKey)
	}
	if syntax && secretPath(e.Key) {
		e.Msg = "invalid value (not shown: this key holds a secret; write strings in double quotes)"
	}
	return e
}

// tomlType names a Go type from the library's messages the way the TOML
// documentation does.
func tomlType(t string) string {
	switch t {
	case "string", "primitive (string-like)":
		return "a string"
	case "int64", "integer":
		return "an integer"
	case "float64", "float":
		return "a float"
	case "bool", "boolean":
		return "a boolean"
	case "map", "map[string]any":
		return "a table"
	case "slice", "[]any":
		return "an array"
	case "[]map[string]any":
		return "an array of tables"
	case "time.Time":
		return "a date-time"
	}
	return t
}

// secretPath reports whether a key may hold a secret, so messages that
// could quote its value must not.
func secretPath(path string) bool {
	p := strings.ToLower(path)
	for _, word := range []string{"token", "secret", "password", "authorization"} {
		if strings.Contains(p[strings.LastIndexByte(p, '.')+1:], word) {
			return true
		}
	}
	// Header and environment tables of drivers carry credentials.
	for p != "" {
		if name := p[strings.LastIndexByte(p, '.')+1:]; name == "headers" || name == "env" {
			return true
		}
		p = parentPath(p)
	}
	return false
}
