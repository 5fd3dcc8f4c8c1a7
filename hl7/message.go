package hl7

import (
	"bytes"
	"math"
	"math/bits"
	"sync/atomic"
)

// A Message is a parsed HL7 v2 message: the original bytes and an index of
// them. It does not copy the input, so the bytes given to Parse must not be
// modified while the Message is in use.
//
// Parse finds the segments and, in the same pass over the bytes, marks where
// the field separators are (a bitmap, one bit per byte). A field is located
// when it is read, by counting those marks, and repetitions, components and
// subcomponents by scanning the field's bytes: HL7 escapes delimiters inside
// values, so the raw bytes are enough. Reading field n of a segment costs time
// in proportion to the length of the segment before it (a 64th of it, in
// words of the bitmap); a Message remembers where the last long search ended,
// so that reading the fields of a long segment in order costs time in
// proportion to the segment, not to its square. The fields of MSH, which
// everyone reads, are located by Parse.
//
// A Message may be reused: Parse overwrites the previous contents and keeps
// the index tables (a quarter of the size of the largest message parsed, and
// 16 bytes per segment), so that parsing a stream of messages with one
// Message allocates nothing once the tables are large enough. Once parsed, a
// Message may be read from several goroutines at once: the only thing reads
// change is where a long search ended, which is kept with atomic operations.
// Parse must not run concurrently with anything else on the same Message.
type Message struct {
	data   []byte
	delims Delimiters
	segs   []segIndex

	// lines and seps are bitmaps of data, one bit per byte: segment
	// terminators (CR, LF) and field separators. See scanMasks.
	lines, seps []uint64

	// msh holds the offsets of the first nmsh field separators of the first
	// segment; all of them when nmsh < len(msh). See indexMSH.
	msh  [maxMSHSeps]uint32
	nmsh int

	dec        *Decoder // character set of MSH-18; never nil after Parse
	charsetErr error    // MSH-18 names a character set this package cannot decode

	// extraNames interns segment names that are not in segmentNames (Z
	// segments and the like), so that Segment.Name does not allocate for them
	// either. It survives Parse and is bounded by maxExtraNames.
	extraNames []string

	// hint remembers one field separator found by a long search: its number
	// within its segment (high 32 bits) and its offset in data (low 32 bits).
	// The segment is the one whose bytes hold the offset. Zero when unset.
	// Readers of different long segments at once overwrite each other's hint,
	// which costs them time, never a wrong answer.
	hint atomic.Uint64
}

// segIndex locates one segment. Offsets are uint32 to keep the index small;
// Parse refuses inputs that do not fit.
type segIndex struct {
	start, end uint32 // the segment is data[start:end], without terminator
	code       uint32 // nameCode of the name
	extra      uint8  // for a name not in segmentNames: 1 + its index in extraNames, 0 if not kept
	header     bool   // MSH, FHS or BHS: field 1 is the field separator itself
}

const maxExtraNames = 64 // at most 255, see segIndex.extra

// maxMessageSize is the largest input whose offsets fit in the index.
const maxMessageSize = math.MaxUint32 - 1

// Parse parses data as a single HL7 message. It returns the Message even on
// error, holding whatever was indexed before the error, so that a caller can
// still read MSH to answer; see Message.Parse.
func Parse(data []byte) (*Message, error) {
	m := new(Message)
	err := m.Parse(data)
	return m, err
}

