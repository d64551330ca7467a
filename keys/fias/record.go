package fias

import (
	"errors"
	"fmt"
	"strings"
)

// Record is one FIAS record: a two-letter type such as "KR" and its fields in
// wire order.
type Record struct {
	Type   string
	Fields []Field
}

// Field is one field of a record: a two-character id such as "RN" or "G#"
// and its value, which may be empty.
type Field struct {
	ID    string
	Value string
}

// NewRecord builds a record from a type and id, value pairs; a trailing id
// without a value gets an empty one.
func NewRecord(typ string, idValues ...string) Record {
	r := Record{Type: typ}
	for i := 0; i < len(idValues); i += 2 {
		f := Field{ID: idValues[i]}
		if i+1 < len(idValues) {
			f.Value = idValues[i+1]
		}
		r.Fields = append(r.Fields, f)
	}
	return r
}

// Lookup returns the value of the first field with the id, and whether there
// is one.
func (r Record) Lookup(id string) (string, bool) {
	for _, f := range r.Fields {
		if f.ID == id {
			return f.Value, true
		}
	}
	return "", false
}

// Get returns the value of the first field with the id, or "".
func (r Record) Get(id string) string {
	v, _ := r.Lookup(id)
	return v
}

// IDs returns the field ids in wire order.
func (r Record) IDs() []string {
	ids := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		ids[i] = f.ID
	}
	return ids
}

// String returns the record in wire syntax without the frame bytes. Key
// records carry guest names: log them at debug level only.
func (r Record) String() string {
	var b strings.Builder
	b.WriteString(Clean(r.Type))
	b.WriteByte('|')
	for _, f := range r.Fields {
		b.WriteString(Clean(f.ID))
		b.WriteString(Clean(f.Value))
		b.WriteByte('|')
	}
	return b.String()
}

// AppendFrame appends the record, framed by STX and ETX, to dst. Every part
// goes through Clean, so nothing a guest name contains can break the framing
// or the field structure. Type and ids are expected to be two printable
// ASCII characters; the protocol defines them, callers do not invent them.
func (r Record) AppendFrame(dst []byte) []byte {
	dst = append(dst, stx)
	dst = append(dst, r.String()...)
	return append(dst, etx)
}

// ErrMalformed is returned for a frame that is not a FIAS record.
var ErrMalformed = errors.New("malformed FIAS record")

// DecodeRecord parses the content of one frame, "RT|F1value|F2value|". The
// trailing separator is optional and empty segments ("||") are skipped, as
// some vendors emit them. Values are returned as the bytes received.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) < 2 || !isID(b[:2]) || (len(b) > 2 && b[2] != '|') {
		return Record{}, fmt.Errorf("%w: bad record type", ErrMalformed)
	}
	r := Record{Type: string(b[:2])}
	if len(b) <= 3 {
		return r, nil
	}
	for seg := range strings.SplitSeq(string(b[3:]), "|") {
		if seg == "" {
			continue
		}
		if len(seg) < 2 || !isID([]byte(seg[:2])) {
			// No field content in the error: it may be a guest name.
			return Record{}, fmt.Errorf("%w: bad field %d in %s record", ErrMalformed, len(r.Fields)+1, r.Type)
		}
		r.Fields = append(r.Fields, Field{ID: seg[:2], Value: seg[2:]})
	}
	return r, nil
}

// isID reports whether b is a record type or field id: printable ASCII, no
// separator. Ids such as "G#", "V#" and "$1" are why this is not [A-Z0-9].
func isID(b []byte) bool {
	for _, c := range b {
		if c <= 0x20 || c >= 0x7f || c == '|' {
			return false
		}
	}
	return true
}
