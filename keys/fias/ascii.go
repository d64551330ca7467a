package fias

import "github.com/mews-keyd/mews-keyd/keys/internal/ascii"

// separator is the FIAS field separator, which no value may contain.
const separator = "|"

// Clean makes s safe to send as a FIAS field value: letters with diacritics
// become their ASCII base letters (é→e, ř→r, ß→ss), and everything that is
// still not printable ASCII is dropped — control characters, the field
// separator '|', and the frame bytes STX and ETX included. Clean is
// idempotent.
func Clean(s string) string { return ascii.Clean(s, separator) }