// Parse indexes data as a single HL7 message, replacing what m held. The
// message must start with MSH (blank lines and a UTF-8 byte order mark before
// it are skipped). Segments end with CR, LF or CRLF; the last one may end
// without a terminator; blank lines are ignored.
//
// Errors are *ParseError values wrapping ErrEmpty, ErrNoMSH, ErrBadDelimiters,
// ErrSegmentName or ErrTooLarge. On ErrSegmentName, m still holds the
// segments before the malformed one; on the other errors it holds nothing.
// An unknown character set in MSH-18 is not an error here: see CharsetError.
func (m *Message) Parse(data []byte) error {
	m.data = data
	m.delims = DefaultDelimiters
	m.segs = m.segs[:0]
	m.dec = utf8Decoder
	m.charsetErr = nil
	m.hint.Store(0)

	if uint64(len(data)) > maxMessageSize {
		m.data = nil
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
	d, err := readDelimiters(rest)
	if err != nil {
		err.Offset += pos
		return err
	}
	m.delims = d

	nw := (len(data) + 63) / 64
	if cap(m.lines) < nw {
		m.lines, m.seps = make([]uint64, nw), make([]uint64, nw)
	}
	m.lines, m.seps = m.lines[:nw], m.seps[:nw]
	scanMasks(data, d.Field, m.lines, m.seps)

	for {
		end := nextBit(m.lines, pos, len(data))
		if err := m.indexSegment(pos, end); err != nil {
			m.resolveCharset() // MSH stays readable for the answer
			return err
		}
		pos = end + 1
		if pos >= len(data) {
			break
		}
		if c := data[pos]; c == '\r' || c == '\n' || c == ' ' || c == '\t' {
			if pos = skipBlankLines(data, pos); pos >= len(data) {
				break
			}
		}
	}
	m.resolveCharset()
	return nil
}

// Reset forgets the message m holds (m no longer references its bytes) and keeps the index
// tables for the next Parse, as Parse(nil) does but without building the error Parse(nil)
// returns: a pool of reused Messages resets each one it takes back, at every message.
func (m *Message) Reset() {
	m.data = nil
	m.delims = DefaultDelimiters
	m.segs = m.segs[:0]
	m.dec = utf8Decoder
	m.charsetErr = nil
	m.hint.Store(0)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// skipBlankLines returns the offset of the next byte at or after pos that is
// not part of a blank line: segment terminators, and lines holding only spaces
// or tabs (as some editors and relays leave behind).
func skipBlankLines(data []byte, pos int) int {
	for pos < len(data) {
		switch data[pos] {
		case '\r', '\n':
			pos++
			continue
		case ' ', '\t':
			i := pos
			for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
				i++
			}
			if i == len(data) || data[i] == '\r' || data[i] == '\n' {
				pos = i
				continue
			}
		}
		break
	}
	return pos
}

// readDelimiters reads MSH-1 and MSH-2 from seg, which starts with "MSH".
// MSH-2 has four characters, or five in HL7 2.7 and later where the fifth is
// the truncation character; this package accepts and ignores the fifth.
func readDelimiters(seg []byte) (Delimiters, *ParseError) {
	// Nearly every message uses the recommended delimiters, which need no
	// checking.
	if len(seg) >= 9 && string(seg[3:8]) == `|^~\&` && (seg[8] == '|' || seg[8] == '\r' || seg[8] == '\n') {
		return DefaultDelimiters, nil
	}
	if len(seg) < 4 || seg[3] == '\r' || seg[3] == '\n' {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 1, Offset: 3,
			Err: errorf(ErrBadDelimiters, "MSH-1 (field separator) is missing")}
	}
	fs := seg[3]
	if !validDelimiter(fs) {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 1, Offset: 3,
			Err: errorf(ErrBadDelimiters, "field separator %q is not a valid delimiter", fs)}
	}
	enc := seg[4:]
	n := 0
	for n < len(enc) && enc[n] != fs && enc[n] != '\r' && enc[n] != '\n' {
		n++
	}
	enc = enc[:n]
	if n < 4 || n > 5 {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Offset: 4,
			Err: errorf(ErrBadDelimiters, "MSH-2 has %d characters, want 4", n)}
	}
	d := Delimiters{Field: fs, Component: enc[0], Repetition: enc[1], Escape: enc[2], Subcomponent: enc[3]}
	if err := d.Validate(); err != nil {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Offset: 4, Err: err}
	}
	if n == 5 {
		if t := enc[4]; !validDelimiter(t) || d.isDelimiter(t) {
			return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Offset: 8,
				Err: errorf(ErrBadDelimiters, "truncation character %q is not a valid delimiter", t)}
		}
	}
	return d, nil
}

// indexSegment indexes the segment data[pos:end] (not blank, end at its
// terminator or the end of the input). Only the name is checked and recorded:
// fields are found when read (see Message.field).
func (m *Message) indexSegment(pos, end int) error {
	data := m.data
	if end-pos < 3 || !isNameChar(data[pos]) || !isNameChar(data[pos+1]) || !isNameChar(data[pos+2]) ||
		(end-pos > 3 && data[pos+3] != m.delims.Field) {
		return &ParseError{Segment: printableName(data[pos:]), SegmentIndex: len(m.segs), Offset: pos, Err: ErrSegmentName}
	}
	code := nameCode(data[pos], data[pos+1], data[pos+2])
	extra := uint8(0)
	if data[pos] == 'Z' { // no standard name starts with Z: see Segment.Name
		extra = m.internName(data[pos : pos+3])
	}
	// Fill the new entry in place: a segIndex built on the stack and then
	// copied is read back before its field stores have retired, and that
	// store-forwarding stall is costly at this rate.
	m.segs = append(m.segs, segIndex{})
	s := &m.segs[len(m.segs)-1]
	s.start, s.end, s.code, s.extra = uint32(pos), uint32(end), code, extra
	s.header = code == codeMSH || code == codeFHS || code == codeBHS
	return nil
}

