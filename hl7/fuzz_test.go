package hl7

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds returns this package's fixtures and, when present, the shared
// corpus, as seeds (wire format and as the files are).
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	for _, pattern := range []string{"vxu/*.hl7", "batch/*.hl7", "ack/*.hl7", "qbp/*.hl7"} {
		more, _ := filepath.Glob(filepath.Join(sharedDir, "corpus", pattern))
		files = append(files, more...)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b, wire(b))
	}
	for _, s := range []string{
		"", "MSH", "MSH|", "MSH|^~", `MSH|^~\&`, `MSH|^~\&#|`, "MSH$%*!@$a\nPID$1%2*3@4!F!",
		"MSH|^~\\&|\rPID|1||O\\T\\Brien^M\xfcller\xff|\"\"|\\X4", "MSH|^~\\&\r\r\n  \nZZZ|a~b^c&d\rpid|",
		"MSH|^~\\&|||||||||||||||||8859/1\rPID|\xe9\\XE9\\",
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	paths := []string{"MSH-1", "MSH-2", "MSH-9-2", "MSH-10", "MSH-18", "PID-5-1", "PID-3(2)-4-2", "RXA-5-1", "OBX(2)-5", "ZZZ-1(2)-2-1"}
	var reused Message
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.Offset < 0 || pe.Offset > len(data) || pe.Err == nil || pe.Error() == "" {
				t.Fatalf("bad ParseError %+v", pe)
			}
		}
		if m.NumSegments() > 0 && !m.Segment(0).Is("MSH") {
			t.Fatalf("first segment %q", m.Segment(0).Name())
		}
		checkMessage(t, m)
		for _, p := range paths {
			if s := m.Get(p); !utf8.ValidString(s) {
				t.Fatalf("Get(%q) = %q: not UTF-8", p, s)
			}
		}
		if ce := m.CharsetError(); ce != nil && !errors.Is(ce, ErrUnknownCharset) {
			t.Fatalf("CharsetError %v", ce)
		}
		// A reused Message gives the same result.
		err2 := reused.Parse(data)
		if (err == nil) != (err2 == nil) || reused.NumSegments() != m.NumSegments() || reused.Delimiters() != m.Delimiters() {
			t.Fatalf("reused Message differs: %v / %v, %d / %d segments", err, err2, m.NumSegments(), reused.NumSegments())
		}
		for i := range m.NumSegments() {
			if !bytes.Equal(m.Segment(i).Raw(), reused.Segment(i).Raw()) {
				t.Fatalf("segment %d differs after reuse", i)
			}
		}
	})
}

// fuzzDelims turns fuzz bytes into delimiters, or reports that they are not
// a valid set.
func fuzzDelims(b string) (Delimiters, bool) {
	if len(b) < 5 {
		return DefaultDelimiters, true
	}
	d := Delimiters{b[0], b[1], b[2], b[3], b[4]}
	return d, d.Validate() == nil
}

