package mews

// Secret holds a token. It prints as [redacted] in every format verb, JSON and
// logs, so a token cannot leak through an error string or a log field by
// accident; Reveal is the one deliberate way out.
type Secret string

const redacted = "[redacted]"

// Reveal returns the token itself, for request bodies and cookies only.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// MarshalText keeps the secret out of JSON and zerolog output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
