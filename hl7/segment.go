package hl7

import "bytes"

// A Segment is one segment of a parsed Message. It is a small value (a
// pointer and an index); the zero Segment stands for a segment that is not
// there: it has no name, no fields, and Index and Offset return -1.
type Segment struct {
	m *Message
	i int
}

func (s Segment) idx() *segIndex {
	if s.m == nil || s.i < 0 || s.i >= len(s.m.segs) {
		return nil
	}
	return &s.m.segs[s.i]
}

// Name returns the three-character segment name ("" for the zero Segment).
// It does not allocate for standard HL7 names nor, within a bound, for the
// Z segments a Message has met; other names are built on demand.
func (s Segment) Name() string {
	x := s.idx()
	if x == nil {
		return ""
	}
	if name := standardName(x.code); name != "" {
		return name
	}
	if x.extra > 0 {
		return s.m.extraNames[x.extra-1]
	}
	return string(s.m.data[x.start : x.start+3])
}

// Is reports whether the segment is named name.
func (s Segment) Is(name string) bool {
	x := s.idx()
	return x != nil && len(name) == 3 && x.code == nameCode(name[0], name[1], name[2])
}

// Index returns the 0-based position of the segment in the message, or -1.
func (s Segment) Index() int {
	if s.idx() == nil {
		return -1
	}
	return s.i
}

// Offset returns the byte offset of the segment in Message.Bytes(), or -1.
func (s Segment) Offset() int {
	x := s.idx()
	if x == nil {
		return -1
	}
	return int(x.start)
}

// Raw returns the bytes of the segment, without its terminator.
func (s Segment) Raw() []byte {
	x := s.idx()
	if x == nil {
		return nil
	}
	return s.m.data[x.start:x.end]
}

// NumFields returns the number of the last non-empty field, so that
// trailing empty fields ("PID|1||||") do not count. For MSH it counts MSH-1
// and MSH-2 as HL7 does.
func (s Segment) NumFields() int {
	x := s.idx()
	if x == nil || x.end-x.start <= 3 {
		return 0
	}
	data, fs := s.m.data, s.m.delims.Field
	e := int(x.end)
	for e > int(x.start)+3 && data[e-1] == fs {
		e--
	}
	n := countBits(s.m.seps, int(x.start)+3, e)
	if x.header {
		n++
	}
	return n
}

// Field returns field n, numbered from 1 as HL7 does. For MSH (and the batch
// headers FHS and BHS), Field(1) is the field separator and Field(2) the
// encoding characters, both read literally (never split or unescaped), and
// Field(3) is MSH-3. A field that is not there reads as empty.
func (s Segment) Field(n int) Field {
	x := s.idx()
	if x == nil || n < 1 {
		return Field{}
	}
	lit := false
	if x.header {
		if n == 1 {
			if x.end-x.start <= 3 {
				return Field{}
			}
			return Field{value{m: s.m, start: x.start + 3, end: x.start + 4, lit: true}}
		}
		n--
		lit = n == 1 // MSH-2 is literal: the escape character in it escapes nothing.
	}
	start, end, ok := s.m.field(s.i, x, n)
	if !ok {
		return Field{}
	}
	return Field{value{m: s.m, start: start, end: end, lit: lit}}
}

// value is what Field, Rep, Component and Subcomponent have in common: where
// the raw bytes are in the message (which also gives the delimiters and
// character set), and whether the value is literal (MSH-1 and MSH-2, never
// split or unescaped). A nil m means the value is not there. Offsets rather
// than a slice keep the value types small and cheap to pass around.
type value struct {
	m          *Message
	start, end uint32
	lit        bool
}

func (v value) raw() []byte {
	if v.m == nil {
		return nil
	}
	return v.m.data[v.start:v.end]
}

func (v value) delims() *Delimiters {
	if v.m == nil {
		return &DefaultDelimiters
	}
	return &v.m.delims
}

// isNull reports the HL7 null value, two double quotes: the sender asks for
// the stored value to be deleted, which is not the same as an empty value.
func (v value) isNull() bool {
	return v.end-v.start == 2 && !v.lit && v.m.data[v.start] == '"' && v.m.data[v.start+1] == '"'
}

// offset returns the byte offset of v in the message, or -1.
func (v value) offset() int {
	if v.m == nil {
		return -1
	}
	return int(v.start)
}

// part returns the n-th (1-based) piece of v separated by sep, v ending
// early at its first stop byte unless stop is sep (Field.Component reads the
// first repetition this way without cutting it out first). A literal value has
// a single piece, itself.
func (v value) part(sep, stop byte, n int) value {
	if n < 1 || v.m == nil {
		return value{}
	}
	if v.lit {
		if n == 1 {
			return v
		}
		return value{}
	}
	b := v.m.data[v.start:v.end]
	var i, j int
	if len(b) <= 64 {
		var ok bool
		if i, j, ok = piece(b, sep, stop, n); !ok {
			return value{}
		}
	} else {
		if stop != sep {
			if k := bytes.IndexByte(b, stop); k >= 0 {
				b = b[:k]
			}
		}
		if n > 1 {
			k := nthIndex(b, sep, n-1)
			if k < 0 {
				return value{}
			}
			i = k + 1
		}
		j = len(b)
		if k := bytes.IndexByte(b[i:], sep); k >= 0 {
			j = i + k
		}
	}
	return value{m: v.m, start: v.start + uint32(i), end: v.start + uint32(j)}
}

// count returns the number of pieces of v separated by sep: 0 when v is
// empty, 1 for a literal value.
func (v value) count(sep byte) int {
	if v.end == v.start {
		return 0
	}
	if v.lit {
		return 1
	}
	return countByte(v.m.data[v.start:v.end], sep) + 1
}

