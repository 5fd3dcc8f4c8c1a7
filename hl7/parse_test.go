package hl7

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// msg joins segments with CR, the wire terminator.
func msg(segs ...string) []byte { return []byte(strings.Join(segs, "\r") + "\r") }

func mustParse(t testing.TB, data []byte) *Message {
	t.Helper()
	m, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v\ninput: %q", err, data)
	}
	return m
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const basicMSH = `MSH|^~\&|EHR|Clinic|IIS|State|20240115||VXU^V04^VXU_V04|CTL1|P|2.5.1`

func TestParseTerminators(t *testing.T) {
	segs := []string{basicMSH, "PID|1||123^^^A^MR||Doe^John", "RXA|0|1|20240115||08^HepB^CVX"}
	tests := []struct {
		name string
		data string
	}{
		{"CR", strings.Join(segs, "\r") + "\r"},
		{"LF", strings.Join(segs, "\n") + "\n"},
		{"CRLF", strings.Join(segs, "\r\n") + "\r\n"},
		{"mixed", segs[0] + "\r\n" + segs[1] + "\n" + segs[2] + "\r"},
		{"no final terminator", strings.Join(segs, "\r")},
		{"blank lines", "\r\n\n" + segs[0] + "\r\r\n\n" + segs[1] + "\n  \t\n" + segs[2] + "\r\n\r\n"},
		{"BOM", "\xEF\xBB\xBF" + strings.Join(segs, "\n")},
		{"trailing blanks", strings.Join(segs, "\r") + "\r  \r\t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, []byte(tt.data))
			if got := m.NumSegments(); got != 3 {
				t.Fatalf("NumSegments = %d, want 3", got)
			}
			for i, want := range []string{"MSH", "PID", "RXA"} {
				s := m.Segment(i)
				if s.Name() != want || !s.Is(want) || s.Index() != i {
					t.Errorf("segment %d = %q (index %d), want %q", i, s.Name(), s.Index(), want)
				}
				if got := string(s.Raw()); got != segs[i] {
					t.Errorf("segment %d Raw = %q, want %q", i, got, segs[i])
				}
				if !bytes.Equal(m.Bytes()[s.Offset():s.Offset()+len(s.Raw())], s.Raw()) {
					t.Errorf("segment %d Offset %d does not locate Raw", i, s.Offset())
				}
			}
			if got := m.Get("PID-5-2"); got != "John" {
				t.Errorf("PID-5-2 = %q", got)
			}
			if got := m.Get("RXA-5"); got != "08" {
				t.Errorf("RXA-5 = %q", got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		err     error
		seg     string
		segIdx  int
		field   int
		offset  int
		nSegs   int // segments still indexed after the error
		control string
	}{
		{name: "empty", data: "", err: ErrEmpty},
		{name: "blank", data: "\r\n\r\n  \n", err: ErrEmpty, offset: 7},
		{name: "no MSH", data: "PID|1||x\r", err: ErrNoMSH, seg: "PID"},
		{name: "FHS first", data: "FHS|^~\\&\rMSH|^~\\&\r", err: ErrNoMSH, seg: "FHS"},
		{name: "MSH only", data: "MSH", err: ErrBadDelimiters, seg: "MSH", field: 1, offset: 3},
		{name: "MSH CR", data: "MSH\r", err: ErrBadDelimiters, seg: "MSH", field: 1, offset: 3},
		{name: "MSH|", data: "MSH|", err: ErrBadDelimiters, seg: "MSH", field: 2, offset: 4},
		{name: "MSH|^~", data: "MSH|^~", err: ErrBadDelimiters, seg: "MSH", field: 2, offset: 4},
		{name: "MSH|^~\\", data: "MSH|^~\\|x", err: ErrBadDelimiters, seg: "MSH", field: 2, offset: 4},
		{name: "six encoding chars", data: "MSH|^~\\&#$|x", err: ErrBadDelimiters, seg: "MSH", field: 2, offset: 4},
		{name: "repeated delimiter", data: "MSH|^^\\&|x", err: ErrBadDelimiters, seg: "MSH", field: 2, offset: 4},
		{name: "alnum delimiter", data: "MSH|^~\\A|x", err: ErrBadDelimiters, seg: "MSH", field: 2, offset: 4},
		{name: "space delimiter", data: "MSH ^~\\&", err: ErrBadDelimiters, seg: "MSH", field: 1, offset: 3},
		{name: "field sep in encoding", data: "MSH|^~|&|x", err: ErrBadDelimiters, seg: "MSH", field: 2, offset: 4},
		{name: "bad truncation char", data: "MSH|^~\\&^|x", err: ErrBadDelimiters, seg: "MSH", field: 2, offset: 8},
		{name: "lower-case segment", data: basicMSH + "\rpid|1\r", err: ErrSegmentName, seg: "pid", segIdx: 1, offset: len(basicMSH) + 1, nSegs: 1, control: "CTL1"},
		{name: "long segment name", data: basicMSH + "\rPIDX|1\r", err: ErrSegmentName, seg: "PID", segIdx: 1, offset: len(basicMSH) + 1, nSegs: 1, control: "CTL1"},
		{name: "short segment", data: basicMSH + "\rPI", err: ErrSegmentName, seg: "PI", segIdx: 1, offset: len(basicMSH) + 1, nSegs: 1, control: "CTL1"},
		{name: "continuation line", data: basicMSH + "\rPID|1\rNTE|1||first line\nsecond line\r", err: ErrSegmentName, seg: "sec", segIdx: 3, offset: len(basicMSH) + 25, nSegs: 3, control: "CTL1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.data))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err %T is not a *ParseError", err)
			}
			if pe.Segment != tt.seg || pe.SegmentIndex != tt.segIdx || pe.Field != tt.field || pe.Offset != tt.offset {
				t.Errorf("ParseError = {%q, %d, field %d, offset %d}, want {%q, %d, field %d, offset %d}",
					pe.Segment, pe.SegmentIndex, pe.Field, pe.Offset, tt.seg, tt.segIdx, tt.field, tt.offset)
			}
			if pe.Error() == "" || !strings.HasPrefix(pe.Error(), "hl7: ") {
				t.Errorf("Error() = %q", pe.Error())
			}
			if m.NumSegments() != tt.nSegs {
				t.Errorf("NumSegments after error = %d, want %d", m.NumSegments(), tt.nSegs)
			}
			if got := m.Get("MSH-10"); got != tt.control {
				t.Errorf("MSH-10 after error = %q, want %q", got, tt.control)
			}
		})
	}
}

