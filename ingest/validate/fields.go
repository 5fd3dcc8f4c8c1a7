package validate

import (
	"github.com/vaxgate/vaxgate/hl7"
)

// The passes read fields by number many times over (PID-7 by the elements pass, the patient
// rules and the date rules; RXA-5 by three rules; ...). hl7.Segment.Field finds field n by
// counting separators from the start of the segment, and Field.Component, Rep and Sub build a
// value for each step: most of the validator's time went there. The structure pass therefore
// records once where every field of every segment is (from the parser's bitmap of field
// separators: hl7.Segment.FieldSeparators), and the rules read fields, repetitions, components and subcomponents
// as sub-slices of the message with cut: the same pieces hl7 returns, without a search from the
// start or a value per step. (Only the values hl7 decodes — escapes, character sets — are still
// read through it.)

// span is where a field is in the message: data[start:end].
type span struct{ start, end uint32 }

// indexFields records the fields of segment i (s), numbered as hl7 numbers them: for the header
// segments (MSH, FHS, BHS) field 1 is the field separator and field 2 the encoding characters.
func (r *run) indexFields(i int, s hl7.Segment) {
	info := &r.segs[i]
	info.f0 = int32(len(r.fields))
	raw := s.Raw()
	if len(raw) <= 3 {
		return
	}
	off := uint32(s.Offset())
	if s.Is("MSH") || s.Is("FHS") || s.Is("BHS") {
		r.fields = append(r.fields, span{off + 3, off + 4})
		info.header = true
	}
	// The separators from the parser's bitmap of them (a bit test per word, not a byte scan).
	start := off + 4
	for p := range s.FieldSeparators(4) {
		r.fields = append(r.fields, span{start, uint32(p)})
		start = uint32(p) + 1
	}
	r.fields = append(r.fields, span{start, off + uint32(len(raw))})
	info.nf = int32(len(r.fields)) - info.f0
}

// fld returns field n of segment i as it is in the message; nil when the segment has no field n.
// For a header segment, fields 1 and 2 are read literally (never split): callers do not split
// them.
func (r *run) fld(i, n int) []byte {
	info := &r.segs[i]
	if n < 1 || n > int(info.nf) {
		return nil
	}
	sp := r.fields[int(info.f0)+n-1]
	return r.data[sp.start:sp.end]
}

// nth returns the n-th (1-based) piece of b separated by sep; nil when there are fewer.
func nth(b []byte, sep byte, n int) []byte {
	start := 0
	for i, c := range b {
		if c != sep {
			continue
		}
		if n == 1 {
			return b[start:i]
		}
		n--
		start = i + 1
	}
	if n == 1 {
		return b[start:]
	}
	return nil
}

// rep1 returns the first repetition of field n of segment i (hl7: Field(n).Rep(1)).
func (r *run) rep1(i, n int) []byte {
	head, _ := cut(r.fld(i, n), r.d.Repetition)
	return head
}

// comp returns component c of a repetition (hl7: Rep.Component(c)).
func (r *run) comp(rep []byte, c int) []byte { return nth(rep, r.d.Component, c) }

// fcomp returns component c of the first repetition of field n of segment i (hl7:
// Field(n).Component(c)).
func (r *run) fcomp(i, n, c int) []byte {
	// One pass, up to the component or the end of the first repetition: the same piece as
	// r.comp(r.rep1(i, n), c), without reading the rest of the field to cut the repetition out.
	f := r.fld(i, n)
	rs, cs := r.d.Repetition, r.d.Component
	start := 0
	for j, b := range f {
		switch b {
		case rs:
			if c == 1 {
				return f[start:j]
			}
			return nil
		case cs:
			if c == 1 {
				return f[start:j]
			}
			c--
			start = j + 1
		}
	}
	if c == 1 {
		return f[start:]
	}
	return nil
}

// comps splits a repetition into its first len(out) components, in one pass: out[k] is component
// k+1 (hl7: Rep.Component(k+1)), nil when there is none. For the rules that read several
// components of one value.
func (r *run) comps(rep []byte, out [][]byte) {
	sep := r.d.Component
	n, start := 0, 0
	for i, c := range rep {
		if c != sep {
			continue
		}
		out[n] = rep[start:i]
		n++
		if n == len(out) {
			return
		}
		start = i + 1
	}
	if rep != nil {
		out[n] = rep[start:]
		n++
	}
	clear(out[n:])
}

// sub returns subcomponent k of a component (hl7: Component.Sub(k)).
func (r *run) sub(comp []byte, k int) []byte { return nth(comp, r.d.Subcomponent, k) }

// plainText reports whether b reads as itself: ASCII without the escape character, so that
// hl7's decoding (escapes, character sets) would return it unchanged.
func plainText(b []byte, esc byte) bool {
	for _, c := range b {
		if c >= 0x80 || c == esc {
			return false
		}
	}
	return true
}
