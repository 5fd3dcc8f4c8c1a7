package hl7

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkStrings compares every value of m read through a Strings with String, at every level, and
// returns how many values were read.
func checkStrings(t *testing.T, m *Message) int {
	t.Helper()
	return checkStringsLate(t, m, nil)
}

// checkStringsLate is checkStrings with the Strings made before m gets the fallback late (nil:
// none), as the pipeline does (it reads the header before validation sets the sender's fallback).
func checkStringsLate(t *testing.T, m *Message, late *Decoder) int {
	t.Helper()
	n := 0
	for _, newStrings := range []func(*Message) Strings{NewStrings, NewStringsShared} {
		n += checkStringsWith(t, m, late, newStrings)
	}
	return n
}

// checkStringsWith is checkStringsLate for the Strings newStrings makes.
func checkStringsWith(t *testing.T, m *Message, late *Decoder, newStrings func(*Message) Strings) int {
	t.Helper()
	st := newStrings(m)
	if late != nil {
		m.SetFallback(late)
	}
	n := 0
	same := func(what string, got, want string) {
		t.Helper()
		n++
		if got != want {
			t.Fatalf("%s: Strings reads %q, String %q", what, got, want)
		}
	}
	for i, s := range m.Segments() {
		for fn, f := range s.Fields() {
			same(s.Name()+" field", st.Field(f), f.String())
			for _, r := range f.Reps() {
				same(s.Name()+" rep", st.Rep(r), r.String())
				// A span from the first component, when given, is the components joined.
				first, joined := r.Component(1), ""
				for k, c := range r.Components() {
					if k > 1 {
						joined += string(m.Delimiters().Component)
					}
					joined += c.String()
					if sp, ok := st.Span(first, c); ok {
						same(s.Name()+" span", sp, joined)
					}
				}
				for _, c := range r.Components() {
					same(s.Name()+" component", st.Component(c), c.String())
					for _, sc := range c.Subs() {
						same(s.Name()+" sub", st.Sub(sc), sc.String())
					}
				}
			}
			// The positional readers too (Field(n) and the iterator agree on MSH-1/2).
			g := m.Segment(i).Field(fn)
			same(s.Name()+" Field(n)", st.Field(g), g.String())
			same(s.Name()+" Component(1)", st.Component(g.Component(1)), g.Component(1).String())
		}
	}
	return n + checkSplit(t, m)
}

// checkSplit compares FieldsInto with Field(n) and ComponentsInto with Component(k), for every
// segment and repetition of m.
func checkSplit(t *testing.T, m *Message) int {
	t.Helper()
	n := 0
	var fs [40]Field
	var cs [12]Component
	for _, s := range m.Segments() {
		for _, k := range []int{0, 1, 3, len(fs)} {
			s.FieldsInto(fs[:k])
			for i := range fs[:k] {
				n++
				if want := s.Field(i + 1); fs[i] != want {
					t.Fatalf("%s: FieldsInto(%d)[%d] = %q, Field(%d) = %q", s.Name(), k, i, fs[i].Raw(), i+1, want.Raw())
				}
			}
		}
		checkFieldSeparators(t, s)
		for fn, f := range s.Fields() {
			for _, k := range []int{1, 2, 7, len(cs)} {
				f.ComponentsInto(cs[:k])
				for i := range cs[:k] {
					n++
					if want := f.Component(i + 1); cs[i] != want {
						t.Fatalf("%s-%d: Field.ComponentsInto(%d)[%d] = %q, Component(%d) = %q", s.Name(), fn, k, i, cs[i].Raw(), i+1, want.Raw())
					}
				}
			}
			for _, r := range f.Reps() {
				r.ComponentsInto(cs[:])
				for i := range cs {
					n++
					if want := r.Component(i + 1); cs[i] != want {
						t.Fatalf("%s-%d: ComponentsInto[%d] = %q, Component(%d) = %q", s.Name(), fn, i, cs[i].Raw(), i+1, want.Raw())
					}
				}
			}
		}
	}
	return n
}

