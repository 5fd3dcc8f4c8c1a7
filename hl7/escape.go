package hl7

import (
	"bytes"
	"unicode/utf8"
)

// Unescape appends src to dst with HL7 escape sequences resolved, using the
// escape character and delimiters of d. The bytes are not converted from any
// character set (the Field, Component... String methods do that).
//
//   - \F\ \S\ \T\ \R\ \E\ become the field, component, subcomponent,
//     repetition and escape characters.
//   - \Xhh...\ becomes the bytes given in hexadecimal.
//   - \.br\ and \.ce\ become a newline, \.sp n\ n newlines, \.sk n\ n spaces
//     (n at most 16); the other formatting commands (\.fi\ \.nf\ \.in n\
//     \.ti n\), highlighting (\H\ \N\) and character set switches (\Cxxyy\
//     \Mxxyyzz\) are dropped: they shape presentation, not content.
//   - Anything else, including locally defined \Z...\ sequences, truncated or
//     malformed sequences and a lone escape character, is kept literally, so
//     that nothing the sender wrote is lost.
func Unescape(dst, src []byte, d Delimiters) []byte {
	return appendUnescaped(dst, src, &d, nil)
}

// appendUnescaped is Unescape with character set conversion: literal text and
// the bytes of \X..\ sequences go through dec (unless dec is nil, which
// copies bytes as they are). Delimiters are ASCII and need no conversion.
func appendUnescaped(dst, src []byte, d *Delimiters, dec *Decoder) []byte {
	esc := d.Escape
	for len(src) > 0 {
		i := bytes.IndexByte(src, esc)
		if i < 0 {
			return appendText(dst, src, dec)
		}
		dst = appendText(dst, src[:i], dec)
		src = src[i:]
		j := bytes.IndexByte(src[1:], esc)
		if j < 0 {
			return appendText(dst, src, dec) // lone escape character: literal
		}
		seq := src[1 : 1+j]
		if out, ok := appendSequence(dst, seq, d, dec); ok {
			dst = out
			src = src[j+2:]
			continue
		}
		// Not a sequence this package knows: keep the escape character and
		// look again from the next byte, where the closing escape character
		// may open a valid sequence.
		dst = append(dst, esc)
		src = src[1:]
	}
	return dst
}

func appendText(dst, b []byte, dec *Decoder) []byte {
	if dec == nil {
		return append(dst, b...)
	}
	return dec.Append(dst, b)
}

// appendSequence appends the meaning of one escape sequence (seq is what
// stands between the two escape characters) and reports whether it knew it.
func appendSequence(dst, seq []byte, d *Delimiters, dec *Decoder) ([]byte, bool) {
	if len(seq) == 0 {
		return dst, false
	}
	if len(seq) == 1 {
		switch seq[0] {
		case 'F':
			return append(dst, d.Field), true
		case 'S':
			return append(dst, d.Component), true
		case 'T':
			return append(dst, d.Subcomponent), true
		case 'R':
			return append(dst, d.Repetition), true
		case 'E':
			return append(dst, d.Escape), true
		case 'H', 'N':
			return dst, true
		}
		return dst, false
	}
	switch seq[0] {
	case 'X':
		return appendHex(dst, seq[1:], dec)
	case 'C':
		return dst, len(seq) == 5 && isHex(seq[1:])
	case 'M':
		return dst, (len(seq) == 5 || len(seq) == 7) && isHex(seq[1:])
	case '.':
		return appendFormatting(dst, seq[1:])
	}
	return dst, false
}

func isHex(b []byte) bool {
	for _, c := range b {
		if unhex(c) < 0 {
			return false
		}
	}
	return true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}

// appendHex decodes the hexadecimal digits of a \X..\ sequence. The bytes are
// in the message character set, like the rest of the text.
func appendHex(dst, hex []byte, dec *Decoder) ([]byte, bool) {
	if len(hex) == 0 || len(hex)%2 != 0 || !isHex(hex) {
		return dst, false
	}
	start := len(dst)
	for i := 0; i < len(hex); i += 2 {
		c := byte(unhex(hex[i])<<4 | unhex(hex[i+1]))
		if dec != nil && dec.cm != nil && c >= utf8.RuneSelf {
			dst = utf8.AppendRune(dst, dec.cm.DecodeByte(c))
		} else {
			dst = append(dst, c)
		}
	}
	if dec != nil && dec.cm == nil && !utf8.Valid(dst[start:]) {
		// Rare: hex bytes that are not UTF-8. Replace them like any other
		// invalid byte (this copy is the only allocation on this path).
		bad := bytes.Clone(dst[start:])
		dst = dec.Append(dst[:start], bad)
	}
	return dst, true
}

// maxFormatRepeat bounds \.sp n\ and \.sk n\ so that a short sequence cannot
// expand into a huge value.
const maxFormatRepeat = 16

