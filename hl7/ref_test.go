package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// refMessage is the index this package built before fields were located on
// demand: every field start of every segment, found by Parse. It is kept here
// as the reference the bitmap index must agree with, position by position.
type refMessage struct {
	data   []byte
	delims Delimiters
	segs   []refSeg
	fields []uint32
}

type refSeg struct {
	start, end, ff, nf uint32
	header             bool
}

func (m *refMessage) parse(data []byte) error {
	*m = refMessage{data: data, delims: DefaultDelimiters}
	if uint64(len(data)) > maxMessageSize {
		return &ParseError{Segment: "MSH", Err: ErrTooLarge}
	}
	pos := 0
	if bytes.HasPrefix(data, utf8BOM) {
		pos = len(utf8BOM)
	}
	pos = skipBlankLines(data, pos)
	if pos >= len(data) {
		return &ParseError{Offset: pos, Err: ErrEmpty}
	}
	rest := data[pos:]
	if len(rest) < 3 || rest[0] != 'M' || rest[1] != 'S' || rest[2] != 'H' {
		return &ParseError{Segment: printableName(rest), Offset: pos, Err: ErrNoMSH}
	}
	d, err := refReadDelimiters(rest)
	if err != nil {
		err.Offset += pos
		return err
	}
	m.delims = d
	for pos < len(data) {
		pos = skipBlankLines(data, pos)
		if pos >= len(data) {
			break
		}
		end := pos
		for end < len(data) && data[end] != '\r' && data[end] != '\n' {
			end++
		}
		if err := m.indexSegment(pos, end); err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// refReadDelimiters is readDelimiters without its shortcut for |^~\&.
func refReadDelimiters(seg []byte) (Delimiters, *ParseError) {
	if len(seg) < 4 || seg[3] == '\r' || seg[3] == '\n' {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 1, Offset: 3, Err: ErrBadDelimiters}
	}
	fs := seg[3]
	if !validDelimiter(fs) {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 1, Offset: 3, Err: ErrBadDelimiters}
	}
	enc := seg[4:]
	n := 0
	for n < len(enc) && enc[n] != fs && enc[n] != '\r' && enc[n] != '\n' {
		n++
	}
	enc = enc[:n]
	if n < 4 || n > 5 {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Offset: 4, Err: ErrBadDelimiters}
	}
	d := Delimiters{Field: fs, Component: enc[0], Repetition: enc[1], Escape: enc[2], Subcomponent: enc[3]}
	if err := d.Validate(); err != nil {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Offset: 4, Err: err}
	}
	if n == 5 {
		if t := enc[4]; !validDelimiter(t) || d.isDelimiter(t) {
			return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Offset: 8, Err: ErrBadDelimiters}
		}
	}
	return d, nil
}

func (m *refMessage) indexSegment(pos, end int) error {
	data := m.data
	fs := m.delims.Field
	if end-pos < 3 || !isNameChar(data[pos]) || !isNameChar(data[pos+1]) || !isNameChar(data[pos+2]) ||
		(end-pos > 3 && data[pos+3] != fs) {
		return &ParseError{Segment: printableName(data[pos:]), SegmentIndex: len(m.segs), Offset: pos, Err: ErrSegmentName}
	}
	code := nameCode(data[pos], data[pos+1], data[pos+2])
	s := refSeg{start: uint32(pos), end: uint32(end), ff: uint32(len(m.fields))}
	s.header = code == codeMSH || code == codeFHS || code == codeBHS
	for p := pos + 3; p < end; p++ {
		if data[p] == fs {
			m.fields = append(m.fields, uint32(p+1))
		}
	}
	s.nf = uint32(len(m.fields)) - s.ff
	m.segs = append(m.segs, s)
	return nil
}

func (m *refMessage) numFields(i int) int {
	x := &m.segs[i]
	fields := m.fields[x.ff : x.ff+x.nf]
	n := len(fields)
	for n > 0 {
		end := x.end
		if n < len(fields) {
			end = fields[n] - 1
		}
		if fields[n-1] < end {
			break
		}
		n--
	}
	if x.header && x.nf > 0 {
		n++
	}
	return n
}

