package hl7

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// A Decoder converts the bytes of one character set to UTF-8. It is safe for
// concurrent use.
//
// Only character sets in which every delimiter byte is the ASCII character
// itself are supported: UTF-8 (and its subset ASCII) and the single-byte
// ISO 8859 and Windows code pages. Multi-byte sets such as Shift-JIS, Big5 or
// GB 18030 use bytes like | and ^ inside characters, so a byte-oriented HL7
// parser cannot find field boundaries in them; they are reported as unknown.
type Decoder struct {
	name string
	cm   *charmap.Charmap // nil for UTF-8

	// For UTF-8: how bytes that are not valid UTF-8 are read (nil: as U+FFFD).
	fallback *Decoder
	// For a code page: the UTF-8 decoder that falls back to it (see WithFallback).
	utf8fb *Decoder
}

var utf8Decoder = &Decoder{name: "UTF-8"}

// Name returns the canonical name of the character set, e.g. "UTF-8" or
// "ISO-8859-1".
func (d *Decoder) Name() string { return d.name }

// Encoding returns the golang.org/x/text encoding of the character set, for
// callers that need to encode text back into it.
func (d *Decoder) Encoding() encoding.Encoding {
	if d.cm == nil {
		return unicode.UTF8
	}
	return d.cm
}

// Append appends src, converted to UTF-8, to dst. Bytes that are not valid in
// the character set become U+FFFD; each replacement stays where the bad byte
// was, so it cannot affect the text around it.
func (d *Decoder) Append(dst, src []byte) []byte {
	if d == nil {
		return appendValidUTF8(dst, src, nil)
	}
	if d.cm == nil {
		var fb *charmap.Charmap
		if d.fallback != nil {
			fb = d.fallback.cm
		}
		return appendValidUTF8(dst, src, fb)
	}
	for len(src) > 0 {
		// Copy the ASCII run as is: every supported code page is ASCII below 0x80.
		i := 0
		for i < len(src) && src[i] < utf8.RuneSelf {
			i++
		}
		dst = append(dst, src[:i]...)
		src = src[i:]
		for len(src) > 0 && src[0] >= utf8.RuneSelf {
			dst = utf8.AppendRune(dst, d.cm.DecodeByte(src[0]))
			src = src[1:]
		}
	}
	return dst
}

// String returns src converted to UTF-8.
func (d *Decoder) String(src []byte) string { return string(d.Append(nil, src)) }

// appendValidUTF8 appends src, replacing every byte that is not part of a
// valid UTF-8 sequence with what fb makes of it (U+FFFD when fb is nil or
// does not define the byte).
func appendValidUTF8(dst, src []byte, fb *charmap.Charmap) []byte {
	if utf8.Valid(src) {
		return append(dst, src...)
	}
	for len(src) > 0 {
		r, size := utf8.DecodeRune(src)
		if r == utf8.RuneError && size == 1 {
			if fb != nil {
				dst = utf8.AppendRune(dst, fb.DecodeByte(src[0]))
			} else {
				dst = append(dst, "\uFFFD"...)
			}
		} else {
			dst = append(dst, src[:size]...)
		}
		src = src[size:]
	}
	return dst
}

// IsUTF8 reports whether d reads UTF-8 (with or without a fallback).
func (d *Decoder) IsUTF8() bool { return d == nil || d.cm == nil }

// Fallback returns the character set a UTF-8 decoder reads invalid bytes
// with, or nil.
func (d *Decoder) Fallback() *Decoder {
	if d == nil {
		return nil
	}
	return d.fallback
}

// Defines reports whether byte c stands for a character in d's character set
// (for UTF-8 with a fallback, in the fallback's). Every byte of ISO-8859-1 is
// defined; Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined.
func (d *Decoder) Defines(c byte) bool {
	if d == nil {
		return c < utf8.RuneSelf
	}
	if d.cm == nil {
		if d.fallback == nil {
			return c < utf8.RuneSelf
		}
		return d.fallback.Defines(c)
	}
	return c < utf8.RuneSelf || d.cm.DecodeByte(c) != utf8.RuneError
}

