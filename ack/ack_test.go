package ack

import (
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

var fixedNow = func() time.Time { return time.Date(2024, 3, 10, 10, 15, 0, 0, time.FixedZone("EST", -5*3600)) }

func newTestBuilder() *Builder {
	b := NewBuilder([]string{"vaxgate"}, []string{"STATEIIS"}, DefaultPolicy)
	b.Now = fixedNow
	return b
}

func mustParse(t *testing.T, b []byte) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse(b)
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%q", err, b)
	}
	return m
}

const vxu = "MSH|^~\\&|EHR|FAC-A^1.2.3^ISO|IIS|STATE|20240310||VXU^V04^VXU_V04|CTRL-9|T|2.5.1|||ER|AL|||||Z22^CDCPHINVS\rPID|1||123^^^A^MR\r"

func TestBuildAccepted(t *testing.T) {
	m := mustParse(t, []byte(vxu))
	b := newTestBuilder()
	out := b.Build(HeaderOf(m), AA, nil)
	if strings.Contains(string(out), "\n") || !strings.HasSuffix(string(out), "\r") {
		t.Errorf("segments must end in CR only: %q", out)
	}
	a := mustParse(t, out)
	want := map[string]string{
		"MSH-3": "IIS", "MSH-4": "STATE", "MSH-5": "EHR", "MSH-6": "FAC-A", "MSH-6-2": "1.2.3", "MSH-6-3": "ISO",
		"MSH-7": "20240310101500-0500", "MSH-9": "ACK", "MSH-9-2": "V04", "MSH-9-3": "ACK", "MSH-11": "T",
		"MSH-12": "2.5.1", "MSH-15": "NE", "MSH-16": "NE", "MSH-21": "Z23", "MSH-21-2": "CDCPHINVS",
		"MSA-1": "AA", "MSA-2": "CTRL-9", "ERR-3": "0", "ERR-3-2": "Message Accepted", "ERR-3-3": "HL70357", "ERR-4": "I",
	}
	for path, v := range want {
		if got := a.Get(path); got != v {
			t.Errorf("%s = %q, want %q", path, got, v)
		}
	}
	if a.Get("MSH-10") == "" {
		t.Error("ACK has no control ID")
	}
	again := mustParse(t, b.Build(HeaderOf(m), AA, nil))
	if again.Get("MSH-10") == a.Get("MSH-10") {
		t.Error("two ACKs share a control ID")
	}

	b.Policy.AcceptedERR = false
	if a := mustParse(t, b.Build(HeaderOf(m), AA, nil)); a.Count("ERR") != 0 {
		t.Error("AcceptedERR off still adds an ERR")
	}
}

func TestBuildErrorsFirstAndEscaped(t *testing.T) {
	m := mustParse(t, []byte(vxu))
	findings := []Finding{
		{Rule: "w", Location: Location{Segment: "PID", Sequence: 1, Field: 11, Component: 5}, Code: CodeDataType, Severity: Warning, App: AppInvalidValue, Text: "zip | looks ^ wrong & odd ~ \\ here"},
		{Rule: "i", Location: Location{Segment: "PD1", Sequence: 1, Field: 12}, Code: CodeAccepted, Severity: Information, Text: "noted"},
		{Rule: "e", Location: Location{Segment: "RXA", Sequence: 2, Field: 5, Rep: 1, Component: 1}, Code: CodeTableValueNotFound, Severity: Error, App: AppTableValueNotFound, Text: "CVX 999999 is not a CDC vaccine code"},
	}
	out := newTestBuilder().Build(HeaderOf(m), DefaultPolicy.Code(findings), findings)
	a := mustParse(t, out)
	if a.Get("MSA-1") != AE {
		t.Fatalf("MSA-1 = %q, want AE", a.Get("MSA-1"))
	}
	if a.Count("ERR") != 3 {
		t.Fatalf("%d ERR segments, want 3", a.Count("ERR"))
	}
	e1, _ := a.Find("ERR", 1)
	e2, _ := a.Find("ERR", 2)
	e3, _ := a.Find("ERR", 3)
	if e1.Field(4).String() != "E" || e2.Field(4).String() != "W" || e3.Field(4).String() != "I" {
		t.Errorf("severity order %s %s %s, want E W I", e1.Field(4).String(), e2.Field(4).String(), e3.Field(4).String())
	}
	if got := e1.Field(2).Raw(); string(got) != "RXA^2^5^1^1" {
		t.Errorf("ERR-2 = %q, want RXA^2^5^1^1", got)
	}
	if got := e1.Field(3).Raw(); string(got) != "103^Table value not found^HL70357" {
		t.Errorf("ERR-3 = %q", got)
	}
	if got := e1.Field(5).Raw(); string(got) != "5^Table value not found^HL70533" {
		t.Errorf("ERR-5 = %q", got)
	}
	if got := e2.Field(8).String(); got != findings[0].Text {
		t.Errorf("ERR-8 round trip = %q, want %q", got, findings[0].Text)
	}
	if got := e2.Field(2).Raw(); string(got) != "PID^1^11^1^5" {
		t.Errorf("ERR-2 = %q, want PID^1^11^1^5", got)
	}
}

