package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/mews-keyd/mews-keyd/keys"
)

// encoder reads the common keys of one [[encoders]] table, then hands the
// table to its driver's config (STYLE convention 2).
func (p *parser) encoder(md *toml.MetaData, i int, prim toml.Primitive) (Encoder, error) {
	at := pathString([]seg{{name: "encoders", index: i}})
	doc, err := p.reencode(md, prim, at)
	if err != nil {
		return Encoder{}, err
	}
	enc := Encoder{Timeout: keys.Duration(DefaultTimeout)}
	// Not strict: the driver's keys are checked below, against its config.
	if _, err := toml.Decode(doc, &enc); err != nil {
		return Encoder{}, p.fromTOML(err, at, false)
	}
	switch {
	case enc.Name == "":
		return Encoder{}, p.errorf(at+".name", "required: the name key_cutters and digital_keys refer to")
	case enc.Driver == "":
		return Encoder{}, p.errorf(at+".driver", "required (known: %s)", strings.Join(keys.Drivers(), ", "))
	case enc.Timeout <= 0:
		return Encoder{}, p.errorf(at+".timeout", "must be positive")
	}
	drv, ok := keys.Lookup(enc.Driver)
	if !ok {
		return Encoder{}, p.errorf(at+".driver", "unknown driver %q (known: %s)", enc.Driver, strings.Join(keys.Drivers(), ", "))
	}
	enc.Config = drv.NewConfig()
	target := enc.Config
	if target == nil {
		target = &struct{}{} // a driver without settings: every other key is unknown
	}
	if err := p.decodeStrict(doc, at, target, keys.CommonKeys...); err != nil {
		return Encoder{}, err
	}
	if v, ok := enc.Config.(keys.Validator); ok {
		if err := v.Validate(); err != nil {
			return Encoder{}, p.driverError(at, target, err)
		}
	}
	return enc, nil
}

// driverError places a driver's validation error. A message that starts
// with one of the driver's keys ("address: required") is attributed to that
// key and its line; anything else to the encoder's table. A driver that
// reports several problems with errors.Join gets one line for each.
func (p *parser) driverError(at string, cfg any, err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	placed := make([]error, 0, len(errs))
	for _, err := range errs {
		msg := err.Error()
		if key, rest, ok := strings.Cut(msg, ": "); ok && hasKey(cfg, key) {
			placed = append(placed, p.errorf(at+"."+key, "%s", rest))
		} else {
			placed = append(placed, p.errorf(at, "%s", msg))
		}
	}
	if len(placed) == 1 {
		return placed[0]
	}
	return errors.Join(placed...)
}

// hasKey reports whether the struct cfg points to has a field TOML would
// decode key into.
func hasKey(cfg any, key string) bool {
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" {
			name = f.Name
		}
		if f.IsExported() && name != "-" && strings.EqualFold(name, key) {
			return true
		}
	}
	return false
}

// reencode turns one element of an array of tables back into a TOML
// document of its own. BurntSushi names keys in arrays of tables without
// their index and keeps one "decoded" set per document, so a key one
// encoder's driver knows would count as decoded for every other encoder, and
// its type errors would point at the last element's line. Decoding each
// element as its own document keeps both checks per element.
func (p *parser) reencode(md *toml.MetaData, prim toml.Primitive, at string) (string, error) {
	var raw map[string]any
	if err := md.PrimitiveDecode(prim, &raw); err != nil {
		return "", p.fromTOML(err, at, false)
	}
	doc, err := toml.Marshal(raw)
	if err != nil {
		return "", p.errorf(at, "%v", err)
	}
	return string(doc), nil
}

// decodeStrict decodes an element's document into v and refuses keys v does
// not have, apart from ignore (keys read by someone else).
func (p *parser) decodeStrict(doc, at string, v any, ignore ...string) error {
	md, err := toml.Decode(doc, v)
	if err != nil {
		return p.fromTOML(err, at, false)
	}
	for _, k := range md.Undecoded() {
		if len(k) == 1 && containsFold(ignore, k[0]) {
			continue
		}
		path := make([]seg, len(k))
		for i, name := range k {
			path[i] = seg{name: name, index: -1}
		}
		key := at + "." + pathString(path)
		msg := "unknown key"
		if md.Type(k...) == "Hash" {
			msg = "unknown table"
		}
		return p.errorf(key, "%s", msg)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// errorf makes an Error for key, placed on the key's line or, if the key is
// not in the file, on its enclosing table's.
func (p *parser) errorf(key, format string, args ...any) *Error {
	return &Error{File: p.file, Line: p.ix.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) warnf(key, format string, args ...any) {
	p.warnings = append(p.warnings, p.errorf(key, format, args...).Error())
}
