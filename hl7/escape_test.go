package hl7

import (
	"errors"
	"strings"
	"testing"
)

func TestUnescape(t *testing.T) {
	d := DefaultDelimiters
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{`O\T\Brien`, "O&Brien"},
		{`a\F\b\S\c\T\d\R\e\E\f`, `a|b^c&d~e\f`},
		{`\X41\`, "A"},
		{`\X4142c3bc\`, "ABü"},
		{`\X0D0A\`, "\r\n"},
		{`\X\`, `\X\`},
		{`\X4\`, `\X4\`},
		{`\XZZ\`, `\XZZ\`},
		{`one\.br\two`, "one\ntwo"},
		{`one\.ce\two`, "one\ntwo"},
		{`a\.sp\b`, "a\nb"},
		{`a\.sp 3\b`, "a\n\n\nb"},
		{`a\.sp 99999\b`, "a" + strings.Repeat("\n", 16) + "b"},
		{`a\.sk 2\b`, "a  b"},
		{`a\.fi\b\.nf\c\.in +4\d\.ti -2\e`, "abcde"},
		{`\H\bold\N\ text`, "bold text"},
		{`\C2842\x\M2442\y\M244241\z`, "xyz"},
		{`\C28\x`, `\C28\x`},
		{`\.br 2\`, `\.br 2\`},
		{`\.xx\`, `\.xx\`},
		{`\.sp x\`, `\.sp x\`},
		{`\Zlocal\`, `\Zlocal\`},
		{`\Q\`, `\Q\`},
		{`\\`, `\\`},
		{`\\F\`, `\|`},
		{`50\% done`, `50\% done`},
		{`C:\path\file`, `C:\path\file`},
		{`trailing\`, `trailing\`},
		{`\`, `\`},
		{`\F`, `\F`},
		{`\Q\F\`, `\Q|`},
	}
	for _, tt := range tests {
		if got := string(Unescape(nil, []byte(tt.in), d)); got != tt.want {
			t.Errorf("Unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Another escape character.
	alt := Delimiters{'$', '%', '*', '!', '@'}
	if got := string(Unescape([]byte("x:"), []byte(`a!F!b!S!c!E!d\F\`), alt)); got != `x:a$b%c!d\F\` {
		t.Errorf("alt Unescape = %q", got)
	}
}

func TestEscape(t *testing.T) {
	d := DefaultDelimiters
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"O&Brien", `O\T\Brien`},
		{`a|b^c&d~e\f`, `a\F\b\S\c\T\d\R\e\E\f`},
		{"l1\nl2", `l1\.br\l2`},
		{"l1\r\nl2", `l1\X0D\\.br\l2`},
		{"tab\tok", "tab\tok"},
		{"vt\x0bfs\x1cnul\x00del\x7f", `vt\X0B\fs\X1C\nul\X00\del\X7F\`},
		{"Müller", "Müller"},
		{`""`, `\X2222\`},
		{`"""`, `"""`},
	}
	for _, tt := range tests {
		if got := string(Escape(nil, tt.in, d)); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := string(Unescape(nil, Escape(nil, tt.in, d), d)); got != tt.in {
			t.Errorf("round trip of %q = %q", tt.in, got)
		}
	}
	// With '.' as a delimiter, \.br\ would contain a raw delimiter.
	dot := Delimiters{'|', '.', '~', '\\', '&'}
	if got := string(Escape(nil, "a.b\nc", dot)); got != `a\S\b\X0A\c` {
		t.Errorf("Escape with '.' = %q", got)
	}
	if got := string(Escape(nil, "a|b", Delimiters{})); got != `a\F\b` {
		t.Errorf("zero Delimiters = %q", got)
	}
}

func TestCharsets(t *testing.T) {
	tests := []struct {
		charset string
		in      string
		want    string
		name    string
	}{
		{"", "Müller", "Müller", "UTF-8"},
		{"UNICODE UTF-8", "Jürgen", "Jürgen", "UTF-8"},
		{"utf-8", "a\xffb", "a\uFFFDb", "UTF-8"},
		{"ASCII", "abc", "abc", "UTF-8"},
		{"8859/1", "M\xfcller", "Müller", "ISO-8859-1"},
		{"ISO-8859-1", "Gon\xe7alves", "Gonçalves", "ISO-8859-1"},
		{"latin1", "\xe9", "é", "ISO-8859-1"},
		{"8859/15", "\xa4", "€", "ISO-8859-15"},
		{"8859/2", "\xb3", "ł", "ISO-8859-2"},
		{"windows-1252", "\x80", "€", "windows-1252"},
		{" 8859/1 ", "\xfc", "ü", "ISO-8859-1"},
	}
	for _, tt := range tests {
		dec, err := DecoderFor(tt.charset)
		if err != nil {
			t.Errorf("DecoderFor(%q): %v", tt.charset, err)
			continue
		}
		if dec.Name() != tt.name {
			t.Errorf("DecoderFor(%q).Name = %q, want %q", tt.charset, dec.Name(), tt.name)
		}
		if got := dec.String([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: %q decodes to %q, want %q", tt.charset, tt.in, got, tt.want)
		}
		if dec.Encoding() == nil {
			t.Errorf("%s: nil Encoding", tt.charset)
		}
	}
	for _, bad := range []string{"ISO IR87", "GB 18030-2000", "UNICODE UTF-16", "EBCDIC", strings.Repeat("X", 100)} {
		if _, err := DecoderFor(bad); !errors.Is(err, ErrUnknownCharset) {
			t.Errorf("DecoderFor(%q) err = %v", bad, err)
		}
	}
}

func TestLatin1Message(t *testing.T) {
	m := mustParse(t, readFixture(t, "vxu_latin1.hl7"))
	if m.Charset() != "8859/1" || m.Decoder().Name() != "ISO-8859-1" || m.CharsetError() != nil {
		t.Fatalf("charset %q %q %v", m.Charset(), m.Decoder().Name(), m.CharsetError())
	}
	tests := map[string]string{
		"PID-5-1":    "Müller",
		"PID-5-2":    "Jürgen",
		"PID-5(2)-1": "Gonçalves",
		"PID-5(2)-2": "José",
		"NTE-3":      "café crème", // \XE9\ is a Latin-1 byte too
	}
	for path, want := range tests {
		if got := m.Get(path); got != want {
			t.Errorf("Get(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestUnknownCharsetMessage(t *testing.T) {
	m := mustParse(t, msg(basicMSH+"|||ER|AL||EBCDIC~8859/1", "PID|1||X||M\xfcller"))
	err := m.CharsetError()
	var pe *ParseError
	if !errors.Is(err, ErrUnknownCharset) || !errors.As(err, &pe) || pe.Field != 18 || pe.Segment != "MSH" {
		t.Fatalf("CharsetError = %v", err)
	}
	if string(m.Bytes()[pe.Offset:pe.Offset+6]) != "EBCDIC" {
		t.Errorf("offset %d does not point at MSH-18", pe.Offset)
	}
	if m.Charset() != "EBCDIC" {
		t.Errorf("Charset = %q", m.Charset())
	}
	if got := m.Get("PID-5"); got != "M\uFFFDller" {
		t.Errorf("fallback decoding = %q", got)
	}
}

// escapeRef is Escape without its word-at-a-time scan: the byte loop over every byte.
func escapeRef(dst []byte, s string, d Delimiters) []byte {
	if d == (Delimiters{}) {
		d = DefaultDelimiters
	}
	if s == `""` {
		return append(dst, d.Escape, 'X', '2', '2', '2', '2', d.Escape)
	}
	return escapeFrom(dst, s, d, 0)
}

// TestEscapeMatchesByteLoop: Escape writes what the byte loop writes, for every byte value at
// every position of texts up to 24 bytes (around the eight-byte words it scans), with the
// standard delimiters and others ('.' among them).
func TestEscapeMatchesByteLoop(t *testing.T) {
	delims := []Delimiters{DefaultDelimiters, {Field: '#', Component: '.', Repetition: '!', Escape: '$', Subcomponent: '%'}}
	base := "Plain text, é ü € ok.ab"
	for _, d := range delims {
		for n := 0; n <= 24; n++ {
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					b := []byte((base + base)[:n])
					b[pos] = byte(c)
					s := string(b)
					if got, want := Escape(nil, s, d), escapeRef(nil, s, d); string(got) != string(want) {
						t.Fatalf("Escape(%q, %v) = %q, want %q", s, d, got, want)
					}
				}
			}
		}
	}
}
