package validate

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// The text pass reads every byte of the message once, before anything is decoded, for what the
// registry cannot store as sent: bytes that are not characters in the message's character set
// (nor in the sender's fallback one), control characters, and identifiers longer than the
// registry's indexes hold. A field with any of them is never stored (its record is rejected),
// and the sender is told which field; bytes the fallback character set reads are stored as read,
// with a warning that MSH-18 should say so.

// maxStoredID is the longest value, in bytes, of the identifiers and names the registry indexes:
// the HL7 2.5.1 length of an entity identifier (EI-1), and far below PostgreSQL's limit on a
// btree index row (about 2.7 kB), whatever the combination of columns an index covers.
const maxStoredID = 199

// cursor finds the position of byte offsets of the message, offsets given in increasing order:
// it walks forward only, so that locating any number of offsets reads the message once.
type cursor struct {
	m                *hl7.Message
	d                hl7.Delimiters
	seg              int // current segment, -1 before the first
	segStart, segEnd int
	header           bool
	pos              int // next byte to read
	field, rep, comp int
}

func newCursor(m *hl7.Message) cursor {
	return cursor{m: m, d: m.Delimiters(), seg: -1, segStart: -1, segEnd: -1}
}

// at returns the segment index and position of the byte at off; ok is false when the byte is not
// inside a segment. off must not be less than the previous call's.
func (c *cursor) at(off int) (seg int, field, rep, comp int, ok bool) {
	for off >= c.segEnd {
		if c.seg+1 >= c.m.NumSegments() {
			return 0, 0, 0, 0, false
		}
		c.seg++
		s := c.m.Segment(c.seg)
		c.segStart = s.Offset()
		c.segEnd = c.segStart + len(s.Raw())
		c.header = s.Is("MSH") || s.Is("FHS") || s.Is("BHS")
		c.pos, c.field, c.rep, c.comp = c.segStart, 0, 1, 1
	}
	if off < c.segStart {
		return 0, 0, 0, 0, false
	}
	data := c.m.Bytes()
	for ; c.pos < off; c.pos++ {
		b := data[c.pos]
		switch {
		case c.pos < c.segStart+3:
		case b == c.d.Field:
			c.field++
			c.rep, c.comp = 1, 1
		case c.header && c.field == 1: // MSH-2 is literal
		case b == c.d.Repetition:
			c.rep++
			c.comp = 1
		case b == c.d.Component:
			c.comp++
		}
	}
	field = c.field
	if c.header && field > 0 {
		field++
	}
	return c.seg, field, c.rep, c.comp, true
}

// textState collects what the text pass found.
type textState struct {
	cur                cursor
	undeclared         bool // invalid UTF-8 read in the fallback character set
	undeclaredLoc      ack.Location
	undeclaredSeg      int
	lastSeg, lastField int // the field last reported (findings are per field)
}

func (r *run) text() {
	data := r.m.Bytes()
	dec := r.m.Decoder()
	utf := dec.IsUTF8()
	esc := r.d.Escape
	st := textState{cur: newCursor(r.m), lastSeg: -1}
	// MSH-18 names a character set this engine does not read: no byte outside ASCII can be read
	// as the sender meant it, valid UTF-8 or not.
	unknown := ""
	if r.m.CharsetError() != nil {
		unknown = quote(r.m.Segment(0).Field(18).Rep(1).Raw()) + " (MSH-18), a character set the registry does not read"
	}
	escs := uint64(esc) * swarOnes
	for i := 0; i < len(data); {
		// Eight bytes at a time while they are plain printable ASCII (nearly all of a message);
		// in a word that is not, the bytes before the first that is not plain are skipped too
		// (firstNotPlain), rather than tried again as the next word, byte after byte.
		if i+8 <= len(data) {
			bad := notPlain(binary.LittleEndian.Uint64(data[i:]), escs)
			if bad == 0 {
				i += 8
				continue
			}
			i += firstNotPlain(bad)
		}
		b := data[i]
		if b >= 0x20 && b < 0x7f && b != esc {
			i++
			continue
		}
		switch {
		case b == '\r' || b == '\n' || b == '\t':
			i++
		case b == esc:
			i = r.escapeControls(&st, data, i)
		case b < 0x20 || b == 0x7f:
			r.textFinding(&st, ruleControlCharacter, i, controlName(b), "")
			i++
		case unknown != "":
			r.textFinding(&st, ruleCharsetUndecodable, i, hexByte(b), unknown)
			i++
		case utf:
			c, size := utf8.DecodeRune(data[i:])
			if c != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			if dec.Defines(b) { // the fallback reads it
				if !st.undeclared {
					if seg, f, rep, comp, ok := st.cur.at(i); ok {
						st.undeclared = true
						st.undeclaredSeg = seg
						st.undeclaredLoc = r.loc(seg, f, rep, comp)
					}
				}
			} else {
				r.textFinding(&st, ruleCharsetUndecodable, i, hexByte(b), charsetText(dec))
			}
			i++
		default: // a declared single-byte character set
			if !dec.Defines(b) {
				r.textFinding(&st, ruleCharsetUndecodable, i, hexByte(b), charsetText(dec))
			}
			i++
		}
	}
	if st.undeclared {
		detail := "empty (UTF-8)"
		if cs := r.m.Segment(0).Field(18).Rep(1).Raw(); len(cs) > 0 {
			detail = quote(cs)
		}
		r.report(ruleCharsetUndeclared, st.undeclaredSeg, st.undeclaredLoc,
			args{value: dec.Fallback().Name(), detail: detail})
	}
	r.storedLengths()
}

