package hl7

import (
	"strings"
	"testing"
)

func TestBuilder(t *testing.T) {
	b := NewBuilder(DefaultDelimiters)
	b.Segment("MSH", Text("VAXGATE"), Text("MA0000"), Text("EHR"), Text("Clinic"), Text("20240115"), Value{},
		Comps("ACK", "V04", "ACK"), Text("ACK-1"), Text("P"), Text("2.5.1"), Value{}, Value{}, Text("NE"), Text("NE"),
		Value{}, Value{}, Value{}, Value{}, Comps("Z23", "CDCPHINVS"))
	b.Segment("MSA", Text("AE"), Text("CTL|1"))
	b.Segment("ERR", Value{}, CompValues(Text("PID"), Text("1"), Text("5"), Value{}, Value{}), Comps("101", "Required field missing", "HL70357"),
		Text("E"), Value{}, Value{}, Value{}, Text("Name with | ^ ~ \\ & and\rCR\nLF"), Value{}, Value{})
	b.Segment("ZXX", Reps(Text("a"), Comps("b", "c&d", ""), RawValue(`e\T\f`), Null()), CompValues(Text("x"), Subs("s1", "s^2", "")))
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	want := `MSH|^~\&|VAXGATE|MA0000|EHR|Clinic|20240115||ACK^V04^ACK|ACK-1|P|2.5.1|||NE|NE|||||Z23^CDCPHINVS` + "\r" +
		`MSA|AE|CTL\F\1` + "\r" +
		`ERR||PID^1^5|101^Required field missing^HL70357|E||||Name with \F\ \S\ \R\ \E\ \T\ and\X0D\CR\.br\LF` + "\r" +
		`ZXX|a~b^c\T\d~e\T\f~""|x^s1&s\S\2` + "\r"
	if got := string(b.Bytes()); got != want {
		t.Fatalf("built\n%q\nwant\n%q", got, want)
	}
	m := mustParse(t, b.Bytes())
	checks := map[string]string{
		"MSH-9-3":    "ACK",
		"MSH-21-2":   "CDCPHINVS",
		"MSA-2":      "CTL|1",
		"ERR-2-3":    "5",
		"ERR-3-2":    "Required field missing",
		"ERR-8":      "Name with | ^ ~ \\ & and\rCR\nLF",
		"ZXX-1(2)-2": "c&d",
		"ZXX-1(3)":   "e&f",
		"ZXX-2-2-2":  "s^2",
	}
	for path, want := range checks {
		if got := m.Get(path); got != want {
			t.Errorf("Get(%q) = %q, want %q", path, got, want)
		}
	}
	if zxx, _ := m.Find("ZXX", 1); !zxx.Field(1).Rep(4).IsNull() {
		t.Errorf("null lost")
	}
	b.Reset()
	if b.Len() != 0 {
		t.Errorf("Reset")
	}
}

func TestBuilderDelimitersAndErrors(t *testing.T) {
	alt := Delimiters{'$', '%', '*', '!', '@'}
	b := NewBuilder(alt)
	b.Segment("MSH", Text("A$B"), Comps("x", "y%z"))
	b.Segment("pid", Text("ignored"))
	if b.Err() == nil {
		t.Errorf("invalid segment name not reported")
	}
	if got, want := b.String(), "MSH$%*!@$A!F!B$x%y!S!z\r"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if b.Delimiters() != alt {
		t.Errorf("Delimiters")
	}
	bad := NewBuilder(Delimiters{'|', '|', '~', '\\', '&'})
	if bad.Err() == nil || bad.Delimiters() != DefaultDelimiters {
		t.Errorf("invalid delimiters should fall back to the default with an error")
	}
	if z := NewBuilder(Delimiters{}); z.Err() != nil || z.Delimiters() != DefaultDelimiters {
		t.Errorf("zero delimiters mean the default")
	}
	// Trailing empty fields and components are not written.
	b = NewBuilder(DefaultDelimiters)
	b.Segment("PID", Text("1"), Value{}, Comps("", ""), Text(""), CompValues(Value{}, Text("")))
	if got := b.String(); got != "PID|1\r" {
		t.Errorf("trailing empties: %q", got)
	}
}

