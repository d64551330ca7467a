package fias

import (
	"strings"
	"unicode/utf8"
)

// latin maps letters with diacritics (and a few typographic signs) to the
// ASCII a lock system can print on its screen or store in its guest list.
// FIAS text is single-byte; sending UTF-8 would corrupt names on the lock side.
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

// Clean makes s safe to send as a FIAS field value: letters with diacritics
// become their ASCII base letters (é→e, ř→r, ß→ss), and everything that is
// still not printable ASCII is dropped — control characters, the field
// separator '|', and the frame bytes STX and ETX included. Clean is
// idempotent.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteString(toASCII(r))
	}
	return b.String()
}

// toASCII is what Clean makes of r: r itself, its ASCII form, or nothing.
func toASCII(r rune) string {
	switch {
	case r == '|':
		return ""
	case r >= 0x20 && r < 0x7f:
		return string(r)
	}
	return latin[r]
}

// unsendable returns the first character of s that Clean would drop, and
// whether there is one. Where dropping changes what a value points to, as
// in a room number, the value must be refused instead.
func unsendable(s string) (rune, bool) {
	for _, r := range s {
		if toASCII(r) == "" {
			return r, true
		}
	}
	return 0, false
}

func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '|' {
			return false
		}
	}
	return true
}

// fromWire turns a value received from the lock system into UTF-8. Values are
// ASCII by the specification, but vendors do send Latin-1 in clear-text
// messages; every Latin-1 byte is the code point of the same number.
func fromWire(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	rs := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		rs[i] = rune(s[i])
	}
	return string(rs)
}