// escapeControls checks the escape sequence at data[i] (the escape character) for \X..\ bytes
// that are control characters, and returns where reading goes on.
func (r *run) escapeControls(st *textState, data []byte, i int) int {
	esc := r.d.Escape
	if i+1 >= len(data) || data[i+1] != 'X' {
		return i + 1
	}
	j := i + 2
	for j < len(data) && isHexDigit(data[j]) {
		j++
	}
	if j >= len(data) || data[j] != esc || (j-i-2)%2 != 0 {
		return i + 1 // not a hex sequence: read as text (hl7 keeps it literally)
	}
	for k := i + 2; k < j; k += 2 {
		c := unhex(data[k])<<4 | unhex(data[k+1])
		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f {
			r.textFinding(st, ruleControlCharacter, i, controlName(c)+" (as "+string(data[i:j+1])+")", "")
			break
		}
	}
	return j + 1
}

// textFinding reports rule for the field holding the byte at off, once per field.
func (r *run) textFinding(st *textState, rule *Rule, off int, value, detail string) {
	seg, f, rep, comp, ok := st.cur.at(off)
	if !ok || (seg == st.lastSeg && f == st.lastField) {
		return
	}
	st.lastSeg, st.lastField = seg, f
	loc := r.loc(seg, f, rep, comp)
	if f == 0 {
		loc = r.segLoc(seg)
	}
	r.report(rule, seg, loc, args{value: value, detail: detail})
}

// storedLengths checks the identifiers and names the registry indexes against maxStoredID.
func (r *run) storedLengths() {
	for i := range r.segs {
		switch r.segs[i].def {
		case segMSH:
			if i == 0 {
				r.storedLength(i, 10, idMSH10)
			}
		case segPID:
			r.storedLength(i, 3, idPID3)
			r.storedLength(i, 5, idPID5)
			r.storedLength(i, 6, idPID6)
			r.storedLength(i, 11, idPID11)
		case segORC:
			r.storedLength(i, 2, idORC2)
			r.storedLength(i, 3, idORC3)
		}
	}
}

// idPart is a component the registry indexes (0: the whole repetition).
type idPart struct {
	name string
	comp int
}

var (
	idMSH10 = []idPart{{"Message Control ID", 0}}
	idPID3  = []idPart{{"ID Number", 1}, {"Assigning Authority", 4}, {"Identifier Type Code", 5}}
	idPID5  = []idPart{{"Family Name", 1}, {"Given Name", 2}, {"Second and Further Given Names", 3}}
	idPID6  = []idPart{{"Mother's Maiden Name", 1}}
	idPID11 = []idPart{{"Street Address", 1}}
	idORC2  = []idPart{{"Placer Order Number", 0}}
	idORC3  = []idPart{{"Filler Order Number", 0}}
)

// storedLength reports the parts of field n of segment i longer than maxStoredID, in the
// repetitions the registry reads.
func (r *run) storedLength(i, n int, parts []idPart) {
	f := r.fld(i, n)
	if len(f) <= maxStoredID {
		return
	}
	rest := f
	for k := 1; rest != nil; k++ {
		if k > r.v.maxReps {
			return
		}
		var rep []byte
		rep, rest = cut(rest, r.d.Repetition)
		for _, p := range parts {
			v := rep
			if p.comp > 0 {
				v = r.comp(rep, p.comp)
			}
			if len(v) > maxStoredID {
				r.report(ruleStorageLength, i, r.loc(i, n, k, p.comp),
					args{name: p.name, value: strconv.Itoa(len(v)), detail: strconv.Itoa(maxStoredID)})
			}
		}
	}
}

func charsetText(d *hl7.Decoder) string {
	if fb := d.Fallback(); fb != nil {
		return "UTF-8 or the fallback " + fb.Name()
	}
	return d.Name()
}

var controlNames = [...]string{"NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI",
	"DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US"}

func controlName(b byte) string {
	if int(b) < len(controlNames) {
		return hexByte(b) + " (" + controlNames[b] + ")"
	}
	return hexByte(b) + " (DEL)"
}

func hexByte(b byte) string {
	const digits = "0123456789ABCDEF"
	return "0x" + string([]byte{digits[b>>4], digits[b&15]})
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

const swarOnes = 0x0101010101010101

// plainWord reports whether the eight bytes of x are all printable ASCII (0x20..0x7e) other than
// the escape character (escs: it in every byte). It may say no for a plain word, never yes for
// another: the caller then looks at the bytes one by one.
func plainWord(x, escs uint64) bool { return notPlain(x, escs) == 0 }

// notPlain is 0 exactly when plainWord(x, escs) says yes; otherwise its lowest set bit is the
// high bit of the first byte of x (in memory order) that is not plain (firstNotPlain): each of
// its tests may flag bytes after one it flags rightly (a borrow moves up), never one before.
func notPlain(x, escs uint64) uint64 {
	const high = 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - swarOnes) & ^v & high }
	below := (x - 0x20*swarOnes) & ^x & high // a byte under 0x20 (exact when none is >= 0x80)
	return x&high | below | hasZero(x^(0x7f*swarOnes)) | hasZero(x^escs)
}

// firstNotPlain is the index of the first byte that is not plain in a word whose notPlain is
// bad (not 0).
func firstNotPlain(bad uint64) int { return bits.TrailingZeros64(bad) >> 3 }