// TestBuilderRoundTrip builds values with every special character under
// several delimiter sets and reads them back.
func TestBuilderRoundTrip(t *testing.T) {
	values := []string{"", "plain", "a|b", "c^d", "e~f", `g\h`, "i&j", "k\rl", "m\nn", "o\r\np", `\F\`, "Müller", "O'Brien", "#$%*!@.", "\x0b\x1c"}
	for _, d := range []Delimiters{DefaultDelimiters, {'$', '%', '*', '!', '@'}, {'|', '.', '~', '\\', '&'}, {'#', '^', '~', '\\', '&'}} {
		b := NewBuilder(d)
		b.Segment("MSH", Text("APP"))
		var fields []Value
		for _, v := range values {
			fields = append(fields, Comps(v, v+"x"))
		}
		b.Segment("ZZZ", fields...)
		m := mustParse(t, b.Bytes())
		z, ok := m.Find("ZZZ", 1)
		if !ok {
			t.Fatalf("%v: no ZZZ in %q", d, b.Bytes())
		}
		for i, v := range values {
			f := z.Field(i + 1)
			if got := f.Component(1).String(); got != v {
				t.Errorf("%v: field %d comp 1 = %q, want %q", d, i+1, got, v)
			}
			if got := f.Component(2).String(); got != v+"x" {
				t.Errorf("%v: field %d comp 2 = %q, want %q", d, i+1, got, v+"x")
			}
		}
		if strings.ContainsAny(string(b.Bytes()), "\n\x0b\x1c") {
			t.Errorf("%v: raw control characters in output", d)
		}
	}
}

func TestBuilderNesting(t *testing.T) {
	b := NewBuilder(DefaultDelimiters)
	b.Segment("ZNS",
		CompValues(Comps("a", "b"), CompValues(Text("c"), Text("d&e")), Reps(Text("r1"), Text("r2")), RawValue("x&y")),
		CompValues(CompValues(Text("deep"), CompValues(Text("deeper"))), Reps()),
		Reps(Comps("p", "q"), Value{}, Null(), Subs("s", "t")))
	want := `ZNS|a&b^c&d\T\e^r1^x&y|deep&deeper|p^q~~""~s&t` + "\r"
	if got := b.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	m := mustParse(t, append([]byte("MSH|^~\\&\r"), b.Bytes()...))
	if got := m.Get("ZNS-1-2-2"); got != "d&e" {
		t.Errorf("ZNS-1-2-2 = %q", got)
	}
	if got := m.Get("ZNS-3(4)-1-2"); got != "t" {
		t.Errorf("ZNS-3(4)-1-2 = %q", got)
	}
}

func TestZeroMessage(t *testing.T) {
	var m Message
	if m.NumSegments() != 0 || m.Get("MSH-9") != "" || m.Charset() != "" || m.Decoder().Name() != "UTF-8" ||
		m.Count("MSH") != 0 || m.Count("MS") != 0 || m.Bytes() != nil || m.CharsetError() != nil {
		t.Errorf("zero Message not empty")
	}
	if _, ok := m.Find("MSH", 1); ok {
		t.Errorf("Find in zero Message")
	}
	if _, ok := m.Find("MS", 1); ok {
		t.Errorf("Find with a short name")
	}
	if got := DefaultDelimiters.EncodingCharacters(); got != `^~\&` {
		t.Errorf("EncodingCharacters = %q", got)
	}
	if got := DefaultDelimiters.String(); got != `|^~\&` {
		t.Errorf("String = %q", got)
	}
	m2 := mustParse(t, msg(basicMSH, `PID|1||a\T\b&c\S\d~e`))
	pid, _ := m2.Find("PID", 1)
	f := pid.Field(3)
	var out []byte
	out = f.AppendDecoded(out)
	out = f.Rep(2).AppendDecoded(append(out, '/'))
	out = f.Component(1).Sub(2).AppendDecoded(append(out, '/'))
	if string(out) != `a&b&c^d~e/e/c^d` {
		t.Errorf("AppendDecoded chain = %q", out)
	}
	if m2.Segment(0).Field(2).String() != `^~\&` || string(m2.Segment(0).Field(2).AppendDecoded(nil)) != `^~\&` {
		t.Errorf("MSH-2 literal decode")
	}
}
