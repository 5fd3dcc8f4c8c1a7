package hl7

import "fmt"

// A Builder writes an outgoing message segment by segment, each terminated by
// CR, with every text value escaped for its delimiters. The zero Builder is
// not usable; call NewBuilder.
//
//	b := hl7.NewBuilder(m.Delimiters())
//	b.Segment("MSH", hl7.Text("VAXGATE"), ...)
//	b.Segment("MSA", hl7.Text("AA"), hl7.Text(controlID))
//	ack := b.Bytes()
type Builder struct {
	d   Delimiters
	buf []byte
	err error
}

// NewBuilder returns a Builder writing with d. Invalid delimiters (including
// the zero Delimiters) are replaced by DefaultDelimiters, so that a Builder
// always writes a parseable message; Err reports the replacement.
func NewBuilder(d Delimiters) *Builder {
	b := &Builder{d: d}
	if err := d.Validate(); err != nil {
		b.d = DefaultDelimiters
		if d != (Delimiters{}) {
			b.err = fmt.Errorf("hl7: builder: %w; using %s", err, DefaultDelimiters)
		}
	}
	return b
}

// Delimiters returns the delimiters the Builder writes with.
func (b *Builder) Delimiters() Delimiters { return b.d }

// Segment appends a segment named name with the given fields, numbered from
// 1 (Value{} leaves a field empty). For "MSH", "FHS" and "BHS" the first two
// fields (the field separator and the encoding characters) are written from
// the Builder's delimiters and fields start with field 3, so
// b.Segment("MSH", hl7.Text("APP")) writes "MSH|^~\&|APP". Trailing empty
// fields are not written. A name that is not three characters [A-Z0-9] is
// not written either; Err reports it.
func (b *Builder) Segment(name string, fields ...Value) *Builder {
	if len(name) != 3 || !isNameChar(name[0]) || !isNameChar(name[1]) || !isNameChar(name[2]) {
		if b.err == nil {
			b.err = fmt.Errorf("hl7: builder: invalid segment name %q", name)
		}
		return b
	}
	for len(fields) > 0 && fields[len(fields)-1].isEmpty() {
		fields = fields[:len(fields)-1]
	}
	d := &b.d
	b.buf = append(b.buf, name...)
	if name == "MSH" || name == "FHS" || name == "BHS" {
		b.buf = append(b.buf, d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent)
	}
	for i := range fields {
		b.buf = append(b.buf, d.Field)
		b.buf = fields[i].appendTo(b.buf, d, levelField)
	}
	b.buf = append(b.buf, '\r')
	return b
}

// Bytes returns the message written so far. The slice aliases the Builder's
// buffer: it is valid until the next Segment or Reset.
func (b *Builder) Bytes() []byte { return b.buf }

// String returns a copy of the message written so far.
func (b *Builder) String() string { return string(b.buf) }

// Len returns the number of bytes written so far.
func (b *Builder) Len() int { return len(b.buf) }

// Reset empties the Builder, keeping its buffer and delimiters, and clears Err.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.err = nil
}

// Err returns the first problem met while building: invalid delimiters given
// to NewBuilder or an invalid segment name.
func (b *Builder) Err() error { return b.err }

// A Value is the content of one field (or component) given to
// Builder.Segment. Build values with Text, Comps, Subs, Reps, CompValues,
// RawValue and Null; the zero Value is an empty field.
type Value struct {
	kind  valueKind
	s     string
	parts []string
	vals  []Value
}

type valueKind uint8

const (
	kindEmpty valueKind = iota
	kindText
	kindRaw
	kindNull
	kindComps
	kindSubs
	kindCompValues
	kindReps
)

// Levels of nesting at which a Value is written.
const (
	levelField = iota
	levelComponent
	levelSub
)

// Text is a single value, escaped when written.
func Text(s string) Value { return Value{kind: kindText, s: s} }

// RawValue is a value already encoded for the Builder's delimiters, written
// as it is. Use it to copy a field from a received message with the same
// delimiters (Field.Raw), never for text from elsewhere.
func RawValue(s string) Value { return Value{kind: kindRaw, s: s} }

// Null is the HL7 null value "", which asks the receiver to delete the value.
func Null() Value { return Value{kind: kindNull} }

// Comps is a value made of components (separated by ^), each escaped.
// Trailing empty components are not written. Used inside CompValues, its
// parts are written as subcomponents.
func Comps(parts ...string) Value {
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return Value{kind: kindComps, parts: parts}
}

// Subs is a value made of subcomponents (separated by &), each escaped, for
// use as one component in CompValues (for example an HD inside an XCN).
// Trailing empty subcomponents are not written.
func Subs(parts ...string) Value {
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return Value{kind: kindSubs, parts: parts}
}

// CompValues is a value made of components given as Values, so that a
// component can itself hold subcomponents: CompValues(Text("123"),
// Value{}, Value{}, Subs("NIST", "2.16.840", "ISO")). Trailing empty
// components are not written.
func CompValues(vs ...Value) Value {
	for len(vs) > 0 && vs[len(vs)-1].isEmpty() {
		vs = vs[:len(vs)-1]
	}
	return Value{kind: kindCompValues, vals: vs}
}

// Reps is a field made of repetitions (separated by ~). It only makes sense as
// a whole field: inside a component, only its first repetition is written.
func Reps(vs ...Value) Value { return Value{kind: kindReps, vals: vs} }

func (v Value) isEmpty() bool {
	switch v.kind {
	case kindText, kindRaw:
		return v.s == ""
	case kindComps, kindSubs:
		return len(v.parts) == 0
	case kindCompValues, kindReps:
		for _, x := range v.vals {
			if !x.isEmpty() {
				return false
			}
		}
		return true
	case kindNull:
		return false
	}
	return true
}

// appendTo writes v at the given nesting level.
func (v Value) appendTo(dst []byte, d *Delimiters, level int) []byte {
	switch v.kind {
	case kindText:
		return Escape(dst, v.s, *d)
	case kindRaw:
		return append(dst, v.s...)
	case kindNull:
		return append(dst, '"', '"')
	case kindComps:
		sep := d.Component
		if level > levelField {
			sep = d.Subcomponent
		}
		return appendParts(dst, v.parts, sep, d)
	case kindSubs:
		return appendParts(dst, v.parts, d.Subcomponent, d)
	case kindCompValues:
		if level > levelField {
			// Components of a component are subcomponents; deeper nesting
			// has no separator left, so only text can be written there.
			for i, x := range v.vals {
				if i > 0 {
					dst = append(dst, d.Subcomponent)
				}
				dst = x.appendTo(dst, d, levelSub)
			}
			return dst
		}
		for i, x := range v.vals {
			if i > 0 {
				dst = append(dst, d.Component)
			}
			dst = x.appendTo(dst, d, levelComponent)
		}
		return dst
	case kindReps:
		if level > levelField {
			if len(v.vals) > 0 {
				return v.vals[0].appendTo(dst, d, level)
			}
			return dst
		}
		for i, x := range v.vals {
			if i > 0 {
				dst = append(dst, d.Repetition)
			}
			dst = x.appendTo(dst, d, levelField)
		}
		return dst
	}
	return dst
}

func appendParts(dst []byte, parts []string, sep byte, d *Delimiters) []byte {
	for i, p := range parts {
		if i > 0 {
			dst = append(dst, sep)
		}
		dst = Escape(dst, p, *d)
	}
	return dst
}
