// Package ascii turns guest names and other free text into the printable
// ASCII that lock-system protocols carry (FIAS, Salto's Industry Standard
// protocol), and reads back the Latin-1 some lock systems answer in. Lock
// systems keep single-byte text; sending UTF-8 would corrupt names on the
// lock side.
package ascii

import (
	"strings"
	"unicode/utf8"
)

// latin maps letters with diacritics (and a few typographic signs) to the
// ASCII a lock system can print on its screen or store in its guest list.
var latin = func() map[rune]string {
	groups := []struct{ from, to string }{
		{"ÀÁÂÃÄÅĀĂĄ", "A"}, {"àáâãäåāăą", "a"}, {"Æ", "AE"}, {"æ", "ae"},
		{"ÇĆĈĊČ", "C"}, {"çćĉċč", "c"}, {"ÐĎĐ", "D"}, {"ðďđ", "d"},
		{"ÈÉÊËĒĔĖĘĚ", "E"}, {"èéêëēĕėęě", "e"}, {"ĜĞĠĢ", "G"}, {"ĝğġģ", "g"},
		{"ĤĦ", "H"}, {"ĥħ", "h"}, {"ÌÍÎÏĨĪĬĮİ", "I"}, {"ìíîïĩīĭįı", "i"},
		{"Ĳ", "IJ"}, {"ĳ", "ij"}, {"Ĵ", "J"}, {"ĵ", "j"}, {"Ķ", "K"}, {"ķĸ", "k"},
		{"ĹĻĽĿŁ", "L"}, {"ĺļľŀł", "l"}, {"ÑŃŅŇŊ", "N"}, {"ñńņňŉŋ", "n"},
		{"ÒÓÔÕÖØŌŎŐ", "O"}, {"òóôõöøōŏő", "o"}, {"Œ", "OE"}, {"œ", "oe"},
		{"ŔŖŘ", "R"}, {"ŕŗř", "r"}, {"ŚŜŞŠȘ", "S"}, {"śŝşšșſ", "s"}, {"ß", "ss"},
		{"ŢŤŦȚ", "T"}, {"ţťŧț", "t"}, {"Þ", "TH"}, {"þ", "th"},
		{"ÙÚÛÜŨŪŬŮŰŲ", "U"}, {"ùúûüũūŭůűų", "u"}, {"Ŵ", "W"}, {"ŵ", "w"},
		{"ÝŶŸ", "Y"}, {"ýÿŷ", "y"}, {"ŹŻŽ", "Z"}, {"źżž", "z"},
		{"‘’‚′", "'"}, {"“”„″", `"`}, {"‐‑‒–—", "-"}, {"\u00a0", " "}, {"×", "x"},
	}
	m := make(map[rune]string)
	for _, g := range groups {
		for _, r := range g.from {
			m[r] = g.to
		}
	}
	return m
}()

// Clean makes s safe to send as a field value of a protocol whose field
// separator is one of the characters in drop: letters with diacritics become
// their ASCII base letters (é→e, ř→r, ß→ss), and everything that is still
// not printable ASCII is dropped — control characters, frame bytes such as
// STX and ETX, and the characters in drop included. Clean is idempotent.
func Clean(s, drop string) string {
	if isClean(s, drop) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteString(fold(r, drop))
	}
	return b.String()
}

// fold is what Clean makes of r: r itself, its ASCII form, or nothing.
func fold(r rune, drop string) string {
	switch {
	case strings.ContainsRune(drop, r):
		return ""
	case r >= 0x20 && r < 0x7f:
		return string(r)
	}
	return latin[r]
}

// Unsendable returns the first character of s that Clean would drop, and
// whether there is one. Where dropping changes what a value points to, as
// in a room number ("10|1" would become "101", another door), the value must
// be refused instead.
func Unsendable(s, drop string) (rune, bool) {
	for _, r := range s {
		if fold(r, drop) == "" {
			return r, true
		}
	}
	return 0, false
}

func isClean(s, drop string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || strings.IndexByte(drop, c) >= 0 {
			return false
		}
	}
	return true
}

// FromLatin1 turns a value received from a lock system into UTF-8. Values
// are ASCII by the specifications, but vendors do send Latin-1 in clear-text
// messages; every Latin-1 byte is the code point of the same number.
func FromLatin1(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	rs := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		rs[i] = rune(s[i])
	}
	return string(rs)
}