func FuzzUnescape(f *testing.F) {
	f.Add([]byte(`O\T\Brien \X41\ \.br\ \.sp 3\ \Zx\ \`), "|^~\\&")
	f.Add([]byte("a$b%c!F!d!XC3BC!\n\r\x0b"), "$%*!@")
	f.Add([]byte("M\xfcller\xff\\X\\\\XFF\\"), "")
	f.Add([]byte(".br.x"), "|.~\\&")
	f.Fuzz(func(t *testing.T, src []byte, delims string) {
		d, ok := fuzzDelims(delims)
		if !ok {
			return
		}
		// Unescape never fails; with a character set it yields valid UTF-8.
		_ = Unescape(nil, src, d)
		for _, dec := range []*Decoder{utf8Decoder, mustDecoder(t, "8859/1")} {
			if out := appendUnescaped(nil, src, &d, dec); !utf8.Valid(out) {
				t.Fatalf("%s: decoded %q is not UTF-8", dec.Name(), out)
			}
		}
		// Escape then Unescape gives back the input, and the escaped form
		// holds no raw delimiter, terminator or framing byte.
		esc := Escape(nil, string(src), d)
		if got := Unescape(nil, esc, d); !bytes.Equal(got, src) {
			t.Fatalf("round trip of %q: escaped %q, unescaped %q", src, esc, got)
		}
		for _, c := range esc {
			if c == d.Field || c == d.Component || c == d.Repetition || c == d.Subcomponent || c == '\r' || c == '\n' || c == FrameStart || c == FrameEnd {
				t.Fatalf("escaped %q holds raw %q", esc, c)
			}
		}
	})
}

func mustDecoder(t testing.TB, name string) *Decoder {
	d, err := DecoderFor(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// FuzzBuilder checks that values written by Builder read back the same under
// any valid delimiters.
func FuzzBuilder(f *testing.F) {
	f.Add("|^~\\&", "O&Brien", "a|b^c~d\\e", "line\nbreak\r")
	f.Add("$%*!@", "x$y", "!F!", "")
	f.Add("|.~\\&", "a.b", "\n", "\"\"")
	f.Fuzz(func(t *testing.T, delims, a, b, c string) {
		d, ok := fuzzDelims(delims)
		if !ok {
			return
		}
		bld := NewBuilder(d)
		bld.Segment("MSH", Text(a))
		bld.Segment("ZZZ", Text(a), Comps(b, c), Reps(Text(c), Text(a)), CompValues(Text(a), Subs(b, c)))
		m, err := Parse(bld.Bytes())
		if err != nil {
			t.Fatalf("built %q does not parse: %v", bld.Bytes(), err)
		}
		z, ok := m.Find("ZZZ", 1)
		if !ok || m.NumSegments() != 2 {
			t.Fatalf("built %q: %d segments", bld.Bytes(), m.NumSegments())
		}
		// Compare at the byte level (Unescape of Raw): String would turn
		// bytes that are not UTF-8 into U+FFFD.
		check := func(what string, raw []byte, want string) {
			if got := string(Unescape(nil, raw, d)); got != want {
				t.Fatalf("%s = %q, want %q (built %q)", what, got, want, bld.Bytes())
			}
			if len(raw) == 2 && raw[0] == '"' && raw[1] == '"' {
				t.Fatalf("%s: text %q reads as the null value", what, want)
			}
		}
		check("MSH-3", m.Segment(0).Field(3).Raw(), a)
		check("ZZZ-1", z.Field(1).Raw(), a)
		check("ZZZ-2-1", z.Field(2).Component(1).Raw(), b)
		check("ZZZ-2-2", z.Field(2).Component(2).Raw(), c)
		check("ZZZ-3(1)", z.Field(3).Rep(1).Raw(), c)
		check("ZZZ-3(2)", z.Field(3).Rep(2).Raw(), a)
		check("ZZZ-4-1", z.Field(4).Component(1).Raw(), a)
		check("ZZZ-4-2-1", z.Field(4).Component(2).Sub(1).Raw(), b)
		check("ZZZ-4-2-2", z.Field(4).Component(2).Sub(2).Raw(), c)
		if utf8.ValidString(a) && z.Field(1).String() != a {
			t.Fatalf("ZZZ-1 String = %q, want %q", z.Field(1).String(), a)
		}
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

type frameResult struct {
	frames  []string
	errs    []string
	skipped int64
}

func readFrames(t *testing.T, r io.Reader, limit int) frameResult {
	var res frameResult
	fr := NewFrameReader(r, limit)
	for range 10000 {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			res.skipped = fr.Skipped()
			return res
		}
		if err != nil {
			var tl *FrameTooLargeError
			switch {
			case errors.As(err, &tl):
				if tl.Size <= limit || len(tl.Head) > 4096 || len(tl.Head) > tl.Size {
					t.Fatalf("bad FrameTooLargeError %+v", tl)
				}
			case errors.Is(err, ErrPartialFrame):
			default:
				t.Fatalf("unexpected error %v", err)
			}
			res.errs = append(res.errs, err.Error())
			continue
		}
		if len(f) > limit || bytes.IndexByte(f, FrameEnd) >= 0 {
			t.Fatalf("frame of %d bytes (limit %d) or holding 0x1C", len(f), limit)
		}
		res.frames = append(res.frames, string(f))
	}
	t.Fatal("ReadFrame did not reach the end")
	return res
}

func FuzzFrameReader(f *testing.F) {
	f.Add([]byte(frame("MSH|a")+"junk"+frame("MSH|b")), 3, 100)
	f.Add([]byte("\x0b"+string(bytes.Repeat([]byte("x"), 300))+"\x1c\r\x0bok\x1c"), 7, 64)
	f.Add([]byte("\x0bpartial"), 1, 10)
	for _, s := range fuzzSeeds(f)[:4] {
		f.Add(AppendFrame(nil, s), 5, 1<<10)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk, limit int) {
		chunk = 1 + abs(chunk)%64
		limit = 1 + abs(limit)%2048
		whole := readFrames(t, bytes.NewReader(data), limit)
		pieces := readFrames(t, &chunkReader{data: data, n: chunk}, limit)
		if !equalStrings(whole.frames, pieces.frames) || !equalStrings(whole.errs, pieces.errs) || whole.skipped != pieces.skipped {
			t.Fatalf("reading in chunks of %d differs:\nwhole  %q %q %d\nchunks %q %q %d", chunk,
				whole.frames, whole.errs, whole.skipped, pieces.frames, pieces.errs, pieces.skipped)
		}
		total := int(whole.skipped)
		for _, fr := range whole.frames {
			total += len(fr)
		}
		if total > len(data) {
			t.Fatalf("frames and skipped bytes (%d) exceed the input (%d)", total, len(data))
		}
		// Writing the frames again and reading them back gives them back.
		var out bytes.Buffer
		for _, fr := range whole.frames {
			if err := WriteFrame(&out, []byte(fr)); err != nil && !errors.Is(err, ErrFrameContent) {
				t.Fatal(err)
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}

func FuzzSplitBatch(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("FHS|^~\\&\nBHS|^~\\&\nMSH|a\nBTS|x\nBHS\nFTS|2|\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := SplitBatch(data)
		if b == nil {
			t.Fatal("nil Batch")
		}
		if err != nil {
			var ce *BatchCountError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v", err, err)
			}
		}
		size := 0
		for i, msg := range b.Messages {
			size += len(msg)
			if len(msg) == 0 || msg[len(msg)-1] != '\r' || bytes.IndexByte(msg, '\n') >= 0 {
				t.Fatalf("message %d = %q", i, msg)
			}
			// Each message is an MSH line and what follows it, or lines
			// outside any message (which Parse will reject) without MSH.
			for j, line := range bytes.Split(msg[:len(msg)-1], []byte("\r")) {
				kind := segmentKind(line)
				if len(line) == 0 || line[0] == ' ' || line[0] == '\t' || kind != "" && kind != "MSH" {
					t.Fatalf("message %d holds line %q", i, line)
				}
				if kind == "MSH" && j > 0 {
					t.Fatalf("message %d holds an MSH after its first line: %q", i, msg)
				}
			}
			_, _ = Parse(msg)
		}
		if size > len(data)+1 {
			t.Fatalf("messages total %d bytes from %d", size, len(data))
		}
		if got := SplitMessages(data); len(got) != len(b.Messages) {
			t.Fatalf("SplitMessages gives %d messages, SplitBatch %d", len(got), len(b.Messages))
		}
	})
}