const (
	codeMSH = 'M'<<16 | 'S'<<8 | 'H'
	codeFHS = 'F'<<16 | 'H'<<8 | 'S'
	codeBHS = 'B'<<16 | 'H'<<8 | 'S'
)

func isNameChar(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// internName returns segIndex.extra for a segment name that is not standard,
// keeping it in m.extraNames so that Segment.Name does not allocate, up to a
// bound so that hostile input cannot grow it (0 beyond the bound).
func (m *Message) internName(b []byte) uint8 {
	for i, s := range m.extraNames {
		if s[0] == b[0] && s[1] == b[1] && s[2] == b[2] {
			return uint8(i + 1)
		}
	}
	if len(m.extraNames) < maxExtraNames {
		m.extraNames = append(m.extraNames, string(b))
		return uint8(len(m.extraNames))
	}
	return 0
}

// A search for a field separator that passes at least hintSeps separators
// or hintWords words of the bitmap is remembered in Message.hint.
// Reads of the first hintMinField separators neither use nor set it: they
// cost little whatever the segment.
const (
	hintSeps     = 32
	hintWords    = 8
	hintMinField = 8
)

// field returns the bounds in data of what follows the k-th (k >= 1) field
// separator of segment i, counting the one after the name as the first, up to
// the next separator or the end of the segment; ok is false when the segment
// has fewer than k separators.
func (m *Message) field(i int, x *segIndex, k int) (start, end uint32, ok bool) {
	if i == 0 && k <= m.nmsh {
		start = m.msh[k-1] + 1
		switch {
		case k < m.nmsh:
			return start, m.msh[k], true
		case m.nmsh < len(m.msh):
			return start, x.end, true
		}
	} else if i == 0 && m.nmsh < len(m.msh) {
		return 0, 0, false // m.msh holds every separator of MSH
	}
	if x.end-x.start <= 3 {
		return 0, 0, false
	}
	// Count k separators from the one after the name, or fewer from the one
	// in m.hint when that one is in this segment and not past the k-th.
	from, n := int(x.start)+3, k
	if k > hintMinField {
		h := m.hint.Load()
		if hk, hp := h>>32, uint32(h); hk <= uint64(k) && hp > x.start && hp < x.end {
			from, n = int(hp), k-int(hk)+1
		}
	}
	limit, passed := int(x.end), n
	bm := m.seps
	w := from >> 6
	b := bm[w] &^ (1<<(from&63) - 1)
	for {
		c := bits.OnesCount64(b)
		if c >= n {
			break
		}
		n -= c
		if w++; w*64 >= limit {
			return 0, 0, false
		}
		b = bm[w]
	}
	p := w*64 + selectBit(b, n)
	if p >= limit {
		return 0, 0, false
	}
	if k > hintMinField && (passed >= hintSeps || w-from>>6 >= hintWords) {
		m.hint.Store(uint64(k)<<32 | uint64(p))
	}
	// The next separator, or the end of the segment.
	b &= ^uint64(0) << (p & 63) << 1
	for b == 0 {
		if w++; w*64 >= limit {
			return uint32(p) + 1, x.end, true
		}
		b = bm[w]
	}
	return uint32(p) + 1, uint32(min(w*64+bits.TrailingZeros64(b), limit)), true
}

// maxMSHSeps is how many field separators of MSH Parse records.
const maxMSHSeps = 32

// indexMSH records in m.msh where the field separators of the first
// segment (MSH) are: its fields are read by everyone (the charset, the
// message type, the control ID, everything an acknowledgement echoes).
func (m *Message) indexMSH() {
	x := &m.segs[0]
	n := 0
	if x.end-x.start > 3 {
		start, limit := int(x.start)+3, int(x.end)
		for w := start >> 6; w*64 < limit && n < len(m.msh); w++ {
			b := m.seps[w]
			if w == start>>6 {
				b &^= 1<<(start&63) - 1
			}
			for ; b != 0 && n < len(m.msh); b &= b - 1 {
				p := w*64 + bits.TrailingZeros64(b)
				if p >= limit {
					break
				}
				m.msh[n] = uint32(p)
				n++
			}
		}
	}
	m.nmsh = n
}

// printableName returns up to the first three bytes of b for an error
// message, quoted characters only: what stood where a segment name was
// expected, without carrying more of the line (it may hold patient data).
func printableName(b []byte) string {
	n := 0
	for n < len(b) && n < 3 && b[n] != '\r' && b[n] != '\n' {
		n++
	}
	return string(b[:n])
}

// resolveCharset reads MSH-18 and selects the decoder for String and
// AppendDecoded. An unknown character set falls back to UTF-8, and the error
// is kept for CharsetError.
func (m *Message) resolveCharset() {
	if len(m.segs) == 0 {
		return
	}
	m.indexMSH()
	f := m.Segment(0).Field(18)
	raw := f.Rep(1).Raw()
	if len(raw) == 0 || f.IsNull() {
		return
	}
	dec, err := lookupDecoder(raw)
	if err != nil {
		m.charsetErr = &ParseError{Segment: "MSH", Field: 18, Offset: f.Offset(), Err: err}
		return
	}
	m.dec = dec
}

// Bytes returns the bytes m was parsed from (not a copy).
func (m *Message) Bytes() []byte { return m.data }

// Delimiters returns the delimiters read from MSH-1 and MSH-2.
func (m *Message) Delimiters() Delimiters { return m.delims }

// Charset returns the first repetition of MSH-18 as sent, "" when absent
// (which means UTF-8 here). Values are decoded from this character set.
func (m *Message) Charset() string {
	if len(m.segs) == 0 {
		return ""
	}
	return string(m.Segment(0).Field(18).Rep(1).Raw())
}

// CharsetError reports an MSH-18 that names a character set this package
// cannot decode: a *ParseError locating MSH-18 and wrapping ErrUnknownCharset,
// or nil. Values of such a message are decoded as UTF-8, invalid bytes
// replaced by U+FFFD; a receiver will usually reject the message instead.
func (m *Message) CharsetError() error { return m.charsetErr }

// SetFallback makes the values of m, when its character set is UTF-8 (MSH-18
// empty, a UTF-8 name, or a name this package does not know), read bytes that
// are not valid UTF-8 as the single-byte character set fb does, instead of as
// U+FFFD: a sender that declares nothing, or UTF-8, and sends Latin-1 is read
// as it meant. A nil fb, or a message in a declared single-byte character
// set, is left as it is. Parse forgets the fallback. SetFallback must be
// called before m is read from other goroutines.
func (m *Message) SetFallback(fb *Decoder) {
	if m.dec == nil || m.dec.IsUTF8() {
		m.dec = WithFallback(fb)
	}
}

// Decoder returns the decoder used for the values of m (UTF-8 unless MSH-18
// names another supported character set).
func (m *Message) Decoder() *Decoder {
	if m.dec == nil {
		return utf8Decoder
	}
	return m.dec
}

// NumSegments returns the number of segments.
func (m *Message) NumSegments() int { return len(m.segs) }

// Segment returns the segment at 0-based position i, or an empty Segment
// (which has no name and no fields) if there is none.
func (m *Message) Segment(i int) Segment {
	if i < 0 || i >= len(m.segs) {
		return Segment{}
	}
	return Segment{m: m, i: i}
}

// Find returns the occurrence-th segment (1-based) named name.
func (m *Message) Find(name string, occurrence int) (Segment, bool) {
	if len(name) != 3 || occurrence < 1 {
		return Segment{}, false
	}
	code := nameCode(name[0], name[1], name[2])
	for i := range m.segs {
		if m.segs[i].code == code {
			occurrence--
			if occurrence == 0 {
				return Segment{m: m, i: i}, true
			}
		}
	}
	return Segment{}, false
}

// Count returns the number of segments named name.
func (m *Message) Count(name string) int {
	if len(name) != 3 {
		return 0
	}
	code := nameCode(name[0], name[1], name[2])
	n := 0
	for i := range m.segs {
		if m.segs[i].code == code {
			n++
		}
	}
	return n
}