// appendFormatting handles the formatted-text commands of data types FT and TX
// (cmd is what follows the '.').
func appendFormatting(dst, cmd []byte) ([]byte, bool) {
	if len(cmd) < 2 {
		return dst, false
	}
	name, arg := string(cmd[:2]), cmd[2:]
	n, ok := formatArg(arg)
	if !ok {
		return dst, false
	}
	switch name {
	case "br", "ce":
		if n >= 0 {
			return dst, false
		}
		return append(dst, '\n'), true
	case "fi", "nf":
		return dst, n < 0
	case "in", "ti":
		return dst, true
	case "sp", "sk":
		if n < 0 {
			n = 1
		}
		c := byte('\n')
		if name == "sk" {
			c = ' '
		}
		for i := 0; i < min(n, maxFormatRepeat); i++ {
			dst = append(dst, c)
		}
		return dst, true
	}
	return dst, false
}

// formatArg reads the optional numeric argument of a formatting command:
// spaces, an optional sign, digits. It returns -1 when there is none.
func formatArg(arg []byte) (int, bool) {
	arg = bytes.TrimLeft(arg, " ")
	if len(arg) == 0 {
		return -1, true
	}
	if arg[0] == '+' || arg[0] == '-' {
		arg = arg[1:]
	}
	if len(arg) == 0 || len(arg) > 6 {
		return 0, false
	}
	n := 0
	for _, c := range arg {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// Escape appends s to dst with every character that HL7 gives a meaning
// escaped, so that the value can be written into a message using d:
// delimiters become \F\ \S\ \T\ \R\ \E\, LF becomes \.br\ (or \X0A\ when '.'
// is one of the delimiters), CR becomes \X0D\, and the other control
// characters except TAB become \Xhh\ (0x0B and 0x1C would break MLLP
// framing), and the text "" (two double quotes, which would read as the HL7
// null value) becomes \X2222\. Unescape reverses it exactly. The zero
// Delimiters mean DefaultDelimiters.
func Escape(dst []byte, s string, d Delimiters) []byte {
	if d == (Delimiters{}) {
		d = DefaultDelimiters
	}
	if s == `""` {
		// Written as is, this text would read as the HL7 null value.
		return append(dst, d.Escape, 'X', '2', '2', '2', '2', d.Escape)
	}
	// Text is mostly plain: skip, eight bytes at a time, to the first word holding a byte that may
	// need escaping (a delimiter, a control character, DEL); TAB, which does not, only sends the
	// byte loop below over its word.
	return escapeFrom(dst, s, d, plainPrefix(s, &d))
}

// escapeFrom is Escape's byte loop over s from start on, the bytes before start known to need no
// escaping (d is not the zero Delimiters; s is not "").
func escapeFrom(dst []byte, s string, d Delimiters, start int) []byte {
	if start == len(s) {
		return append(dst, s...)
	}
	newline := ".br"
	if d.isDelimiter('.') {
		newline = "X0A"
	}
	last := 0
	for i := start; i < len(s); i++ {
		c := s[i]
		var code string
		switch {
		case c == d.Field:
			code = "F"
		case c == d.Component:
			code = "S"
		case c == d.Subcomponent:
			code = "T"
		case c == d.Repetition:
			code = "R"
		case c == d.Escape:
			code = "E"
		case c == '\n':
			code = newline
		case c < ' ' && c != '\t' || c == 0x7f:
			code = ""
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, d.Escape)
		if code == "" {
			const digits = "0123456789ABCDEF"
			dst = append(dst, 'X', digits[c>>4], digits[c&0xf])
		} else {
			dst = append(dst, code...)
		}
		dst = append(dst, d.Escape)
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// plainPrefix returns how many leading bytes of s, a multiple of eight or all of s, Escape can
// copy as they are: none of them is a delimiter of d, a control character or DEL.
func plainPrefix(s string, d *Delimiters) int {
	pf, pc, pr := uint64(d.Field)*swarOnes, uint64(d.Component)*swarOnes, uint64(d.Repetition)*swarOnes
	pe, ps, pdel := uint64(d.Escape)*swarOnes, uint64(d.Subcomponent)*swarOnes, uint64(0x7f)*swarOnes
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte below 0x20: (x|0x80 per byte) - 0x20 per byte borrows into no other byte, and
		// leaves the high bit of a byte below 0x80 clear exactly when it was below 0x20.
		ctl := ^((x | 0x8080808080808080) - 0x2020202020202020) & ^x & 0x8080808080808080
		if ctl|matchMask(x, pf)|matchMask(x, pc)|matchMask(x, pr)|matchMask(x, pe)|matchMask(x, ps)|matchMask(x, pdel) != 0 {
			return i
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f || d.isDelimiter(c) {
			return i &^ 7
		}
	}
	return len(s)
}