// checkFieldSeparators compares Segment.FieldSeparators with the field separators a byte loop
// finds in the segment's bytes, from several starting points, and stopping early.
func checkFieldSeparators(t *testing.T, s Segment) {
	t.Helper()
	raw, off, fs := s.Raw(), s.Offset(), s.m.delims.Field
	for _, from := range []int{0, 3, 4, 5, len(raw) - 1, len(raw), len(raw) + 1, -1} {
		var want []int
		for k := max(from, 0); from >= 0 && k < len(raw); k++ {
			if raw[k] == fs {
				want = append(want, off+k)
			}
		}
		got := slices.Collect(s.FieldSeparators(from))
		if !slices.Equal(got, want) {
			t.Fatalf("%s: FieldSeparators(%d) = %v, want %v", s.Name(), from, got, want)
		}
		if len(want) > 1 {
			var first []int
			for p := range s.FieldSeparators(from) {
				first = append(first, p)
				break
			}
			if len(first) != 1 || first[0] != want[0] {
				t.Fatalf("%s: FieldSeparators(%d) stopped after one: %v, want %v", s.Name(), from, first, want[:1])
			}
		}
	}
}

// TestStringsMatchString: a value read through Strings is the value String decodes, for the
// fixtures (escape sequences, Latin-1, other delimiters), with a UTF-8 fallback, and for the
// shared corpus.
func TestStringsMatchString(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	more, _ := filepath.Glob(filepath.Join(sharedDir, "corpus", "vxu", "*.hl7"))
	files = append(files, more...)
	latin1, err := DecoderFor("8859/1")
	if err != nil {
		t.Fatal(err)
	}
	extra := [][]byte{
		[]byte("MSH|^~\\&|A|B\rPID|1||O\\T\\Brien^M\xfcller\xff|\"\"|\\X4|Jos\xc3\xa9^\xe9|a&b&\\S\\c"),
		[]byte("MSH|^~\\&|||||||||||||||||8859/1\rPID|\xe9\\XE9\\|plain|\xc3\xa9"),
		[]byte("MSH|^~\\&|||||||||||||||||UNICODE UTF-8\rPID|Stra\xc3\x9fe|\xff"),
		[]byte("MSH|^~\\&|A\\T\\B|F\rPID|1"),     // an escape in MSH-3: not a plain message
		[]byte("MSH|^~\\&#|APP|F\rPID|1||X^Y\r"), // a fifth encoding character
		[]byte("MSH|^~\\&"),
	}
	var msgs [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	msgs = append(msgs, extra...)
	total := 0
	for _, b := range msgs {
		for _, fb := range []*Decoder{nil, latin1} {
			m, err := Parse(b)
			if err != nil && m.NumSegments() == 0 {
				continue
			}
			m.SetFallback(fb)
			total += checkStrings(t, m)
		}
	}
	if total < 1000 {
		t.Fatalf("only %d values compared", total)
	}
}

// TestStringsShareOneCopy: reading the values of a message through Strings allocates once (the
// copy), whatever the number of values; a message larger than MaxSharedCopy is not copied.
func TestStringsShareOneCopy(t *testing.T) {
	m, err := Parse(readFixture(t, "vxu_full.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := m.Find("PID", 1)
	var sink int
	allocs := testing.AllocsPerRun(100, func() {
		st := NewStrings(m)
		for _, f := range pid.Fields() {
			for _, r := range f.Reps() {
				for _, c := range r.Components() {
					if bytes.IndexByte(c.Raw(), '\\') < 0 { // escaped values decode apart
						sink += len(st.Component(c))
					}
				}
			}
		}
	})
	if allocs != 1 {
		t.Errorf("reading PID's components through Strings allocates %v times, want 1", allocs)
	}
	big := []byte("MSH|^~\\&|A\rPID|1||" + strings.Repeat("x", MaxSharedCopy) + "\r")
	bm, err := Parse(big)
	if err != nil {
		t.Fatal(err)
	}
	st := NewStrings(bm)
	if st.s != "" {
		t.Errorf("a message of %d bytes was copied", len(big))
	}
	if got := st.Component(bm.Segment(1).Field(1).Component(1)); got != "1" {
		t.Errorf("PID-1 of a large message reads %q", got)
	}
	// A message of plain ASCII (apart from MSH-2) is known to be plain once, for every value; one
	// with an escape sequence after MSH-2 is not.
	for raw, want := range map[string]bool{
		"MSH|^~\\&|APP|FAC\rPID|1||MRN^^^A^MR||DOE^JANE":           true,
		"MSH|^~\\&|APP|F\\T\\C\rPID|1":                             false,
		"MSH|^~\\&|APP|FAC\rPID|1||M\xc3\xbcller":                  true, // valid UTF-8
		"MSH|^~\\&|APP|FAC\rPID|1||M\xfcller":                      false,
		"MSH|^~\\&|APP|FAC|||||||||||||||8859/1\rPID|1||M\xfcller": false,
	} {
		pm, err := Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := NewStrings(pm).plain; got != want {
			t.Errorf("%q: plain %v, want %v", raw, got, want)
		}
	}
	// Parsed again (from other bytes), the Message is not read from the old copy.
	st = NewStrings(m)
	if err := m.Parse([]byte("MSH|^~\\&|OTHER\r")); err != nil {
		t.Fatal(err)
	}
	if got := st.Field(m.Segment(0).Field(3)); got != "OTHER" {
		t.Errorf("after Parse, Strings reads %q, want OTHER", got)
	}
	_ = sink
}

func FuzzStrings(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	latin1, err := DecoderFor("8859/1")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _ := Parse(data)
		checkStrings(t, m)
		m, _ = Parse(data)
		checkStringsLate(t, m, latin1)
	})
}

// TestStringsShared: NewStringsShared reads the values NewStrings does without copying the
// message: its strings are the message's own bytes (they change if the bytes do, which the caller
// promises never happens), and reading them allocates nothing.
func TestStringsShared(t *testing.T) {
	raw := bytes.Clone(readFixture(t, "vxu_full.hl7"))
	m, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := m.Find("PID", 1)
	var st Strings
	var sink int
	if n := testing.AllocsPerRun(100, func() {
		st = NewStringsShared(m)
		sink += len(st.Field(pid.Field(3))) + len(st.Component(pid.Field(7).Component(1)))
	}); n != 0 {
		t.Errorf("NewStringsShared and reads allocate %v times per run", n)
	}
	id := st.Field(pid.Field(3))
	cp := NewStrings(m)
	copied := cp.Field(pid.Field(3))
	if id != copied || id == "" {
		t.Fatalf("shared %q, copied %q", id, copied)
	}
	at := pid.Field(3).Offset()
	raw[at] ^= 0x20 // only to show the string is the message's byte
	if id == copied {
		t.Errorf("the shared string did not follow its bytes: it is a copy")
	}
	raw[at] ^= 0x20
	big := append(bytes.Clone(raw), bytes.Repeat([]byte("NTE|1||x\r"), MaxSharedCopy/8)...)
	if m, err := Parse(big); err == nil {
		if st := NewStringsShared(m); st.s != "" {
			t.Errorf("a message larger than MaxSharedCopy is shared")
		}
	}
}

// TestStringsSpan: a span of components, when Span gives it, is their decoded values joined by
// the message's component separator, for every pair of components of every repetition of the
// fixtures (escape sequences and Latin-1 among them); and it is given for the plain ones.
func TestStringsSpan(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	given, refused := 0, 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(b)
		if err != nil && m.NumSegments() == 0 {
			continue
		}
		for _, newStrings := range []func(*Message) Strings{NewStrings, NewStringsShared} {
			st := newStrings(m)
			sep := string(m.Delimiters().Component)
			for _, s := range m.Segments() {
				for _, f := range s.Fields() {
					for _, r := range f.Reps() {
						var cs []Component
						for _, c := range r.Components() {
							cs = append(cs, c)
						}
						for i := range cs {
							for j := i; j < len(cs); j++ {
								got, ok := st.Span(cs[i], cs[j])
								if !ok {
									refused++
									continue
								}
								given++
								var parts []string
								for _, c := range cs[i : j+1] {
									parts = append(parts, c.String())
								}
								if want := strings.Join(parts, sep); got != want {
									t.Fatalf("%s: Span(%d, %d) = %q, want %q", file, i+1, j+1, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
	if given < 100 || refused == 0 {
		t.Errorf("Span given %d times, refused %d: the fixtures should have both", given, refused)
	}
	var zero Strings
	m, _ := Parse([]byte("MSH|^~\\&|A\rORC|RE||ID^NS\r"))
	orc, _ := m.Find("ORC", 1)
	if _, ok := zero.Span(orc.Field(3).Component(1), orc.Field(3).Component(2)); ok {
		t.Error("the zero Strings gives a span (it has no shared copy)")
	}
}