func TestAlternativeDelimiters(t *testing.T) {
	m := mustParse(t, readFixture(t, "vxu_altdelim.hl7"))
	want := Delimiters{'$', '%', '*', '!', '@'}
	if m.Delimiters() != want {
		t.Fatalf("Delimiters = %v, want %v", m.Delimiters(), want)
	}
	checks := map[string]string{
		"MSH-1":       "$",
		"MSH-2":       "%*!@",
		"MSH-3":       "ALTEHR",
		"MSH-9-1":     "VXU",
		"MSH-9-2":     "V04",
		"MSH-10":      "CTL-ALT-1",
		"PID-3-1":     "A-77",
		"PID-3-4-2":   "1.2.3",
		"PID-3(2)-1":  "B-88",
		"PID-3(2)-5":  "SS",
		"PID-5-2":     "Jane Q$Bar",
		"PID-7":       "20200506",
		"RXA-9-2":     "New%Record",
		"RXA-5-2":     "MMR",
		"PID-3(3)-1":  "",
		"PID-99":      "",
		"RXA-5-2-2":   "",
		"MSH-9-3":     "VXU_V04",
		"MSH-12":      "2.5.1",
		"PID-3(2)-99": "",
	}
	for path, want := range checks {
		if got := m.Get(path); got != want {
			t.Errorf("Get(%q) = %q, want %q", path, got, want)
		}
	}
	if n := m.Segment(0).Field(2).NumComponents(); n != 1 {
		t.Errorf("MSH-2 NumComponents = %d, want 1 (literal)", n)
	}
}

func TestTruncationCharacter(t *testing.T) {
	m := mustParse(t, msg(`MSH|^~\&#|EHR|Fac|||||ACK^A01|X|P|2.7`, "MSA|AA|X"))
	if m.Delimiters() != DefaultDelimiters {
		t.Errorf("Delimiters = %v", m.Delimiters())
	}
	if got := m.Get("MSH-2"); got != `^~\&#` {
		t.Errorf("MSH-2 = %q", got)
	}
	if got := m.Get("MSH-3"); got != "EHR" {
		t.Errorf("MSH-3 = %q", got)
	}
}

