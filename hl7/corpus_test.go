package hl7

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// sharedDir is the public corpus beside the project checkout (../shared from
// the repository root). Tests that need it skip when it is absent.
const sharedDir = "../../shared"

// corpusFiles returns the files matching pattern under ../shared/corpus, or
// skips the test when the shared directory is not there.
func corpusFiles(t testing.TB, pattern string) []string {
	t.Helper()
	if _, err := os.Stat(sharedDir); err != nil {
		t.Skipf("shared corpus not found at %s (relative to the hl7 package): %v", sharedDir, err)
	}
	files, err := filepath.Glob(filepath.Join(sharedDir, "corpus", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no files match %s in %s/corpus", pattern, sharedDir)
	}
	return files
}

// wire converts a sample file (LF between segments) to the wire format (CR).
func wire(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\r"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r"))
}

// checkMessage walks every position of m and checks the invariants of the
// index: offsets inside the input, each value's Raw found at its Offset,
// pieces joined by their separators giving back the whole, decoded values
// valid UTF-8. It returns the number of values visited.
func checkMessage(t testing.TB, m *Message) int {
	t.Helper()
	data := m.Bytes()
	d := m.Delimiters()
	visited := 0
	at := func(what string, off int, raw []byte) {
		visited++
		if raw == nil {
			return
		}
		if off < 0 || off+len(raw) > len(data) || !bytes.Equal(data[off:off+len(raw)], raw) {
			t.Fatalf("%s: offset %d does not locate %q", what, off, raw)
		}
	}
	decoded := func(what string, s string) {
		if !utf8.ValidString(s) {
			t.Fatalf("%s: decoded value is not UTF-8: %q", what, s)
		}
	}
	prevEnd := -1
	for i := range m.NumSegments() {
		s := m.Segment(i)
		raw := s.Raw()
		at("segment", s.Offset(), raw)
		if s.Offset() <= prevEnd || len(raw) < 3 {
			t.Fatalf("segment %d at %d overlaps or is short", i, s.Offset())
		}
		prevEnd = s.Offset() + len(raw)
		if s.Index() != i || !s.Is(s.Name()) || s.Name() != string(raw[:3]) {
			t.Fatalf("segment %d: name %q index %d", i, s.Name(), s.Index())
		}
		if bytes.ContainsAny(raw, "\r\n") {
			t.Fatalf("segment %d contains a terminator", i)
		}
		header := s.Is("MSH") || s.Is("FHS") || s.Is("BHS")
		// Rebuild the segment from its fields.
		n := s.NumFields()
		var rebuilt []byte
		rebuilt = append(rebuilt, raw[:3]...)
		first := 1
		if header && n > 0 {
			rebuilt = append(rebuilt, s.Field(1).Raw()...)
			rebuilt = append(rebuilt, s.Field(2).Raw()...)
			first = 3
		}
		for fn := first; fn <= n; fn++ {
			rebuilt = append(rebuilt, d.Field)
			rebuilt = append(rebuilt, s.Field(fn).Raw()...)
		}
		if !bytes.HasPrefix(raw, rebuilt) || strings.Trim(string(raw[len(rebuilt):]), string(d.Field)) != "" {
			t.Fatalf("segment %d: fields rebuild %q, not %q", i, rebuilt, raw)
		}
		if !s.Field(n + 1).IsEmpty() {
			t.Fatalf("segment %d: field %d after NumFields is not empty", i, n+1)
		}
		for fn := 1; fn <= n+1; fn++ {
			f := s.Field(fn)
			at("field", f.Offset(), f.Raw())
			decoded("field", f.String())
			var reps [][]byte
			for r := 1; r <= f.NumReps(); r++ {
				rep := f.Rep(r)
				reps = append(reps, rep.Raw())
				at("rep", rep.Offset(), rep.Raw())
				decoded("rep", rep.String())
				var comps [][]byte
				for c := 1; c <= rep.NumComponents(); c++ {
					comp := rep.Component(c)
					comps = append(comps, comp.Raw())
					at("component", comp.Offset(), comp.Raw())
					decoded("component", comp.String())
					var subs [][]byte
					for sc := 1; sc <= comp.NumSubs(); sc++ {
						sub := comp.Sub(sc)
						subs = append(subs, sub.Raw())
						at("sub", sub.Offset(), sub.Raw())
						decoded("sub", sub.String())
					}
					if comp.NumSubs() > 0 && !bytes.Equal(bytes.Join(subs, []byte{d.Subcomponent}), comp.Raw()) && !(header && fn <= 2) {
						t.Fatalf("subs do not join back to %q", comp.Raw())
					}
					if !comp.Sub(comp.NumSubs() + 1).IsEmpty() {
						t.Fatalf("sub past the end")
					}
				}
				if rep.NumComponents() > 0 && !bytes.Equal(bytes.Join(comps, []byte{d.Component}), rep.Raw()) && !(header && fn <= 2) {
					t.Fatalf("components do not join back to %q", rep.Raw())
				}
			}
			if f.NumReps() > 0 && !bytes.Equal(bytes.Join(reps, []byte{d.Repetition}), f.Raw()) && !(header && fn <= 2) {
				t.Fatalf("reps do not join back to %q", f.Raw())
			}
			if !f.Rep(f.NumReps() + 1).IsEmpty() {
				t.Fatalf("rep past the end")
			}
		}
	}
	return visited
}

