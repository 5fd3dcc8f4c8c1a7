package hl7

import (
	"iter"
	"math/bits"
)

// Reading many positions of one value: a decoder that reads fields 3, 5, 7,
// 8, 10... of a segment, or the six components of a coded element, would
// search from the start of the value for each of them with Field(n) or
// Component(n). FieldsInto and ComponentsInto locate them all in one pass,
// into an array the caller keeps (on its stack), without allocating.

// FieldsInto sets dst[i] to Field(i+1) for every i, in one pass over the
// segment: fields past the last one present are empty.
func (s Segment) FieldsInto(dst []Field) {
	x := s.idx()
	if x == nil || x.end-x.start <= 3 || len(dst) == 0 {
		clear(dst)
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
	if pos := open + 1; pos < limit {
		// The bits of one word are taken in turn (each cleared once used), not masked anew from
		// the position for each field.
		w := pos >> 6
		b := bm[w] &^ (1<<(pos&63) - 1)
	scan:
		for {
			for b == 0 {
				if w++; w*64 >= limit {
					break scan
				}
				b = bm[w]
			}
			p := w*64 + bits.TrailingZeros64(b)
			if p >= limit {
				break
			}
			dst[n] = Field{value{m: s.m, start: uint32(open + 1), end: uint32(p)}}
			if n++; n == len(dst) {
				return
			}
			open = p
			b &= b - 1
		}
	}
	dst[n] = Field{value{m: s.m, start: uint32(open + 1), end: x.end}}
	// Only the fields past the last one present are cleared, not all of dst before: each
	// element is written once.
	clear(dst[n+1:])
}

// FieldSeparators yields the offsets in Message.Bytes() of the field separators of the segment
// from its byte from on (0 is the first byte of its name; 4 skips the name and the separator
// after it), in order: every byte there equal to the message's field separator, as a split of
// Raw()[from:] finds them (for MSH, FHS and BHS too: nothing of MSH-2 is read literally). They are
// read from the bitmap Parse made of the message, not from its bytes: a validator that indexes
// every field of a message pays a bit test per word rather than a scan per byte.
func (s Segment) FieldSeparators(from int) iter.Seq[int] {
	return func(yield func(int) bool) {
		x := s.idx()
		if x == nil || from < 0 {
			return
		}
		bm, limit := s.m.seps, int(x.end)
		pos := int(x.start) + from
		if pos >= limit {
			return
		}
		// The bits of one word are taken in turn (each cleared once yielded), not masked anew
		// from the position for each separator.
		w := pos >> 6
		b := bm[w] &^ (1<<(pos&63) - 1)
		for {
			for b == 0 {
				if w++; w*64 >= limit {
					return
				}
				b = bm[w]
			}
			p := w*64 + bits.TrailingZeros64(b)
			if p >= limit || !yield(p) {
				return
			}
			b &= b - 1
		}
	}
}

// ComponentsInto sets dst[i] to Component(i+1) for every i, in one pass over
// the repetition: components past the last one present are empty.
func (r Rep) ComponentsInto(dst []Component) {
	v := r.v
	if v.m == nil || len(dst) == 0 {
		clear(dst)
		return
	}
	if v.lit || v.end == v.start {
		clear(dst)
		dst[0] = Component{v}
		return
	}
	data, sep := v.m.data, v.m.delims.Component
	if v.end-v.start <= 64 {
		// Only what componentsShort does not write is cleared: clearing all of dst first would
		// write every element twice (each store of a pointer costs a write barrier while the
		// collector runs).
		n := componentsShort(v, data[v.start:v.end], sep, dst)
		clear(dst[n:])
		return
	}
	clear(dst)
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

// ComponentsInto sets dst[i] to Component(i+1) for every i: the components of the first
// repetition, as f.Rep(1).ComponentsInto(dst) sets them, in one pass that ends with the first
// repetition (not one to find where it ends, then one over it).
func (f Field) ComponentsInto(dst []Component) {
	v := f.v
	if v.m == nil || len(dst) == 0 || v.lit || v.end == v.start || v.end-v.start > 64 {
		f.Rep(1).ComponentsInto(dst)
		return
	}
	d := &v.m.delims
	n := componentsShortStop(v, v.m.data[v.start:v.end], d.Component, d.Repetition, dst)
	clear(dst[n:])
}

// componentsShortStop is componentsShort for the first repetition of a short field b: the
// components end at the first stop byte (the repetition separator).
func componentsShortStop(v value, b []byte, sep, stop byte, dst []Component) int {
	ps, pt := uint64(sep)*swarOnes, uint64(stop)*swarOnes
	n, start := 0, 0
	for i := 0; i < len(b); i += 8 {
		x := word(b, i)
		ms := matchMask(x, ps)
		mt := matchMask(x, pt)
		if mt != 0 {
			ms &= mt&-mt - 1 // only the separators before the first stop byte
		}
		for ; ms != 0; ms &= ms - 1 {
			p := i + bits.TrailingZeros64(ms)>>3
			dst[n] = Component{value{m: v.m, start: v.start + uint32(start), end: v.start + uint32(p)}}
			if n++; n == len(dst) {
				return n
			}
			start = p + 1
		}
		if mt != 0 {
			p := i + bits.TrailingZeros64(mt)>>3
			dst[n] = Component{value{m: v.m, start: v.start + uint32(start), end: v.start + uint32(p)}}
			return n + 1
		}
	}
	dst[n] = Component{value{m: v.m, start: v.start + uint32(start), end: v.end}}
	return n + 1
}

// componentsShort is ComponentsInto for a short repetition b (v's bytes, at most 64): one pass
// eight bytes at a time, each separator in a word found from one mask, where a search per
// component (indexByte) would start again for each. Like piece, it reads past len(b) when the
// capacity allows, masking the extra bytes off (a delimiter is never 0). It returns how many
// elements of dst it set (the first ones); the others are the caller's to clear.
func componentsShort(v value, b []byte, sep byte, dst []Component) int {
	pat := uint64(sep) * swarOnes
	n, start := 0, 0
	for i := 0; i < len(b); i += 8 {
		x := word(b, i)
		for ms := matchMask(x, pat); ms != 0; ms &= ms - 1 {
			p := i + bits.TrailingZeros64(ms)>>3
			dst[n] = Component{value{m: v.m, start: v.start + uint32(start), end: v.start + uint32(p)}}
			if n++; n == len(dst) {
				return n
			}
			start = p + 1
		}
	}
	dst[n] = Component{value{m: v.m, start: v.start + uint32(start), end: v.end}}
	return n + 1
}