func TestFullFixture(t *testing.T) {
	m := mustParse(t, readFixture(t, "vxu_full.hl7"))
	if m.NumSegments() != 14 {
		t.Fatalf("NumSegments = %d", m.NumSegments())
	}
	checks := []struct{ path, want string }{
		{"MSH-4-2", "2.16.840.1.113883.3.72.5.40.1"},
		{"MSH-7", "20240115103000-0500"},
		{"MSH-21", "Z22"},
		{"MSH-21-2", "CDCPHINVS"},
		{"PID-3-1", "MR-1001"},
		{"PID-3-4", "Clinic A"},
		{"PID-3-4-2", "2.16.840.1.113883.3.72.5.40.1"},
		{"PID-3-4-3", "ISO"},
		{"PID-3(2)-1", "SSN-555"},
		{"PID-5-1", "Müller"},
		{"PID-5-2", "Jürgen"},
		{"PID-5(2)-1", "O&Brien"},
		{"PID-5(2)-2", "Seán"},
		{"PID-5(2)-7", "A"},
		{"PID-11-1", "12 Elm St^Apt 4"},
		{"PID-13-6", "413"},
		{"PD1-12", "N"},
		{"RXA-5-1", "08"},
		{"RXA-5-2", "Hep B, adolescent or pediatric"},
		{"RXA-15", "LOT-42a"},
		{"RXA-17-1", "MSD"},
		{"RXA-21", "A"},
		{"OBX(2)-5-1", "45"},
		{"OBX(4)-5", "20240115"},
		{"OBX(5)-5", ""},
		{"NTE-3", "Line one\nLine two A and 50\\% of \\\\"},
		{"NTE-4", ""},
		{"ZSA-2-2", "extension"},
		{"ORC-12-9", "NIST-PI-1"},
		{"RXA.5.2", "Hep B, adolescent or pediatric"},
	}
	for _, c := range checks {
		if got := m.Get(c.path); got != c.want {
			t.Errorf("Get(%q) = %q, want %q", c.path, got, c.want)
		}
	}

	pid, ok := m.Find("PID", 1)
	if !ok || pid.Index() != 2 {
		t.Fatalf("Find PID = %v %v", pid.Index(), ok)
	}
	name := pid.Field(5)
	if name.NumReps() != 2 || name.Rep(2).NumComponents() != 7 {
		t.Errorf("PID-5 reps %d, rep 2 comps %d", name.NumReps(), name.Rep(2).NumComponents())
	}
	if got := string(name.Rep(2).Component(1).Raw()); got != `O\T\Brien` {
		t.Errorf("raw = %q", got)
	}
	if got := name.Rep(1).String(); got != "Müller^Jürgen^Karl^^^^L" {
		t.Errorf("Rep(1).String = %q", got)
	}
	if got := pid.Field(3).Component(4).NumSubs(); got != 3 {
		t.Errorf("PID-3-4 NumSubs = %d", got)
	}
	if got := pid.NumFields(); got != 22 {
		t.Errorf("PID NumFields = %d", got)
	}
	if got := m.Segment(0).NumFields(); got != 21 {
		t.Errorf("MSH NumFields = %d", got)
	}
	nte, _ := m.Find("NTE", 1)
	if f := nte.Field(4); !f.IsNull() || f.IsEmpty() || f.String() != "" || string(f.Raw()) != `""` {
		t.Errorf("NTE-4 null: IsNull %v IsEmpty %v String %q", f.IsNull(), f.IsEmpty(), f.String())
	}
	if f := nte.Field(5); f.IsNull() || !f.IsEmpty() {
		t.Errorf("NTE-5 should be empty, not null")
	}
	if got := m.Count("OBX"); got != 4 {
		t.Errorf("Count OBX = %d", got)
	}
	if _, ok := m.Find("OBX", 5); ok {
		t.Errorf("Find OBX 5 should fail")
	}
	if s, ok := m.Find("OBX", 3); !ok || s.Field(1).String() != "3" {
		t.Errorf("Find OBX 3")
	}
	if zsa, ok := m.Find("ZSA", 1); !ok || zsa.Name() != "ZSA" {
		t.Errorf("ZSA name")
	}
	if m.Charset() != "" || m.CharsetError() != nil || m.Decoder().Name() != "UTF-8" {
		t.Errorf("charset %q %v", m.Charset(), m.CharsetError())
	}
}

