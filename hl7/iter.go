package hl7

import (
	"bytes"
	"iter"
)

// Iterating over the parts of a message.
//
// Rep(i), Component(n) and Sub(n) find their part by scanning the value from
// its start, so a loop that calls Rep(i) for i = 1..NumReps() reads a field
// of n repetitions n times over: quadratic, and a field of a million "~" is
// enough to keep a core busy for minutes. The iterators below read each value
// once, from left to right: a loop over them costs time in proportion to the
// bytes it covers. They allocate nothing when the loop body does not keep the
// iterator (the compiler inlines range-over-func loops of this shape).

// Segments returns an iterator over the segments of m, with their 0-based
// positions.
func (m *Message) Segments() iter.Seq2[int, Segment] {
	return func(yield func(int, Segment) bool) {
		for i := range m.segs {
			if !yield(i, Segment{m: m, i: i}) {
				return
			}
		}
	}
}

// Fields returns an iterator over the fields of s, numbered from 1 as Field
// numbers them (for MSH, FHS and BHS, field 1 is the field separator and 2
// the encoding characters), up to the last field present, empty ones
// included. It reads the segment once.
func (s Segment) Fields() iter.Seq2[int, Field] {
	return func(yield func(int, Field) bool) {
		x := s.idx()
		if x == nil || x.end-x.start <= 3 {
			return
		}
		n := 1
		if x.header {
			if !yield(1, s.Field(1)) {
				return
			}
			n = 2
		}
		data, fs := s.m.data, s.m.delims.Field
		start := x.start + 4 // after the separator that follows the name
		for {
			b := data[start:x.end]
			end := x.end
			if k := bytes.IndexByte(b, fs); k >= 0 {
				end = start + uint32(k)
			}
			lit := x.header && n == 2
			if !yield(n, Field{value{m: s.m, start: start, end: end, lit: lit}}) {
				return
			}
			if end == x.end {
				return
			}
			start = end + 1
			n++
		}
	}
}

// Reps returns an iterator over the repetitions of f, numbered from 1. An
// empty field has none; "a~~b" has three, the second empty.
func (f Field) Reps() iter.Seq2[int, Rep] {
	return func(yield func(int, Rep) bool) {
		v := f.v
		if v.m == nil || v.end == v.start {
			return
		}
		if v.lit {
			yield(1, Rep{v})
			return
		}
		sep := v.m.delims.Repetition
		for k, start := 1, v.start; ; k++ {
			end := pieceEnd(v, sep, start)
			if !yield(k, Rep{value{m: v.m, start: start, end: end}}) || end == v.end {
				return
			}
			start = end + 1
		}
	}
}

// Components returns an iterator over the components of r, numbered from 1.
func (r Rep) Components() iter.Seq2[int, Component] {
	return func(yield func(int, Component) bool) {
		v := r.v
		if v.m == nil || v.end == v.start {
			return
		}
		if v.lit {
			yield(1, Component{v})
			return
		}
		sep := v.m.delims.Component
		for k, start := 1, v.start; ; k++ {
			end := pieceEnd(v, sep, start)
			if !yield(k, Component{value{m: v.m, start: start, end: end}}) || end == v.end {
				return
			}
			start = end + 1
		}
	}
}

// Subs returns an iterator over the subcomponents of c, numbered from 1.
func (c Component) Subs() iter.Seq2[int, Subcomponent] {
	return func(yield func(int, Subcomponent) bool) {
		v := c.v
		if v.m == nil || v.end == v.start {
			return
		}
		if v.lit {
			yield(1, Subcomponent{v})
			return
		}
		sep := v.m.delims.Subcomponent
		for k, start := 1, v.start; ; k++ {
			end := pieceEnd(v, sep, start)
			if !yield(k, Subcomponent{value{m: v.m, start: start, end: end}}) || end == v.end {
				return
			}
			start = end + 1
		}
	}
}

// pieceEnd returns where the piece of v that starts at start ends: at the
// next sep, or at the end of v.
func pieceEnd(v value, sep byte, start uint32) uint32 {
	if i := bytes.IndexByte(v.m.data[start:v.end], sep); i >= 0 {
		return start + uint32(i)
	}
	return v.end
}

// A Position names where a byte of a message is, as HL7 numbers it: the
// 0-based segment position, and the field, repetition, component and
// subcomponent from 1. Field 0 is the segment name.
type Position struct {
	Segment                             int
	Field, Rep, Component, Subcomponent int
}

// Locate returns the position of the byte at offset in Bytes(); ok is false
// when the byte is not inside a segment (a terminator, a blank line, or
// outside the message). It costs time in proportion to the segment's length.
func (m *Message) Locate(offset int) (p Position, ok bool) {
	if offset < 0 || offset >= len(m.data) || len(m.segs) == 0 {
		return Position{}, false
	}
	lo, hi := 0, len(m.segs)
	for lo < hi { // the last segment starting at or before offset
		mid := int(uint(lo+hi) >> 1)
		if int(m.segs[mid].start) <= offset {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return Position{}, false
	}
	x := &m.segs[lo-1]
	if offset >= int(x.end) {
		return Position{}, false
	}
	p = Position{Segment: lo - 1}
	start := int(x.start)
	if offset < start+3 {
		return p, true // the name
	}
	if x.header && offset == start+3 {
		p.Field, p.Rep, p.Component, p.Subcomponent = 1, 1, 1, 1
		return p, true
	}
	p.Field = countBits(m.seps, start+3, offset+1)
	if x.header {
		p.Field++
	}
	// The field starts after the last separator at or before offset.
	fs := m.delims.Field
	from := offset
	for from > start+3 && m.data[from] != fs {
		from--
	}
	p.Rep, p.Component, p.Subcomponent = 1, 1, 1
	if x.header && p.Field == 2 {
		return p, true // MSH-2 is literal
	}
	d := &m.delims
	if from >= offset {
		return p, true // the separator that opens the field
	}
	for _, c := range m.data[from+1 : offset] {
		switch c {
		case d.Repetition:
			p.Rep++
			p.Component, p.Subcomponent = 1, 1
		case d.Component:
			p.Component++
			p.Subcomponent = 1
		case d.Subcomponent:
			p.Subcomponent++
		}
	}
	return p, true
}