// WithFallback returns the UTF-8 decoder that reads bytes that are not valid
// UTF-8 as fb's character set does: senders that declare UTF-8, or nothing,
// and send Latin-1 (Jos\xE9) are read as they meant. fb must be a single-byte
// character set; for UTF-8 (or nil) the plain UTF-8 decoder is returned.
func WithFallback(fb *Decoder) *Decoder {
	if fb == nil || fb.utf8fb == nil {
		return utf8Decoder
	}
	return fb.utf8fb
}

// DecoderFor returns the decoder for an MSH-18 value, such as "8859/1",
// "8859/15", "ASCII", "UNICODE UTF-8" or "" (UTF-8, the default). Spelling
// variants are accepted: case, spaces, '-', '_' and '/' do not matter, and the
// common IANA names ("ISO-8859-1", "latin1", "windows-1252") work too. An
// unknown or unsupported character set is an error wrapping ErrUnknownCharset.
func DecoderFor(charset string) (*Decoder, error) {
	return lookupDecoder(charset)
}

func lookupDecoder[T string | []byte](raw T) (*Decoder, error) {
	var buf [24]byte
	key := buf[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == ' ' || c == '-' || c == '_' || c == '/' || c == '\t':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		if len(key) == cap(key) {
			key = nil
			break
		}
		key = append(key, c)
	}
	if len(key) == 0 && key != nil {
		return utf8Decoder, nil // "" or blanks: the default
	}
	if key != nil {
		if d, ok := decoders[string(key)]; ok {
			return d, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownCharset, raw)
}

// decoders maps normalised character set names (upper case, without spaces,
// '-', '_' or '/') to decoders. It is never modified after initialisation.
var decoders = func() map[string]*Decoder {
	m := map[string]*Decoder{}
	add := func(d *Decoder, names ...string) {
		for _, n := range names {
			m[n] = d
		}
	}
	// HL7 table 0211 names UTF-8 "UNICODE UTF-8"; plain "UNICODE" in ER7 can
	// only be UTF-8 in practice, since UTF-16 would break the delimiters.
	add(utf8Decoder, "UNICODEUTF8", "UTF8", "UNICODE", "ASCII", "USASCII", "ISOIR6")
	cp := func(name string, cm *charmap.Charmap, names ...string) {
		d := &Decoder{name: name, cm: cm}
		d.utf8fb = &Decoder{name: "UTF-8", fallback: d}
		add(d, names...)
	}
	cp("ISO-8859-1", charmap.ISO8859_1, "88591", "ISO88591", "LATIN1", "ISOIR100", "L1")
	cp("ISO-8859-2", charmap.ISO8859_2, "88592", "ISO88592", "LATIN2", "ISOIR101")
	cp("ISO-8859-3", charmap.ISO8859_3, "88593", "ISO88593", "LATIN3", "ISOIR109")
	cp("ISO-8859-4", charmap.ISO8859_4, "88594", "ISO88594", "LATIN4", "ISOIR110")
	cp("ISO-8859-5", charmap.ISO8859_5, "88595", "ISO88595", "ISOIR144")
	cp("ISO-8859-6", charmap.ISO8859_6, "88596", "ISO88596", "ISOIR127")
	cp("ISO-8859-7", charmap.ISO8859_7, "88597", "ISO88597", "ISOIR126")
	cp("ISO-8859-8", charmap.ISO8859_8, "88598", "ISO88598", "ISOIR138")
	cp("ISO-8859-9", charmap.ISO8859_9, "88599", "ISO88599", "LATIN5", "ISOIR148")
	cp("ISO-8859-15", charmap.ISO8859_15, "885915", "ISO885915", "LATIN9", "ISOIR203")
	cp("windows-1252", charmap.Windows1252, "WINDOWS1252", "CP1252")
	return m
}()
