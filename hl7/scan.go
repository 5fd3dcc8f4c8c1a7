package hl7

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Parse finds segment terminators and field separators with one pass over the
// message that sets a bit per byte in two bitmaps (see scanMasks). With AVX2
// on amd64 that pass costs about 3.5 ns per hundred bytes, where a call to
// bytes.IndexByte per segment costs about 10 ns each on the short spans of a
// message (mispredicted branches included), and one per field as many times
// more. Reading a field is then a matter of counting bits. Values are split
// into repetitions, components and subcomponents by scanning their bytes eight
// at a time ("SWAR"): they are short, and several separators share a word.
//
// Elsewhere (other architectures, the purego build tag, CPUs without AVX2)
// scanMasksGo builds the same bitmaps about three times more slowly.

const (
	swarOnes = 0x0101010101010101
	swarLow7 = 0x7f7f7f7f7f7f7f7f
)

// matchMask returns the high bit of every byte of w that equals the byte
// broadcast in pat, and nothing else (exact, unlike the classic haszero trick
// whose borrows can mark the byte above a match).
func matchMask(w, pat uint64) uint64 {
	x := w ^ pat
	return ^((x&swarLow7 + swarLow7) | x | swarLow7)
}

// gatherHigh packs the high bit of each byte of y into the low 8 bits, byte i
// giving bit i.
func gatherHigh(y uint64) uint64 {
	return (y >> 7 & swarOnes) * 0x0102040810204080 >> 56
}

// scanMasks sets lines and seps, which hold (len(data)+63)/64 words, to the
// bitmaps of data: bit i%64 of word i/64 is set in lines when data[i] is CR or
// LF, and in seps when data[i] is fs. Bits past the end of data are clear.
func scanMasks(data []byte, fs byte, lines, seps []uint64) {
	n := len(data) / 64
	lines, seps = lines[:(len(data)+63)/64], seps[:(len(data)+63)/64]
	if !haveSIMD {
		scanMasksGo(data, fs, lines, seps)
		return
	}
	if n > 0 {
		scanBlocksSIMD(&data[0], n, fs, &lines[0], &seps[0])
	}
	r := len(data) - n*64
	if r == 0 {
		return
	}
	var l, s uint64
	if n > 0 {
		// Scan the last 64 bytes again and keep the bits of the new ones.
		scanBlocksSIMD(&data[len(data)-64], 1, fs, &l, &s)
		l >>= 64 - r
		s >>= 64 - r
	} else {
		var buf [64]byte // zeros: neither a terminator nor a valid separator
		copy(buf[:], data)
		scanBlocksSIMD(&buf[0], 1, fs, &l, &s)
	}
	lines[n], seps[n] = l, s
}

// scanMasksGo is scanMasks without SIMD instructions of its own: terminators
// are few, and bytes.IndexByte (vectorised on most platforms) finds them;
// separators are many, and are found eight bytes at a time.
func scanMasksGo(data []byte, fs byte, lines, seps []uint64) {
	clear(lines)
	for _, c := range [...]byte{'\r', '\n'} {
		for p := 0; p < len(data); p++ {
			i := bytes.IndexByte(data[p:], c)
			if i < 0 {
				break
			}
			p += i
			lines[p>>6] |= 1 << (p & 63)
		}
	}
	pat := uint64(fs) * swarOnes
	for w := range seps {
		block := data[w*64:]
		var s uint64
		if len(block) >= 64 {
			block = block[:64]
			for i := 0; i < 64; i += 8 {
				s |= gatherHigh(matchMask(binary.LittleEndian.Uint64(block[i:]), pat)) << i
			}
		} else {
			for i, c := range block {
				if c == fs {
					s |= 1 << i
				}
			}
		}
		seps[w] = s
	}
}

// nextBit returns the position of the first bit set in bm at or after pos,
// or limit if there is none before limit. pos must be less than limit, and
// limit at most 64*len(bm).
func nextBit(bm []uint64, pos, limit int) int {
	w := pos >> 6
	x := bm[w] >> (pos & 63)
	if x != 0 {
		return min(pos+bits.TrailingZeros64(x), limit)
	}
	for w++; w*64 < limit; w++ {
		if x := bm[w]; x != 0 {
			return min(w*64+bits.TrailingZeros64(x), limit)
		}
	}
	return limit
}

// countBits returns the number of bits set in bm from pos to limit (excluded).
func countBits(bm []uint64, pos, limit int) int {
	if pos >= limit {
		return 0
	}
	w, last := pos>>6, (limit-1)>>6
	x := bm[w] &^ (1<<(pos&63) - 1)
	n := 0
	for ; w < last; w++ {
		n += bits.OnesCount64(x)
		x = bm[w+1]
	}
	return n + bits.OnesCount64(x&(^uint64(0)>>(63-(limit-1)&63)))
}

// selectBit returns the index of the n-th (1 <= n <= OnesCount64(x)) bit set
// in x.
func selectBit(x uint64, n int) int {
	for ; n > 1; n-- {
		x &= x - 1
	}
	return bits.TrailingZeros64(x)
}

