package hl7

import "math/bits"

// Reading many positions of one value: a decoder that reads fields 3, 5, 7,
// 8, 10... of a segment, or the six components of a coded element, would
// search from the start of the value for each of them with Field(n) or
// Component(n). FieldsInto and ComponentsInto locate them all in one pass,
// into an array the caller keeps (on its stack), without allocating.

// FieldsInto sets dst[i] to Field(i+1) for every i, in one pass over the
// segment: fields past the last one present are empty.
func (s Segment) FieldsInto(dst []Field) {
	clear(dst)
	x := s.idx()
	if x == nil || x.end-x.start <= 3 || len(dst) == 0 {
		return
	}
	if x.header {
		// MSH-1 and MSH-2 are read literally: Field knows how.
		for i := range dst {
			dst[i] = s.Field(i + 1)
		}
		return
	}
	// The separator after the name opens field 1; each set bit of the
	// separator bitmap after it closes one field and opens the next.
	bm, limit := s.m.seps, int(x.end)
	open := int(x.start) + 3
	n := 0
	pos := open + 1
	for pos < limit {
		w := pos >> 6
		b := bm[w] &^ (1<<(pos&63) - 1)
		for b == 0 {
			if w++; w*64 >= limit {
				break
			}
			b = bm[w]
		}
		if b == 0 {
			break
		}
		p := w*64 + bits.TrailingZeros64(b)
		if p >= limit {
			break
		}
		dst[n] = Field{value{m: s.m, start: uint32(open + 1), end: uint32(p)}}
		if n++; n == len(dst) {
			return
		}
		open, pos = p, p+1
	}
	dst[n] = Field{value{m: s.m, start: uint32(open + 1), end: x.end}}
}

// ComponentsInto sets dst[i] to Component(i+1) for every i, in one pass over
// the repetition: components past the last one present are empty.
func (r Rep) ComponentsInto(dst []Component) {
	clear(dst)
	v := r.v
	if v.m == nil || len(dst) == 0 {
		return
	}
	if v.lit || v.end == v.start {
		dst[0] = Component{v}
		return
	}
	data, sep := v.m.data, v.m.delims.Component
	start := v.start
	for i := range dst {
		end := v.end
		if k := indexByte(data[start:v.end], sep); k >= 0 {
			end = start + uint32(k)
		}
		dst[i] = Component{value{m: v.m, start: start, end: end}}
		if end == v.end {
			return
		}
		start = end + 1
	}
}
