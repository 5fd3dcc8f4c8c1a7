package validate

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// corpusMessages returns the fixtures and, when ../shared is present, the public VXU samples.
func corpusMessages(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	paths, _ := filepath.Glob("testdata/*.hl7")
	shared, _ := filepath.Glob(filepath.Join(corpusDir, "*.hl7"))
	for _, p := range append(paths, shared...) {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzValidate parses and validates arbitrary bytes: Validate must not panic, and every finding
// must name a rule of the catalogue, a location that exists in the message, a group that exists,
// a valid severity and an ERR-8 text that fits.
func FuzzValidate(f *testing.F) {
	for _, m := range corpusMessages(f) {
		f.Add(m)
	}
	f.Add([]byte("MSH|^~\\&|||||||VXU^V04|1|P|2.5.1\rRXA|0|1\rOBX|1\rORC|RE\rPID|1\rRXA"))
	f.Add([]byte("MSH|^~\\&\nPID|||~~~~^^^&&&\nORC\nORC\nRXA|||||998^^CVX||||||||||||||RE\nRXR\nRXR\nNTE\nOBX|||||||||||\n"))
	v, err := New(Options{Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("MSH|^~\\&|||||||VXU^V04|1|P|2.5.1\rPID|1||1^^^A^MR~\\X00\\||Jos\xe9^A\x00B~~~\rNTE|1||\x81\x7f"))
	// Small limits and a per-sender fallback, so that the fuzzer reaches the limits and the text
	// pass with small inputs.
	small, err := New(Options{Now: func() time.Time { return testNow }, MaxSegments: 10, MaxRepetitions: 2, MaxFindings: 10,
		SenderCharset: map[string]string{"LATIN": "8859/1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := hl7.Parse(data)
		if err != nil {
			return
		}
		fs := v.Validate(m, "")
		groups := m.Count("RXA")
		for _, x := range fs {
			checkFinding(t, m, x, groups)
		}
		checkPoison(t, m, fs)

		for _, site := range []string{"", "LATIN"} {
			fs = small.Validate(m, site)
			if len(fs) > 11 {
				t.Fatalf("%d findings past a limit of 10", len(fs))
			}
			if m.NumSegments() > 10 && (len(fs) != 1 || fs[0].Rule != "segments-limit") {
				t.Fatalf("%d segments: findings %v, want segments-limit alone", m.NumSegments(), fs)
			}
			for _, x := range fs {
				checkFinding(t, m, x, groups)
			}
		}
	})
}

// checkPoison: a NUL byte inside a field never passes silently. Either a finding names the control
// character, or a limit rejected the message before the text pass.
func checkPoison(t *testing.T, m *hl7.Message, fs []ack.Finding) {
	t.Helper()
	off := -1
	data := m.Bytes()
	for i, tries := 0, 0; i < len(data) && tries < 16; i++ { // Locate costs a segment's length
		if data[i] == 0 {
			tries++
			if p, ok := m.Locate(i); ok && p.Field > 0 {
				off = i
				break
			}
		}
	}
	if off < 0 {
		return
	}
	for _, x := range fs {
		if x.Rule == "control-character" || x.Rule == "segments-limit" {
			return
		}
		if x.Rule == "findings-limit" {
			return
		}
	}
	t.Fatalf("a NUL at offset %d has no control-character finding", off)
}

func checkFinding(t *testing.T, m *hl7.Message, x ack.Finding, groups int) {
	t.Helper()
	if ruleByID(x.Rule) == nil {
		t.Fatalf("finding of unknown rule %q", x.Rule)
	}
	if x.Severity != ack.Error && x.Severity != ack.Warning && x.Severity != ack.Information {
		t.Fatalf("%s: severity %q", x.Rule, x.Severity)
	}
	if x.Group < 0 || x.Group > groups {
		t.Fatalf("%s: group %d of %d", x.Rule, x.Group, groups)
	}
	if len(x.Text) == 0 || len(x.Text) > maxText || !utf8.ValidString(x.Text) {
		t.Fatalf("%s: text %q", x.Rule, x.Text)
	}
	l := x.Location
	if l.Segment == "" {
		if l.Sequence != 0 || l.Field != 0 {
			t.Fatalf("%s: location without segment %+v", x.Rule, l)
		}
		return
	}
	s, ok := m.Find(l.Segment, l.Sequence)
	if !ok {
		t.Fatalf("%s: location %+v: no such segment", x.Rule, l)
	}
	if l.Field < 0 || l.Rep < 0 || l.Component < 0 || l.Sub < 0 || l.Field > 0 && l.Rep < 1 {
		t.Fatalf("%s: location %+v", x.Rule, l)
	}
	if def := segByName(l.Segment); l.Field > max(s.NumFields(), fieldsOf(def)) {
		t.Fatalf("%s: location %+v: field beyond the segment", x.Rule, l)
	}
}

func fieldsOf(def segRef) int {
	if def < 0 {
		return 0
	}
	return len(z22Segments[def].fields)
}

func TestCorpusFindingsAreWellFormed(t *testing.T) {
	v := testValidator(t)
	for _, data := range corpusMessages(t) {
		m := mustParse(t, data)
		for _, x := range v.Validate(m, "") {
			checkFinding(t, m, x, m.Count("RXA"))
		}
	}
}

// BenchmarkValidate validates each message of the corpus in turn: ns/op and allocs/op are per
// message. The messages are parsed once, outside the timing.
func BenchmarkValidate(b *testing.B) {
	v := testValidator(b)
	var msgs []*hl7.Message
	for _, data := range corpusMessages(b) {
		msgs = append(msgs, mustParse(b, data))
	}
	if len(msgs) == 0 {
		b.Skipf("shared corpus not present (%s): nothing to validate", corpusDir)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v.Validate(msgs[i%len(msgs)], "SITE1")
	}
}

// BenchmarkValidateClean validates a conformant message with no findings: the common case, which
// should not allocate.
func BenchmarkValidateClean(b *testing.B) {
	v := testValidator(b)
	m := mustParse(b, readFixture(b, "base.hl7"))
	b.ReportAllocs()
	for b.Loop() {
		v.Validate(m, "SITE1")
	}
}