// nthIndex returns the index in b of the n-th (n >= 1) occurrence of c, or -1
// when b holds fewer than n.
func nthIndex(b []byte, c byte, n int) int {
	pat := uint64(c) * swarOnes
	i := 0
	for ; i+8 <= len(b); i += 8 {
		y := matchMask(binary.LittleEndian.Uint64(b[i:]), pat)
		if y == 0 {
			continue
		}
		if k := bits.OnesCount64(y); k < n {
			n -= k
			continue
		}
		return i + selectBit(y, n)>>3
	}
	if i == len(b) {
		return -1
	}
	if len(b) >= 8 {
		// Read the last eight bytes again and drop the ones already seen.
		y := matchMask(binary.LittleEndian.Uint64(b[len(b)-8:]), pat) >> ((8 - (len(b) - i)) * 8)
		if bits.OnesCount64(y) < n {
			return -1
		}
		return i + selectBit(y, n)>>3
	}
	for ; i < len(b); i++ {
		if b[i] == c {
			if n--; n == 0 {
				return i
			}
		}
	}
	return -1
}

// countByte is bytes.Count of the single byte c, faster on the short values of a message (the
// repetitions of a field, counted by NumReps for every field validation reads): bytes.Count's
// setup costs more than counting eight bytes at a time.
func countByte(b []byte, c byte) int {
	if len(b) > 64 {
		return bytes.Count(b, []byte{c})
	}
	pat := uint64(c) * swarOnes
	n, i := 0, 0
	for ; i+8 <= len(b); i += 8 {
		n += bits.OnesCount64(matchMask(binary.LittleEndian.Uint64(b[i:]), pat))
	}
	for ; i < len(b); i++ {
		if b[i] == c {
			n++
		}
	}
	return n
}

// indexByte is bytes.IndexByte, faster on the short values of a message.
func indexByte(b []byte, c byte) int {
	if len(b) >= 32 {
		return bytes.IndexByte(b, c)
	}
	pat := uint64(c) * swarOnes
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if y := matchMask(binary.LittleEndian.Uint64(b[i:]), pat); y != 0 {
			return i + bits.TrailingZeros64(y)>>3
		}
	}
	if i == len(b) {
		return -1
	}
	if len(b) >= 8 {
		if y := matchMask(binary.LittleEndian.Uint64(b[len(b)-8:]), pat) >> ((8 - (len(b) - i)) * 8); y != 0 {
			return i + bits.TrailingZeros64(y)>>3
		}
		return -1
	}
	for ; i < len(b); i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// plainASCII reports whether b is short ASCII text without the escape
// character esc, which decodes to itself whatever the character set.
func plainASCII(b []byte, esc byte) bool {
	if len(b) > 64 {
		return false
	}
	pat := uint64(esc) * swarOnes
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if x&(swarOnes<<7)|matchMask(x, pat) != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 || b[i] == esc {
			return false
		}
	}
	return true
}

// word is the eight bytes of b from i on (i < len(b)) as a little-endian word, the bytes past
// len(b) zero: read in one load when b's capacity allows (the extra bytes masked off), else byte by
// byte.
func word(b []byte, i int) uint64 {
	switch r := len(b) - i; {
	case r >= 8:
		return binary.LittleEndian.Uint64(b[i:])
	case cap(b)-i >= 8:
		return binary.LittleEndian.Uint64(b[i:i+8]) & (^uint64(0) >> (64 - 8*r))
	default:
		var x uint64
		for k := r - 1; k >= 0; k-- {
			x = x<<8 | uint64(b[i+k])
		}
		return x
	}
}

// piece returns the bounds in b of its n-th (n >= 1) piece separated by sep,
// b ending at its first stop byte unless stop is sep; ok is false when there
// are fewer than n pieces. sep and stop are delimiters, never 0. It reads
// eight bytes at a time, past len(b) when the capacity allows (the extra
// bytes are masked off), so that short values need no byte loop.
func piece(b []byte, sep, stop byte, n int) (start, end int, ok bool) {
	ps, pt := uint64(sep)*swarOnes, uint64(stop)*swarOnes
	skip := n - 1
	for i := 0; i < len(b); i += 8 {
		x := word(b, i)
		ms := matchMask(x, ps)
		var limit uint64 // the bit of the first stop byte in this word
		if stop != sep {
			if mt := matchMask(x, pt); mt != 0 {
				limit = mt & -mt
				ms &= limit - 1
			}
		}
		if skip > 0 {
			c := bits.OnesCount64(ms)
			if c < skip {
				if limit != 0 {
					return 0, 0, false
				}
				skip -= c
				continue
			}
			for ; skip > 1; skip-- {
				ms &= ms - 1
			}
			start = i + bits.TrailingZeros64(ms)>>3 + 1
			ms &= ms - 1
			skip = 0
		}
		if ms != 0 {
			return start, i + bits.TrailingZeros64(ms)>>3, true
		}
		if limit != 0 {
			return start, i + bits.TrailingZeros64(limit)>>3, true
		}
	}
	if skip > 0 {
		return 0, 0, false
	}
	return start, len(b), true
}
