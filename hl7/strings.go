package hl7

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Strings reads the decoded values of one parsed Message as strings that
// share a single copy of the message: a value whose decoded text is its raw
// bytes (no escape sequence, nothing to convert from the character set, as
// nearly every value is) is a substring of that copy, so reading a hundred
// values costs one allocation, not a hundred. Values that decode to other
// bytes get a string of their own, as String gives them.
//
// Every string from a Strings keeps the whole copy alive while it is
// referenced: it suits values kept as long as the message is (the records
// decoded from it); a value kept for longer, in a cache say, should be
// cloned (strings.Clone). A message larger than MaxSharedCopy is not copied:
// its values are read one string each, so that a small value never keeps a
// large message alive.
//
// A Strings reads the Message as it was parsed when NewStrings was called and
// must not be used once the Message is parsed again (a Message parsed again
// from other bytes is noticed, and its values read one string each). The
// zero Strings reads every value one string each.
type Strings struct {
	m     *Message
	base  *byte // the first byte of m.data when the copy was made
	n     int   // len(m.data) then
	s     string
	plain bool // every byte of the message is ASCII and none is the escape character
}

// MaxSharedCopy is the largest message whose values a Strings reads from one
// shared copy.
const MaxSharedCopy = 64 << 10

// NewStrings copies m's bytes into one string (when m is not larger than
// MaxSharedCopy) from which its values are read.
func NewStrings(m *Message) Strings {
	if m == nil || len(m.data) == 0 || len(m.data) > MaxSharedCopy {
		return Strings{}
	}
	return Strings{m: m, base: unsafe.SliceData(m.data), n: len(m.data), s: string(m.data),
		plain: plainMessage(m)}
}

// NewStringsShared is NewStrings without the copy: the strings are read from m's bytes
// themselves, so that they cost no allocation at all. The caller promises that those bytes are
// never modified while any string read from them is referenced (a transport that hands over
// a fresh buffer per message and never writes to it again); the strings then keep those bytes
// alive as they would keep the copy. A message larger than MaxSharedCopy is read one string
// each, as by NewStrings.
func NewStringsShared(m *Message) Strings {
	if m == nil || len(m.data) == 0 || len(m.data) > MaxSharedCopy {
		return Strings{}
	}
	return Strings{m: m, base: unsafe.SliceData(m.data), n: len(m.data),
		s: unsafe.String(unsafe.SliceData(m.data), len(m.data)), plain: plainMessage(m)}
}

// plainMessage reports whether every value of m decodes to its own bytes: no escape character
// apart from MSH-2 (the encoding characters, which hold it and are read literally), and bytes that
// mean themselves in the message's character set: valid UTF-8 for UTF-8 (a value, cut out of
// valid UTF-8 at ASCII delimiters, is valid UTF-8 too, so a fallback never applies), ASCII for a
// code page. The fallback SetFallback may give the message later reads UTF-8 too.
func plainMessage(m *Message) bool {
	esc := m.delims.Escape
	data := m.data
	head, from := len(data), len(data)
	if len(m.segs) > 0 {
		x := &m.segs[0]
		head = min(int(x.start)+4, int(x.end)) // up to and including the separator after "MSH"
		from = int(x.end)                      // after MSH-2: its closing separator, or the segment's end
		if i := bytes.IndexByte(data[head:x.end], m.delims.Field); i >= 0 {
			from = head + i
		}
	}
	a, b := data[:head], data[from:]
	if bytes.IndexByte(a, esc) >= 0 || bytes.IndexByte(b, esc) >= 0 {
		return false
	}
	if m.Decoder().IsUTF8() {
		return utf8.Valid(a) && utf8.Valid(b)
	}
	return ascii(a) && ascii(b)
}

// ascii reports whether b is all ASCII.
func ascii(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&(swarOnes<<7) != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Field returns f decoded, as Field.String does.
func (t *Strings) Field(f Field) string {
	if f.v.end == f.v.start {
		return "" // inlined: most values read are empty, and cost no call
	}
	return t.of(f.v)
}

// Rep returns r decoded, as Rep.String does.
func (t *Strings) Rep(r Rep) string {
	if r.v.end == r.v.start {
		return ""
	}
	return t.of(r.v)
}

// Component returns c decoded, as Component.String does.
func (t *Strings) Component(c Component) string {
	if c.v.end == c.v.start {
		return ""
	}
	return t.of(c.v)
}

// Sub returns s decoded, as Subcomponent.String does.
func (t *Strings) Sub(s Subcomponent) string {
	if s.v.end == s.v.start {
		return ""
	}
	return t.of(s.v)
}

func (t *Strings) of(v value) string {
	if v.end == v.start || v.isNull() {
		return ""
	}
	m := v.m
	if t.s == "" || m != t.m || len(m.data) != t.n || unsafe.SliceData(m.data) != t.base || !t.plain && !v.verbatim() {
		return v.String()
	}
	return t.s[v.start:v.end]
}

// Span returns the message's text from the start of first to the end of last (components of
// one repetition, first not after last), delimiters included, when all of it decodes to its own
// bytes (no escape sequence, no null value) and is read from the shared copy: then it is a
// substring, with no allocation. ok is false otherwise (the caller builds the text from the
// decoded values): a decoder that renders an entity identifier as "id^namespace" takes it from
// the message as it is when the message's component separator is '^', as it nearly always is.
func (t *Strings) Span(first, last Component) (s string, ok bool) {
	a, b := first.v, last.v
	m := a.m
	if m == nil || b.m != m || a.start > b.end || t.s == "" || m != t.m || len(m.data) != t.n || unsafe.SliceData(m.data) != t.base {
		return "", false
	}
	v := value{m: m, start: a.start, end: b.end}
	if !t.plain && !v.verbatim() {
		return "", false
	}
	// A component that is the null value ("") decodes to nothing: refuse any quote.
	if s = t.s[v.start:v.end]; strings.IndexByte(s, '"') >= 0 {
		return "", false
	}
	return s, true
}

// verbatim reports whether v decodes to its raw bytes: it holds no escape
// character and its bytes mean themselves in the message's character set
// (valid UTF-8 for UTF-8, ASCII for a code page).
func (v value) verbatim() bool {
	raw := v.raw()
	if v.lit || plainASCII(raw, v.m.delims.Escape) {
		return true
	}
	if bytes.IndexByte(raw, v.m.delims.Escape) >= 0 {
		return false
	}
	if v.m.dec.IsUTF8() {
		return utf8.Valid(raw)
	}
	for _, c := range raw {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