// field returns field n of segment i as value would hold it.
func (m *refMessage) field(i, n int) (start, end uint32, lit, ok bool) {
	x := &m.segs[i]
	if n < 1 {
		return 0, 0, false, false
	}
	if x.header {
		if x.nf == 0 {
			return 0, 0, false, false
		}
		if n == 1 {
			return x.start + 3, x.start + 4, true, true
		}
		n--
	}
	if n > int(x.nf) {
		return 0, 0, false, false
	}
	start = m.fields[x.ff+uint32(n)-1]
	end = x.end
	if uint32(n) < x.nf {
		end = m.fields[x.ff+uint32(n)] - 1
	}
	return start, end, x.header && n == 1, true
}

// refPart is value.part as it was: the n-th piece of data[start:end]
// separated by sep, by repeated bytes.IndexByte.
func refPart(data []byte, start, end uint32, lit bool, sep byte, n int) (uint32, uint32, bool) {
	if n < 1 {
		return 0, 0, false
	}
	if lit {
		return start, end, n == 1
	}
	b := data[start:end]
	i := 0
	for ; n > 1; n-- {
		k := bytes.IndexByte(b[i:], sep)
		if k < 0 {
			return 0, 0, false
		}
		i += k + 1
	}
	j := len(b)
	if k := bytes.IndexByte(b[i:], sep); k >= 0 {
		j = i + k
	}
	return start + uint32(i), start + uint32(j), true
}