func TestPolicyCode(t *testing.T) {
	w := []Finding{{Severity: Warning}}
	i := []Finding{{Severity: Information}}
	e := []Finding{{Severity: Information}, {Severity: Error}}
	cases := []struct {
		p    Policy
		f    []Finding
		want string
	}{
		{DefaultPolicy, nil, AA},
		{DefaultPolicy, i, AA},
		{DefaultPolicy, w, AE},
		{DefaultPolicy, e, AE},
		{Policy{WarningsAE: false}, w, AA},
		{Policy{WarningsAE: false}, e, AE},
	}
	for _, c := range cases {
		if got := c.p.Code(c.f); got != c.want {
			t.Errorf("%+v %v: %s, want %s", c.p, c.f, got, c.want)
		}
	}
}

func TestAlternativeDelimitersAndUTF8(t *testing.T) {
	msg := "MSH$%*!@$EHR$Kl%C3%BCnik$IIS$$20240310$$VXU%V04$C-1$P$2.5.1\r"
	msg = strings.Replace(msg, "Kl%C3%BCnik", "Klünik", 1)
	m := mustParse(t, []byte(msg))
	out := newTestBuilder().Build(HeaderOf(m), AA, nil)
	// Z23: an ACK uses the standard delimiters, whatever the sender used.
	if !strings.HasPrefix(string(out), "MSH|^~\\&|") {
		t.Fatalf("ACK does not use |^~\\&: %q", out)
	}
	a := mustParse(t, out)
	if a.Get("MSH-6") != "Klünik" || a.Get("MSA-2") != "C-1" {
		t.Errorf("MSH-6 %q MSA-2 %q", a.Get("MSH-6"), a.Get("MSA-2"))
	}
	if a.Get("MSH-18") != "UNICODE UTF-8" {
		t.Errorf("MSH-18 = %q, want UNICODE UTF-8 for a non-ASCII ACK", a.Get("MSH-18"))
	}
	if a.Get("MSH-3") != "IIS" || a.Get("MSH-4") != "STATEIIS" {
		t.Errorf("empty MSH-6 should fall back to the configured facility: %q %q", a.Get("MSH-3"), a.Get("MSH-4"))
	}
}

func TestRecoverHeader(t *testing.T) {
	cases := []struct {
		name, raw, control, facility string
	}{
		{"damaged later segment", "MSH|^~\\&|EHR|FAC-A|||2024||VXU^V04|CTRL-1|P|2.5.1\r\x00\x01garbage", "CTRL-1", "FAC-A"},
		{"escaped control id", "MSH|^~\\&|EHR|FAC-A|||2024||VXU^V04|A\\F\\B|P|2.5.1", "A|B", "FAC-A"},
		{"junk before MSH", "\xff\xfejunkMSH|^~\\&|EHR|FAC^X|||2024||VXU^V04|C2|P", "C2", "FAC"},
		{"bad encoding characters", "MSH|^^^^|EHR|FAC-B|||2024||VXU^V04|C3|P", "C3", "FAC-B"},
		{"no MSH", "hello", "", ""},
		{"truncated", "MSH|", "", ""},
		{"empty", "", "", ""},
	}
	b := newTestBuilder()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := RecoverHeader([]byte(c.raw))
			if h.ControlID != c.control {
				t.Errorf("control ID %q, want %q", h.ControlID, c.control)
			}
			fac := ""
			if len(h.SendingFacility) > 0 {
				fac = h.SendingFacility[0]
			}
			if fac != c.facility {
				t.Errorf("facility %q, want %q", fac, c.facility)
			}
			a := mustParse(t, b.Reject(h, Finding{Code: CodeSegmentSequence, Severity: Error, Text: "unreadable"}))
			if a.Get("MSA-1") != AR || a.Get("MSA-2") != c.control {
				t.Errorf("reject MSA %q %q", a.Get("MSA-1"), a.Get("MSA-2"))
			}
		})
	}
}

func FuzzRecoverHeader(f *testing.F) {
	f.Add([]byte(vxu))
	f.Add([]byte("MSH|^~\\&|EHR|FAC-A|||2024||VXU^V04|A\\F\\B|P|2.5.1"))
	f.Add([]byte("MSH$%*!@$EHR$K$IIS$$2024$$VXU%V04$C-1$P$2.5.1\r"))
	f.Add([]byte("MSH|"))
	b := newTestBuilder()
	f.Fuzz(func(t *testing.T, raw []byte) {
		h := RecoverHeader(raw)
		out := b.Reject(h, Finding{Code: CodeSegmentSequence, Severity: Error, Text: "unreadable"})
		a, err := hl7.Parse(out)
		if err != nil {
			t.Fatalf("reject ACK does not parse: %v\n%q", err, out)
		}
		if a.Get("MSA-1") != AR {
			t.Fatalf("MSA-1 = %q", a.Get("MSA-1"))
		}
		if a.Get("MSA-2") != h.ControlID {
			t.Fatalf("MSA-2 = %q, want %q", a.Get("MSA-2"), h.ControlID)
		}
	})
}

func mustFind(t *testing.T, m *hl7.Message, name string) hl7.Segment {
	t.Helper()
	s, ok := m.Find(name, 1)
	if !ok {
		t.Fatalf("no %s segment", name)
	}
	return s
}
