package hl7

import (
	"bytes"
	"math"
)

// A Message is a parsed HL7 v2 message: the original bytes and an index of
// where each segment and field starts. It does not copy the input, so the
// bytes given to Parse must not be modified while the Message is in use.
//
// A Message may be reused: Parse overwrites the previous contents and keeps
// the index tables, so that parsing a stream of messages with one Message
// allocates nothing once the tables are large enough. Once parsed, a Message
// may be read from several goroutines at once; Parse must not run
// concurrently with anything else on the same Message.
type Message struct {
	data   []byte
	delims Delimiters
	segs   []segIndex
	fields []uint32 // start offset of every field of every segment, in order

	dec        *Decoder // character set of MSH-18; never nil after Parse
	charsetErr error    // MSH-18 names a character set this package cannot decode

	// extraNames interns segment names that are not in segmentNames (Z
	// segments and the like), so that Segment.Name does not allocate for them
	// either. It survives Parse and is bounded by maxExtraNames.
	extraNames []string
}

// segIndex locates one segment. Offsets are uint32 to keep the index small;
// Parse refuses inputs that do not fit.
type segIndex struct {
	start, end uint32 // the segment is data[start:end], without terminator
	ff         uint32 // index in Message.fields of the segment's first field
	nf         uint32 // number of fields after the name
	code       uint32 // nameCode of the name
	name       string // interned name, "" if it must be built on demand
	header     bool   // MSH, FHS or BHS: field 1 is the field separator itself
}

const maxExtraNames = 64

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
	m.fields = m.fields[:0]
	m.dec = utf8Decoder
	m.charsetErr = nil

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

	var ends lineEnds
	for pos < len(data) {
		pos = skipBlankLines(data, pos)
		if pos >= len(data) {
			break
		}
		end := ends.next(data, pos)
		if err := m.indexSegment(pos, end); err != nil {
			m.resolveCharset() // MSH stays readable for the answer
			return err
		}
		pos = end
	}
	m.resolveCharset()
	return nil
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

// lineEnds finds segment terminators. It remembers the next CR and the next
// LF separately, so that a message using only one of them is not searched
// again to its end for the other at every segment.
type lineEnds struct {
	cr, lf int  // offsets of the next CR and LF (len(data) if none) at the last query
	init   bool // cr and lf have been computed
}

// next returns the offset of the first CR or LF at or after pos, or len(data).
func (e *lineEnds) next(data []byte, pos int) int {
	if !e.init || e.cr < pos {
		e.cr = indexFrom(data, pos, '\r')
	}
	if !e.init || e.lf < pos {
		e.lf = indexFrom(data, pos, '\n')
	}
	e.init = true
	return min(e.cr, e.lf)
}

func indexFrom(data []byte, pos int, c byte) int {
	if i := bytes.IndexByte(data[pos:], c); i >= 0 {
		return pos + i
	}
	return len(data)
}

// indexSegment indexes the segment data[pos:end] (not blank, end at its
// terminator or the end of the input).
func (m *Message) indexSegment(pos, end int) error {
	data := m.data
	fs := m.delims.Field
	if end-pos < 3 || !isNameChar(data[pos]) || !isNameChar(data[pos+1]) || !isNameChar(data[pos+2]) ||
		(end-pos > 3 && data[pos+3] != fs) {
		return &ParseError{Segment: printableName(data[pos:]), SegmentIndex: len(m.segs), Offset: pos, Err: ErrSegmentName}
	}
	code := nameCode(data[pos], data[pos+1], data[pos+2])
	s := segIndex{start: uint32(pos), end: uint32(end), ff: uint32(len(m.fields)), code: code}
	s.header = code == codeMSH || code == codeFHS || code == codeBHS

	// Record every field start. Delimiters never occur raw inside a value
	// (HL7 escapes them), so the raw bytes are enough to find the
	// boundaries. Empty fields are common, hence the test before the search.
	line := data[:end]
	for p := pos + 3; p < end; {
		if line[p] != fs {
			i := bytes.IndexByte(line[p:], fs)
			if i < 0 {
				break
			}
			p += i
		}
		p++
		m.fields = append(m.fields, uint32(p))
	}
	s.nf = uint32(len(m.fields)) - s.ff
	s.name = m.internName(code, data[pos:pos+3])
	m.segs = append(m.segs, s)
	return nil
}

var (
	codeMSH = nameCode('M', 'S', 'H')
	codeFHS = nameCode('F', 'H', 'S')
	codeBHS = nameCode('B', 'H', 'S')
)

func isNameChar(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// internName returns a shared string for a segment name, so that
// Segment.Name does not allocate. Standard names come from a constant; others
// are kept in m.extraNames, up to a bound so that hostile input cannot grow it.
func (m *Message) internName(code uint32, b []byte) string {
	if s := standardName(code); s != "" {
		return s
	}
	for _, s := range m.extraNames {
		if s[0] == b[0] && s[1] == b[1] && s[2] == b[2] {
			return s
		}
	}
	if len(m.extraNames) < maxExtraNames {
		s := string(b)
		m.extraNames = append(m.extraNames, s)
		return s
	}
	return ""
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