// appendDecoded appends the decoded value: escape sequences resolved and the
// message character set converted to UTF-8. The null value decodes to nothing.
func (v value) appendDecoded(dst []byte) []byte {
	if v.end == v.start || v.isNull() {
		return dst
	}
	raw := v.raw()
	if v.lit || plainASCII(raw, v.m.delims.Escape) {
		return append(dst, raw...) // nothing to decode
	}
	dec := v.m.dec
	if dec == nil {
		dec = utf8Decoder
	}
	return appendUnescaped(dst, v.raw(), &v.m.delims, dec)
}

func (v value) String() string {
	if v.end == v.start || v.isNull() {
		return ""
	}
	// Decode on the stack when the value is short (nearly always), so that
	// the only allocation is the returned string.
	var buf [256]byte
	return string(v.appendDecoded(buf[:0]))
}

// A Field is one field of a segment, with all its repetitions.
type Field struct{ v value }

// Raw returns the field as it is in the message, not decoded.
func (f Field) Raw() []byte { return f.v.raw() }

// IsEmpty reports whether the field is absent or empty. The null value ""
// is not empty: see IsNull.
func (f Field) IsEmpty() bool { return f.v.end == f.v.start }

// IsNull reports whether the field is the HL7 null value "" (two double
// quotes), by which a sender asks for a stored value to be deleted.
func (f Field) IsNull() bool { return f.v.isNull() }

// Offset returns the byte offset of the field in Message.Bytes(), or -1 if
// the field is not there.
func (f Field) Offset() int { return f.v.offset() }

// NumReps returns the number of repetitions (0 for an empty field).
func (f Field) NumReps() int { return f.v.count(f.v.delims().Repetition) }

// Rep returns repetition i, numbered from 1.
func (f Field) Rep(i int) Rep {
	d := f.v.delims()
	return Rep{f.v.part(d.Repetition, d.Repetition, i)}
}

// NumComponents returns the number of components of the first repetition.
func (f Field) NumComponents() int { return f.Rep(1).NumComponents() }

// Component returns component n (from 1) of the first repetition.
func (f Field) Component(n int) Component {
	d := f.v.delims()
	return Component{f.v.part(d.Component, d.Repetition, n)}
}

// String returns the decoded field: escape sequences resolved and the message
// character set converted to UTF-8. Delimiters between repetitions and
// components are kept as they are; the null value reads as "".
func (f Field) String() string { return f.v.String() }

// AppendDecoded appends the decoded field (as String returns it) to dst.
func (f Field) AppendDecoded(dst []byte) []byte { return f.v.appendDecoded(dst) }

// A Rep is one repetition of a field.
type Rep struct{ v value }

// Raw returns the repetition as it is in the message, not decoded.
func (r Rep) Raw() []byte { return r.v.raw() }

// IsEmpty reports whether the repetition is absent or empty.
func (r Rep) IsEmpty() bool { return r.v.end == r.v.start }

// IsNull reports whether the repetition is the HL7 null value "".
func (r Rep) IsNull() bool { return r.v.isNull() }

// Offset returns the byte offset of the repetition in Message.Bytes(), or -1.
func (r Rep) Offset() int { return r.v.offset() }

// NumComponents returns the number of components (0 when empty).
func (r Rep) NumComponents() int { return r.v.count(r.v.delims().Component) }

// Component returns component n, numbered from 1.
func (r Rep) Component(n int) Component {
	d := r.v.delims()
	return Component{r.v.part(d.Component, d.Component, n)}
}

// String returns the decoded repetition.
func (r Rep) String() string { return r.v.String() }

// AppendDecoded appends the decoded repetition to dst.
func (r Rep) AppendDecoded(dst []byte) []byte { return r.v.appendDecoded(dst) }

// A Component is one component of a repetition.
type Component struct{ v value }

// Raw returns the component as it is in the message, not decoded.
func (c Component) Raw() []byte { return c.v.raw() }

// IsEmpty reports whether the component is absent or empty.
func (c Component) IsEmpty() bool { return c.v.end == c.v.start }

// IsNull reports whether the component is the HL7 null value "".
func (c Component) IsNull() bool { return c.v.isNull() }

// Offset returns the byte offset of the component in Message.Bytes(), or -1.
func (c Component) Offset() int { return c.v.offset() }

// NumSubs returns the number of subcomponents (0 when empty).
func (c Component) NumSubs() int { return c.v.count(c.v.delims().Subcomponent) }

// Sub returns subcomponent n, numbered from 1.
func (c Component) Sub(n int) Subcomponent {
	d := c.v.delims()
	return Subcomponent{c.v.part(d.Subcomponent, d.Subcomponent, n)}
}

// String returns the decoded component.
func (c Component) String() string { return c.v.String() }

// AppendDecoded appends the decoded component to dst.
func (c Component) AppendDecoded(dst []byte) []byte { return c.v.appendDecoded(dst) }

// A Subcomponent is one subcomponent of a component.
type Subcomponent struct{ v value }

// Raw returns the subcomponent as it is in the message, not decoded.
func (s Subcomponent) Raw() []byte { return s.v.raw() }

// IsEmpty reports whether the subcomponent is absent or empty.
func (s Subcomponent) IsEmpty() bool { return s.v.end == s.v.start }

// IsNull reports whether the subcomponent is the HL7 null value "".
func (s Subcomponent) IsNull() bool { return s.v.isNull() }

// Offset returns the byte offset of the subcomponent in Message.Bytes(), or -1.
func (s Subcomponent) Offset() int { return s.v.offset() }

// String returns the decoded subcomponent.
func (s Subcomponent) String() string { return s.v.String() }

// AppendDecoded appends the decoded subcomponent to dst.
func (s Subcomponent) AppendDecoded(dst []byte) []byte { return s.v.appendDecoded(dst) }