func TestMSHFieldNumbering(t *testing.T) {
	m := mustParse(t, msg(basicMSH))
	msh := m.Segment(0)
	tests := []struct {
		n    int
		want string
	}{
		{1, "|"}, {2, `^~\&`}, {3, "EHR"}, {4, "Clinic"}, {7, "20240115"}, {8, ""}, {9, "VXU^V04^VXU_V04"},
		{10, "CTL1"}, {11, "P"}, {12, "2.5.1"}, {13, ""}, {0, ""}, {-1, ""},
	}
	for _, tt := range tests {
		if got := msh.Field(tt.n).String(); got != tt.want {
			t.Errorf("MSH-%d = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := msh.NumFields(); got != 12 {
		t.Errorf("NumFields = %d", got)
	}
	if got := msh.Field(2).Component(2).String(); got != "" {
		t.Errorf("MSH-2 is literal, component 2 = %q", got)
	}
	if got := msh.Field(1).NumReps(); got != 1 {
		t.Errorf("MSH-1 reps = %d", got)
	}
	// A minimal MSH: only the delimiters.
	m = mustParse(t, []byte(`MSH|^~\&`))
	if got := m.Segment(0).NumFields(); got != 2 {
		t.Errorf("minimal NumFields = %d", got)
	}
	if got := m.Get("MSH-2"); got != `^~\&` {
		t.Errorf("minimal MSH-2 = %q", got)
	}
}

func TestStructure(t *testing.T) {
	m := mustParse(t, msg(basicMSH, `XYZ|a~b~~c|x^y&z&&w^^|""^""&q|||`, "ABC", "DEF|"))
	s, _ := m.Find("XYZ", 1)
	f1 := s.Field(1)
	if f1.NumReps() != 4 || f1.Rep(3).IsEmpty() != true || f1.Rep(4).String() != "c" || !f1.Rep(5).IsEmpty() {
		t.Errorf("reps: %d", f1.NumReps())
	}
	f2 := s.Field(2)
	if f2.NumComponents() != 4 || f2.Component(2).NumSubs() != 4 || f2.Component(2).Sub(3).String() != "" ||
		f2.Component(2).Sub(4).String() != "w" || f2.Component(4).NumSubs() != 0 {
		t.Errorf("components: %d subs %d", f2.NumComponents(), f2.Component(2).NumSubs())
	}
	f3 := s.Field(3)
	if !f3.Component(1).IsNull() || !f3.Component(2).Sub(1).IsNull() || f3.Component(2).Sub(2).String() != "q" || f3.IsNull() {
		t.Errorf("nulls")
	}
	if got := s.NumFields(); got != 3 {
		t.Errorf("NumFields with trailing empties = %d, want 3", got)
	}
	if abc, _ := m.Find("ABC", 1); abc.NumFields() != 0 || !abc.Field(1).IsEmpty() || string(abc.Raw()) != "ABC" {
		t.Errorf("ABC")
	}
	if def, _ := m.Find("DEF", 1); def.NumFields() != 0 {
		t.Errorf("DEF NumFields = %d", def.NumFields())
	}
	// Out of range everywhere, and zero values: empty, never a panic.
	var zero Segment
	if zero.Name() != "" || zero.Index() != -1 || zero.Offset() != -1 || zero.NumFields() != 0 || zero.Raw() != nil || zero.Is("MSH") {
		t.Errorf("zero Segment not empty")
	}
	if !zero.Field(1).Rep(2).Component(3).Sub(4).IsEmpty() || zero.Field(1).String() != "" || zero.Field(1).Offset() != -1 {
		t.Errorf("zero Field not empty")
	}
	if !m.Segment(99).Field(1).IsEmpty() || !m.Segment(-1).Field(1).IsEmpty() {
		t.Errorf("out of range segment")
	}
	if !s.Field(1).Rep(0).IsEmpty() || !s.Field(2).Component(0).IsEmpty() || !s.Field(2).Component(2).Sub(-1).IsEmpty() {
		t.Errorf("index 0 not empty")
	}
	if (Field{}).NumReps() != 0 || (Rep{}).NumComponents() != 0 || (Component{}).NumSubs() != 0 {
		t.Errorf("zero counts")
	}
	// Offsets locate each value.
	sub := f2.Component(2).Sub(2)
	if off := sub.Offset(); string(m.Bytes()[off:off+len(sub.Raw())]) != "z" {
		t.Errorf("Sub offset %d", off)
	}
}

func TestGetPaths(t *testing.T) {
	m := mustParse(t, msg(basicMSH, "PID|1||A^^^X~B^^^Y&Z||Doe^John", "OBX|1|ST|c||one", "OBX|2|ST|c||two"))
	tests := map[string]string{
		"PID-3(2)-4-2": "Z",
		"PID-3(2)-4":   "Y",
		"PID-3-1":      "A",
		"PID-5":        "Doe",
		"OBX(2)-5":     "two",
		"OBX(1)-5":     "one",
		"OBX-5":        "one",
		"OBX(3)-5":     "",
		"MSH-9":        "VXU",
		"MSH-9-2":      "V04",
		"MSH-1":        "|",
		"PID":          "",
		"PID-":         "",
		"PID-0":        "",
		"PID-5-0":      "",
		"PID-5-1-1-1":  "",
		"PID-5x":       "",
		"PID(0)-5":     "",
		"PID(1-5":      "",
		"PID-3(2":      "",
		"PID-3()":      "",
		"pid-5":        "",
		"":             "",
		"PID-9999999":  "",
		"ZZZ-1":        "",
	}
	for path, want := range tests {
		if got := m.Get(path); got != want {
			t.Errorf("Get(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestMessageReuse(t *testing.T) {
	var m Message
	a := msg(basicMSH, "PID|1||A", "ZAA|1", "ZAB|2")
	b := []byte("MSH$%*!@$X\nZAB$9\n")
	for range 3 {
		if err := m.Parse(a); err != nil {
			t.Fatal(err)
		}
		if m.NumSegments() != 4 || m.Get("PID-3") != "A" || m.Segment(2).Name() != "ZAA" {
			t.Fatalf("first message wrong")
		}
		if err := m.Parse(b); err != nil {
			t.Fatal(err)
		}
		if m.NumSegments() != 2 || m.Get("ZAB-1") != "9" || m.Delimiters().Field != '$' || m.Get("PID-3") != "" {
			t.Fatalf("second message wrong")
		}
		if err := m.Parse([]byte("garbage")); err == nil || m.NumSegments() != 0 || m.Delimiters() != DefaultDelimiters {
			t.Fatalf("failed parse should leave m empty")
		}
	}
}

func TestManyUnknownSegmentNames(t *testing.T) {
	// More distinct Z segments than the intern table holds: names stay right.
	var segs []string
	segs = append(segs, basicMSH)
	for i := range 100 {
		segs = append(segs, "Z"+string(rune('A'+i/10))+string(rune('0'+i%10))+"|x")
	}
	m := mustParse(t, msg(segs...))
	for i := 1; i < m.NumSegments(); i++ {
		if got, want := m.Segment(i).Name(), segs[i][:3]; got != want {
			t.Fatalf("segment %d name %q, want %q", i, got, want)
		}
	}
}

func TestInvalidUTF8IsolatedToItsField(t *testing.T) {
	m := mustParse(t, msg(basicMSH, "PID|1||ID\xff1^^^A\xc3^MR||M\xfcller^J\xc3\xbcrgen|\xe2\x82|20200101|F"))
	tests := map[string]string{
		"PID-3-1": "ID\uFFFD1",
		"PID-3-4": "A\uFFFD",
		"PID-3-5": "MR",
		"PID-5-1": "M\uFFFDller",
		"PID-5-2": "Jürgen",
		"PID-6":   "\uFFFD\uFFFD",
		"PID-7":   "20200101",
		"PID-8":   "F",
	}
	for path, want := range tests {
		if got := m.Get(path); got != want {
			t.Errorf("Get(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestCutInEscape checks values cut inside an escape sequence: the partial
// sequence is kept literally.
func TestCutInEscape(t *testing.T) {
	for _, tail := range []string{`O\T`, `O\`, `O\X4`, `O\X41`, `\.b`} {
		m := mustParse(t, []byte(basicMSH+"\rPID|1||"+tail))
		if got := m.Get("PID-3"); got != tail {
			t.Errorf("PID-3 of %q = %q", tail, got)
		}
	}
}