// comparePieces checks the repetitions, components and subcomponents of f,
// and Field.Component, against refPart.
func comparePieces(f Field, d Delimiters) error {
	if f.v.m == nil {
		return nil
	}
	data := f.v.m.data
	same := func(what string, v value, start, end uint32, ok bool) error {
		if (v.m != nil) != ok || ok && (v.start != start || v.end != end) {
			return fmt.Errorf("%s of field at %d: [%d,%d) present %v / reference [%d,%d) present %v", what, f.v.start, v.start, v.end, v.m != nil, start, end, ok)
		}
		return nil
	}
	if v := f.v; v.end > v.start && !v.isNull() {
		want := v.raw()
		if !v.lit {
			want = appendUnescaped(nil, v.raw(), &v.m.delims, v.m.Decoder())
		}
		if got := f.AppendDecoded(nil); !bytes.Equal(got, want) {
			return fmt.Errorf("field at %d decodes to %q, want %q", v.start, got, want)
		}
	}
	r1s, r1e, _ := refPart(data, f.v.start, f.v.end, f.v.lit, d.Repetition, 1)
	for c := 0; c <= f.NumComponents()+1; c++ {
		s, e, ok := refPart(data, r1s, r1e, f.v.lit, d.Component, c)
		if err := same(fmt.Sprintf("Component(%d)", c), f.Component(c).v, s, e, ok); err != nil {
			return err
		}
	}
	for r := 0; r <= f.NumReps()+1; r++ {
		rs, re, rok := refPart(data, f.v.start, f.v.end, f.v.lit, d.Repetition, r)
		rep := f.Rep(r)
		if err := same(fmt.Sprintf("Rep(%d)", r), rep.v, rs, re, rok); err != nil || !rok {
			return err
		}
		for c := 0; c <= rep.NumComponents()+1; c++ {
			cs, ce, cok := refPart(data, rs, re, f.v.lit, d.Component, c)
			comp := rep.Component(c)
			if err := same(fmt.Sprintf("Rep(%d).Component(%d)", r, c), comp.v, cs, ce, cok); err != nil || !cok {
				return err
			}
			for sc := 0; sc <= comp.NumSubs()+1; sc++ {
				ss, se, sok := refPart(data, cs, ce, f.v.lit, d.Subcomponent, sc)
				if err := same(fmt.Sprintf("Rep(%d).Component(%d).Sub(%d)", r, c, sc), comp.Sub(sc).v, ss, se, sok); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// compareWithRef parses data with Parse and with the reference index and
// reports the first difference: errors, segments, names, NumFields, and the
// bounds of every field up to two past the last, read in order, in reverse
// and again in order (the hint must not change any answer).
func compareWithRef(m *Message, data []byte) error {
	var ref refMessage
	err, rerr := m.Parse(data), ref.parse(data)
	if (err == nil) != (rerr == nil) {
		return fmt.Errorf("errors differ: %v / reference %v", err, rerr)
	}
	if err != nil {
		var pe, rpe *ParseError
		if !errors.As(err, &pe) || !errors.As(rerr, &rpe) {
			return fmt.Errorf("errors are not *ParseError: %v / %v", err, rerr)
		}
		if pe.Segment != rpe.Segment || pe.SegmentIndex != rpe.SegmentIndex || pe.Field != rpe.Field || pe.Offset != rpe.Offset ||
			errors.Is(pe, ErrBadDelimiters) != errors.Is(rpe, ErrBadDelimiters) ||
			errors.Is(pe, ErrSegmentName) != errors.Is(rpe, ErrSegmentName) {
			return fmt.Errorf("errors differ: %+v / reference %+v", pe, rpe)
		}
	}
	if m.NumSegments() != len(ref.segs) || m.Delimiters() != ref.delims {
		return fmt.Errorf("%d segments / reference %d, delimiters %v / %v", m.NumSegments(), len(ref.segs), m.Delimiters(), ref.delims)
	}
	for i := range ref.segs {
		s, x := m.Segment(i), &ref.segs[i]
		if s.Offset() != int(x.start) || len(s.Raw()) != int(x.end-x.start) || s.Name() != string(data[x.start:x.start+3]) {
			return fmt.Errorf("segment %d: at %d, %d bytes, %q / reference at %d, %d bytes", i, s.Offset(), len(s.Raw()), s.Name(), x.start, x.end-x.start)
		}
		if got, want := s.NumFields(), ref.numFields(i); got != want {
			return fmt.Errorf("segment %d: NumFields %d / reference %d", i, got, want)
		}
		last := int(x.nf) + 3
		check := func(n int) error {
			f := s.Field(n)
			start, end, lit, ok := ref.field(i, n)
			if (f.v.m != nil) != ok || ok && (f.v.start != start || f.v.end != end || f.v.lit != lit) {
				return fmt.Errorf("segment %d field %d: [%d,%d) lit %v present %v / reference [%d,%d) lit %v present %v",
					i, n, f.v.start, f.v.end, f.v.lit, f.v.m != nil, start, end, lit, ok)
			}
			return nil
		}
		for n := 0; n <= last; n++ {
			if err := check(n); err != nil {
				return err
			}
			if err := comparePieces(s.Field(n), m.Delimiters()); err != nil {
				return fmt.Errorf("segment %d field %d: %w", i, n, err)
			}
		}
		for n := last; n >= 0; n-- {
			if err := check(n); err != nil {
				return err
			}
		}
		for n := 0; n <= last; n += 3 {
			if err := check(n); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestIndexMatchesReference(t *testing.T) {
	var inputs [][]byte
	for _, s := range []string{
		"MSH|^~\\&|A|B\rPID|1||||\rZZZ\rPID|\rOBX|1||x|\r",
		"MSH|^~\\&\r\n\r\nPID|a|b\n  \n\tPID|c\rPID||",
		"MSH|^~\\&|\r\rpid|1",
		"MSH|^~\\&|||||||||||||||||8859/1\rPID|\xe9|",
		"\xef\xbb\xbf\r\n MSH|^~\\&",
		"\xef\xbb\xbf\r\nMSH$^~\\&$1$$3\rBHS$\rFHS\rMSH$\rPID$$$$x$$$",
		"MSH|^~\\&#|x",
		"MSH|^~\\&|a^b~c^d&e^f~~^|^^^~&&&~|~|^|&|" + string(bytes.Repeat([]byte("x^y&z~"), 20)) + "|1^2^3^4^5^6^7^8^9~a^b",
		"MSH|^~\\&|12345678^|1234567^~|123456789~|^1234567|~1234567^",
		"MSH|^~\\&|" + string(bytes.Repeat([]byte("a|"), 200)) + "\rPID" + string(bytes.Repeat([]byte("|"), 300)) + "x|||",
	} {
		inputs = append(inputs, []byte(s))
	}
	// Every length around the 64-byte blocks of the scan.
	long := []byte("MSH|^~\\&|SENDER|FAC||RCV|20240101||VXU^V04^VXU_V04|1|P|2.5.1\rPID|1||123^^^A^MR~456^^^B^SS||Doe^Jane|")
	for n := 9; n <= len(long); n++ {
		inputs = append(inputs, long[:n])
	}
	var m Message
	for _, in := range inputs {
		if err := compareWithRef(&m, in); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
	for _, file := range []string{"vxu_full.hl7", "vxu_altdelim.hl7", "vxu_latin1.hl7"} {
		raw := readFixture(t, file)
		for _, in := range [][]byte{raw, wire(raw)} {
			if err := compareWithRef(&m, in); err != nil {
				t.Errorf("%s: %v", file, err)
			}
		}
	}
}

// TestScanMasks checks the SIMD scanner against the portable one and both
// against the bytes, on every length and alignment up to a few blocks.
func TestScanMasks(t *testing.T) {
	src := make([]byte, 300)
	for i := range src {
		src[i] = "ab|\r\n^~&\\"[(i*7+i/3)%9]
	}
	for off := 0; off < 8; off++ {
		for n := 0; off+n <= len(src); n++ {
			data := src[off : off+n]
			nw := (n + 63) / 64
			lines, seps := make([]uint64, nw), make([]uint64, nw)
			glines, gseps := make([]uint64, nw), make([]uint64, nw)
			scanMasks(data, '|', lines, seps)
			scanMasksGo(data, '|', glines, gseps)
			for w := range nw {
				var wl, ws uint64
				for i := w * 64; i < min(n, w*64+64); i++ {
					if data[i] == '\r' || data[i] == '\n' {
						wl |= 1 << (i - w*64)
					}
					if data[i] == '|' {
						ws |= 1 << (i - w*64)
					}
				}
				if lines[w] != wl || seps[w] != ws || glines[w] != wl || gseps[w] != ws {
					t.Fatalf("offset %d length %d word %d: lines %x/%x/%x seps %x/%x/%x (scan/go/want)",
						off, n, w, lines[w], glines[w], wl, seps[w], gseps[w], ws)
				}
			}
		}
	}
}

func TestBitHelpers(t *testing.T) {
	bm := []uint64{0x8000000000000001, 0, 0x00f0, 1 << 63}
	var set []int
	for i := range len(bm) * 64 {
		if bm[i/64]>>(i%64)&1 != 0 {
			set = append(set, i)
		}
	}
	for pos := range len(bm) * 64 {
		for limit := pos + 1; limit <= len(bm)*64; limit++ {
			var in []int
			for _, p := range set {
				if p >= pos && p < limit {
					in = append(in, p)
				}
			}
			if got := countBits(bm, pos, limit); got != len(in) {
				t.Fatalf("countBits(%d, %d) = %d, want %d", pos, limit, got, len(in))
			}
			want := limit
			if len(in) > 0 {
				want = in[0]
			}
			if got := nextBit(bm, pos, limit); got != want {
				t.Fatalf("nextBit(%d, %d) = %d, want %d", pos, limit, got, want)
			}
		}
	}
	for _, x := range []uint64{1, 0xff, 0x8000000000000000, 0xffffffffffffffff, 0x0123456789abcdef, 0x8040201008040201} {
		n := 0
		for i := range 64 {
			if x>>i&1 != 0 {
				n++
				if got := selectBit(x, n); got != i {
					t.Fatalf("selectBit(%x, %d) = %d, want %d", x, n, got, i)
				}
			}
		}
	}
	for _, s := range []string{"", "a", "a|", "|", "abcdefg|", "abcdefgh|", "abcdefghijklmnopq|r|s|", "||||||||||||||||||||"} {
		b := []byte(s)
		for n := 1; n <= len(b)+1; n++ {
			want, k := -1, 0
			for i := range b {
				if b[i] == '|' {
					if k++; k == n {
						want = i
						break
					}
				}
			}
			if got := nthIndex(b, '|', n); got != want {
				t.Fatalf("nthIndex(%q, %d) = %d, want %d", s, n, got, want)
			}
		}
		for start := 0; start <= len(b); start++ {
			if got, want := indexByte(b[start:], '|'), bytes.IndexByte(b[start:], '|'); got != want {
				t.Fatalf("indexByte(%q) = %d, want %d", b[start:], got, want)
			}
		}
	}
}

// TestPiece checks piece against refPart and bytes.IndexByte on values of
// every length up to a few words, with and without capacity past their end
// (piece reads whole words and masks off what is past the value).
func TestPiece(t *testing.T) {
	buf := []byte("a^b~c^^d~~e^f^g^h^i^jjjjjjjj^k~l^m^nnnnnnnnnnnnnnnn^o~p^q~")
	for start := 0; start < len(buf); start++ {
		for end := start; end <= len(buf); end++ {
			for _, b := range [][]byte{buf[start:end], buf[start:end:end]} {
				for n := 1; n <= 12; n++ {
					for _, stop := range []byte{'^', '~'} {
						want := b
						if stop != '^' {
							if k := bytes.IndexByte(b, stop); k >= 0 {
								want = b[:k]
							}
						}
						ws, we, wok := refPart(want, 0, uint32(len(want)), false, '^', n)
						s, e, ok := piece(b, '^', stop, n)
						if ok != wok || ok && (uint32(s) != ws || uint32(e) != we) {
							t.Fatalf("piece(%q, stop %q, %d) = %d, %d, %v; want %d, %d, %v", b, stop, n, s, e, ok, ws, we, wok)
						}
					}
				}
			}
		}
	}
}

// TestConcurrentReads reads one Message from several goroutines, in
// different orders, so that the race detector sees the hint being shared.
func TestConcurrentReads(t *testing.T) {
	data := []byte("MSH|^~\\&|A\rPID" + string(bytes.Repeat([]byte("|v"), 500)) + "\rOBX" + string(bytes.Repeat([]byte("|w"), 300)))
	m := mustParse(t, data)
	var ref refMessage
	if err := ref.parse(data); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for round := range 3 {
				for i := range m.NumSegments() {
					s := m.Segment(i)
					nf := int(ref.segs[i].nf) + 2
					for k := range nf {
						n := k + 1
						if (g+round)%2 == 1 {
							n = nf - k
						}
						f := s.Field(n)
						start, end, _, ok := ref.field(i, n)
						if (f.v.m != nil) != ok || ok && (f.v.start != start || f.v.end != end) {
							errs <- fmt.Errorf("goroutine %d: segment %d field %d: [%d,%d) / reference [%d,%d)", g, i, n, f.v.start, f.v.end, start, end)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzIndex compares Parse and field reads with the reference index.
func FuzzIndex(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	var m Message
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := compareWithRef(&m, data); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStandardNames checks the name table against a search of segmentNames
// for every name a segment can have.
func TestStandardNames(t *testing.T) {
	const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for _, a := range []byte(chars) {
		for _, b := range []byte(chars) {
			for _, c := range []byte(chars) {
				name := string([]byte{a, b, c})
				want := ""
				for i := 0; i < len(segmentNames); i += 3 {
					if segmentNames[i:i+3] == name {
						want = name
					}
				}
				if got := standardName(nameCode(a, b, c)); got != want {
					t.Fatalf("standardName(%q) = %q, want %q", name, got, want)
				}
			}
		}
	}
}

// TestHintFollowsSequentialReads checks that reading the fields of a long
// segment in order keeps the remembered position close behind, which is what
// makes such a loop linear rather than quadratic.
func TestHintFollowsSequentialReads(t *testing.T) {
	const n = 5000
	data := []byte("MSH|^~\\&|A\rOBX" + string(bytes.Repeat([]byte("|v"), n)))
	m := mustParse(t, data)
	obx := m.Segment(1)
	for k := 1; k <= n; k++ {
		if got := string(obx.Field(k).Raw()); got != "v" {
			t.Fatalf("OBX-%d = %q", k, got)
		}
		if k > 100 {
			if hk := int(m.hint.Load() >> 32); hk < k-hintSeps || hk > k {
				t.Fatalf("after OBX-%d the hint is at separator %d", k, hk)
			}
		}
	}
	if !obx.Field(n+1).IsEmpty() || string(obx.Field(2).Raw()) != "v" {
		t.Fatal("reads after the loop")
	}
	if m.Parse(data); m.hint.Load() != 0 {
		t.Fatal("Parse keeps the hint")
	}
}

// TestFieldSeparators checks Segment.FieldSeparators against a byte loop on segments that cross
// the bitmap's 64-byte words, begin or end at their edges, hold no separator or only separators,
// with other delimiters, and on a zero Segment.
func TestFieldSeparators(t *testing.T) {
	long := strings.Repeat("x", 61)
	msgs := []string{
		"MSH|^~\\&|A|B\rPID|1||" + long + "|" + long + long + "||\rZZZ\rOBX" + strings.Repeat("|", 130) + "\rNTE|" + long + long + long + "\r",
		"MSH*^~\\&*A*B*C\rPID*1*|not a separator|*x\rRXA" + strings.Repeat("*a", 70),
		"MSH|^~\\&\r" + strings.Repeat("PID|"+long+"\r", 5),
	}
	for _, raw := range msgs {
		for pad := range 70 { // every alignment of the segments to the bitmap's words
			data := []byte(strings.Repeat("\r", pad) + raw)
			m, err := Parse(data)
			if err != nil {
				t.Fatalf("%q: %v", data, err)
			}
			for _, s := range m.Segments() {
				checkFieldSeparators(t, s)
			}
		}
	}
	if n := len(slices.Collect(Segment{}.FieldSeparators(0))); n != 0 {
		t.Errorf("the zero Segment yields %d separators", n)
	}
}

// TestComponentsAndCount checks the word-at-a-time ComponentsInto (short repetitions) and
// countByte against the reference split and bytes.Count on every slice of a buffer, with its
// capacity reaching past it and not, for every number of components asked.
func TestComponentsAndCount(t *testing.T) {
	buf := []byte("a^b~c^^d~~e^f^g^h^i^jjjjjjjj^k~l^m^nnnnnnnnnnnnnnnn^o~p^q~^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^r")
	for start := 0; start < len(buf); start++ {
		for end := start; end <= len(buf); end++ {
			for _, data := range [][]byte{buf, buf[:end:end]} {
				b := data[start:end]
				if got, want := countByte(b, '^'), bytes.Count(b, []byte{'^'}); got != want {
					t.Fatalf("countByte(%q) = %d, want %d", b, got, want)
				}
				m := &Message{data: data, delims: DefaultDelimiters}
				r := Rep{value{m: m, start: uint32(start), end: uint32(end)}}
				for n := 1; n <= 12; n++ {
					got := make([]Component, n)
					for k := range got { // what a reused array holds from before
						got[k] = Component{value{m: m, start: 1, end: 2}}
					}
					r.ComponentsInto(got)
					// The first repetition's, read from the field in one pass, are those of Rep(1).
					f := Field{r.v}
					gotF, wantF := make([]Component, n), make([]Component, n)
					for k := range gotF {
						gotF[k] = Component{value{m: m, start: 1, end: 2}}
					}
					f.ComponentsInto(gotF)
					f.Rep(1).ComponentsInto(wantF)
					if !slices.Equal(gotF, wantF) {
						t.Fatalf("Field.ComponentsInto(%q, %d) = %v, Rep(1)'s %v", b, n, gotF, wantF)
					}
					for k := 1; k <= n; k++ {
						ws, we, wok := refPart(data, uint32(start), uint32(end), false, '^', k)
						c := got[k-1].v
						if end == start && k == 1 {
							wok, ws, we = true, uint32(start), uint32(end) // an empty value is its own first component
						}
						if (c.m != nil) != wok || wok && (c.start != ws || c.end != we) {
							t.Fatalf("ComponentsInto(%q)[%d] = [%d,%d) present %v, want [%d,%d) present %v", b, k-1, c.start, c.end, c.m != nil, ws, we, wok)
						}
					}
				}
			}
		}
	}
}