func TestCorpusVXU(t *testing.T) {
	var m Message
	for _, file := range corpusFiles(t, "vxu/*.hl7") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			// As sent on the wire (CR), and as the file is (LF).
			for _, data := range [][]byte{wire(raw), raw} {
				if err := m.Parse(data); err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if m.Get("MSH-9-1") != "VXU" || m.Get("MSH-9-2") != "V04" || m.Get("MSH-10") == "" {
					t.Errorf("MSH-9 %q^%q, MSH-10 %q", m.Get("MSH-9-1"), m.Get("MSH-9-2"), m.Get("MSH-10"))
				}
				if m.Count("PID") != 1 || m.Count("RXA") < 1 {
					t.Errorf("PID %d RXA %d", m.Count("PID"), m.Count("RXA"))
				}
				if m.Get("PID-5-1") == "" || m.Get("RXA-5-1") == "" {
					t.Errorf("PID-5-1 %q RXA-5-1 %q", m.Get("PID-5-1"), m.Get("RXA-5-1"))
				}
				checkMessage(t, &m)
			}
			if msgs := SplitMessages(raw); len(msgs) != 1 || !bytes.Equal(bytes.TrimRight(msgs[0], "\r"), bytes.TrimRight(wire(raw), "\r")) {
				t.Errorf("SplitMessages: %d messages", len(msgs))
			}
		})
	}
}

func TestCorpusKnownValues(t *testing.T) {
	files := corpusFiles(t, "vxu/nist_mu2_NIST-IZ-0*.hl7")
	want := map[string]map[string]string{
		"nist_mu2_NIST-IZ-001.00.hl7": {
			"MSH-10": "NIST-IZ-001.00", "PID-5-1": "Snow", "PID-5-2": "Madelynn", "PID-3-4": "NIST MPI",
			"RXA-5-1": "140", "RXA-17-2": "CSL Behring", "OBX(4)-5": "20120814", "NK1-3-2": "Mother",
		},
		"nist_mu2_NIST-IZ-004.00.hl7": {"PID-3(2)-1": "184-36-9200", "PID-3(2)-5": "SS", "PID-13-4": "nvally@fastmail.com"},
		"nist_mu2_NIST-IZ-019.00.hl7": {"RXA(3)-5-2": "DTaP-Hib-IPV", "OBX(14)-5": "20120816"},
	}
	for _, file := range files {
		checks, ok := want[filepath.Base(file)]
		if !ok {
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m := mustParse(t, wire(raw))
		for path, w := range checks {
			if got := m.Get(path); got != w {
				t.Errorf("%s %s = %q, want %q", filepath.Base(file), path, got, w)
			}
		}
	}
}

func TestCorpusOther(t *testing.T) {
	for _, file := range append(corpusFiles(t, "ack/*.hl7"), corpusFiles(t, "qbp/*.hl7")...) {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m := mustParse(t, wire(raw))
		checkMessage(t, m)
		if m.Get("MSH-12") != "2.5.1" {
			t.Errorf("%s: MSH-12 %q", file, m.Get("MSH-12"))
		}
	}
}

func TestCorpusBatch(t *testing.T) {
	for _, file := range corpusFiles(t, "batch/*.hl7") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b, err := SplitBatch(raw)
			if b.FHS == nil || b.BHS == nil || b.BTS == nil || b.FTS == nil || len(b.Messages) != 1 {
				t.Fatalf("envelope %q %q %q %q, %d messages", b.FHS, b.BHS, b.BTS, b.FTS, len(b.Messages))
			}
			// These files declare 4 messages in BTS-1 but hold one.
			var ce *BatchCountError
			if !errors.As(err, &ce) || ce.Segment != "BTS" || ce.Declared != "4" || ce.Found != 1 {
				t.Errorf("err = %v", err)
			}
			m := mustParse(t, b.Messages[0])
			checkMessage(t, m)
			if m.Get("MSH-12") != "2.4" || m.Get("MSH-10") != "MDPUB092001" || m.Count("RXA") != 3 {
				t.Errorf("MSH-12 %q MSH-10 %q RXA %d", m.Get("MSH-12"), m.Get("MSH-10"), m.Count("RXA"))
			}
		})
	}
}

func TestFixturesInvariants(t *testing.T) {
	for _, name := range []string{"vxu_full.hl7", "vxu_altdelim.hl7", "vxu_latin1.hl7"} {
		m := mustParse(t, readFixture(t, name))
		if n := checkMessage(t, m); n < 20 {
			t.Errorf("%s: only %d values visited", name, n)
		}
	}
}
