package ack

import (
	"fmt"
	"strings"
	"testing"
)

// TestACKAlwaysStandardDelimiters: a message written with other delimiters gets an ACK in
// |^~\&, and what the sender wrote that is a delimiter in |^~\& is escaped, not echoed raw.
func TestACKAlwaysStandardDelimiters(t *testing.T) {
	msg := "MSH$%*!@$EHR$FAC|1%X&Y$IIS$$20240310$$VXU%V04$C|1^2$P$2.5.1\rPID$1\r"
	m := mustParse(t, []byte(msg))
	for _, h := range []Header{HeaderOf(m), RecoverHeader([]byte(msg))} {
		out := newTestBuilder().Build(h, AE, []Finding{{Location: Location{Segment: "PID", Sequence: 1, Field: 3}, Code: CodeRequiredFieldMissing, Severity: Error, Text: "PID-3 is empty"}})
		if !strings.HasPrefix(string(out), "MSH|^~\\&|") {
			t.Fatalf("ACK header %q, want MSH|^~\\&|", out[:12])
		}
		a := mustParse(t, out)
		if a.Get("MSA-2") != "C|1^2" || a.Get("MSH-6") != "FAC|1" || a.Get("MSH-6-2") != "X&Y" {
			t.Errorf("echoed values: MSA-2 %q MSH-6 %q^%q", a.Get("MSA-2"), a.Get("MSH-6"), a.Get("MSH-6-2"))
		}
		if got := string(a.Segment(1).Field(2).Raw()); got != `C\F\1\S\2` {
			t.Errorf("MSA-2 raw %q, want C\\F\\1\\S\\2", got)
		}
		if got := a.Get("ERR-2"); got != "PID" || string(mustFind(t, a, "ERR").Field(2).Raw()) != "PID^1^3^1" {
			t.Errorf("ERR-2 = %q", mustFind(t, a, "ERR").Field(2).Raw())
		}
	}
}

// TestERRLocationFormat: ERR-2 is always segment^sequence^field^repetition^component^sub,
// whoever filled the location, and a segment name that is not one is left out.
func TestERRLocationFormat(t *testing.T) {
	cases := []struct {
		loc  Location
		want string
	}{
		{Location{Segment: "MSH", Sequence: 1, Field: 9, Component: 2}, "MSH^1^9^1^2"},
		{Location{Segment: "MSH", Sequence: 1, Field: 9, Rep: 1, Component: 2}, "MSH^1^9^1^2"},
		{Location{Segment: "PD1", Sequence: 1, Field: 12}, "PD1^1^12^1"},
		{Location{Segment: "PID", Sequence: 1, Field: 5, Rep: 2, Component: 2}, "PID^1^5^2^2"},
		{Location{Segment: "PID", Sequence: 1, Field: 11, Rep: 1, Component: 4, Sub: 2}, "PID^1^11^1^4^2"},
		{Location{Segment: "RXA", Sequence: 3}, "RXA^3"},
		{Location{Segment: "MSH"}, "MSH^1"},
		{Location{Segment: "ZXY", Sequence: 2, Field: 1}, "ZXY^2^1^1"},
		// Unreadable names from a damaged message: no location rather than garbage.
		{Location{Segment: "P@D", Sequence: 1}, ""},
		{Location{Segment: "\x00\x01", Sequence: 1, Field: 2}, ""},
		{Location{Segment: "pid", Sequence: 1, Field: 2}, ""},
		{Location{Segment: "PIDX", Sequence: 1}, ""},
		{Location{Segment: "1AB", Sequence: 1}, ""},
		{Location{}, ""},
	}
	m := mustParse(t, []byte(vxu))
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q", c.loc.Segment), func(t *testing.T) {
			a := mustParse(t, newTestBuilder().Build(HeaderOf(m), AE, []Finding{{Location: c.loc, Code: CodeDataType, Severity: Warning, Text: "x"}}))
			if got := string(mustFind(t, a, "ERR").Field(2).Raw()); got != c.want {
				t.Errorf("ERR-2 = %q, want %q", got, c.want)
			}
		})
	}
}

// TestGenericACK: a message type the registry does not support gets the generic acknowledgement
// of its own trigger, without the Z23 profile; VXU^V04 keeps ACK^V04^ACK with Z23.
func TestGenericACK(t *testing.T) {
	cases := []struct {
		msh, typ, profile string
	}{
		{"MSH|^~\\&|EHR|FAC|IIS|ST|20240310||QBP^Q11^QBP_Q11|Q-1|P|2.5.1|||NE|AL|||||Z44^CDCPHINVS", "ACK^Q11^ACK", ""},
		{"MSH|^~\\&|EHR|FAC|IIS|ST|20240310||ADT^A31^ADT_A05|Q-1|P|2.5.1", "ACK^A31^ACK", ""},
		{"MSH|^~\\&|EHR|FAC|IIS|ST|20240310||ADT^A04|Q-1|P|2.5.1", "ACK^A04^ACK", ""},
		{"MSH|^~\\&|EHR|FAC|IIS|ST|20240310||VXU^V05|Q-1|P|2.5.1", "ACK^V05^ACK", ""},
		{"MSH|^~\\&|EHR|FAC|IIS|ST|20240310||VXU^V04^VXU_V04|Q-1|P|2.5.1", "ACK^V04^ACK", "Z23^CDCPHINVS"},
		{"MSH|^~\\&|EHR|FAC|IIS|ST|20240310|||Q-1|P|2.5.1", "ACK^V04^ACK", "Z23^CDCPHINVS"},
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			for name, h := range map[string]Header{"parsed": HeaderOf(mustParse(t, []byte(c.msh+"\r"))), "recovered": RecoverHeader([]byte(c.msh))} {
				a := mustParse(t, newTestBuilder().Reject(h, Finding{Location: Location{Segment: "MSH", Sequence: 1, Field: 9, Component: 1},
					Code: CodeUnsupportedMessage, Severity: Error, Text: "not supported"}))
				msh := mustFind(t, a, "MSH")
				if got := string(msh.Field(9).Raw()); got != c.typ {
					t.Errorf("%s: MSH-9 = %q, want %q", name, got, c.typ)
				}
				if got := string(msh.Field(21).Raw()); got != c.profile {
					t.Errorf("%s: MSH-21 = %q, want %q", name, got, c.profile)
				}
				if a.Get("MSA-1") != AR || a.Get("MSA-2") != "Q-1" || a.Get("ERR-3") != "200" {
					t.Errorf("%s: MSA %q %q ERR-3 %q", name, a.Get("MSA-1"), a.Get("MSA-2"), a.Get("ERR-3"))
				}
			}
		})
	}
}

// TestERRCap: a message with more findings than MaxERR gets MaxERR ERR segments, errors first,
// and one more that counts what was left out.
func TestERRCap(t *testing.T) {
	var fs []Finding
	for i := 1; i <= 110; i++ {
		fs = append(fs, Finding{Location: Location{Segment: "OBX", Sequence: i, Field: 3}, Code: CodeRequiredFieldMissing, Severity: Warning, Text: fmt.Sprintf("warning %d", i)})
	}
	for i := 1; i <= 15; i++ {
		fs = append(fs, Finding{Location: Location{Segment: "RXA", Sequence: i, Field: 5}, Code: CodeTableValueNotFound, Severity: Error, Text: fmt.Sprintf("error %d", i)})
	}
	fs = append(fs, Finding{Code: CodeAccepted, Severity: Information, Text: "info"})
	m := mustParse(t, []byte(vxu))
	b := newTestBuilder()
	a := mustParse(t, b.Build(HeaderOf(m), AE, fs))
	if n := a.Count("ERR"); n != DefaultMaxERR+1 {
		t.Fatalf("%d ERR segments, want %d", n, DefaultMaxERR+1)
	}
	for i := 1; i <= 15; i++ {
		if e, _ := a.Find("ERR", i); e.Field(8).String() != fmt.Sprintf("error %d", i) {
			t.Fatalf("ERR %d = %q, want error %d (errors first, in order)", i, e.Field(8).String(), i)
		}
	}
	if e, _ := a.Find("ERR", 100); e.Field(8).String() != "warning 85" {
		t.Errorf("last listed ERR = %q, want warning 85", e.Field(8).String())
	}
	last, _ := a.Find("ERR", 101)
	if got := last.Field(8).String(); !strings.HasPrefix(got, "26 more findings (0 errors, 25 warnings, 1 information)") {
		t.Errorf("summary ERR-8 = %q", got)
	}
	if last.Field(4).String() != "W" || len(last.Field(2).Raw()) != 0 || last.Field(3).Component(1).String() != "101" {
		t.Errorf("summary ERR = %q", last.Raw())
	}
	b.MaxERR = 5
	if a := mustParse(t, b.Build(HeaderOf(m), AE, fs)); a.Count("ERR") != 6 {
		t.Errorf("MaxERR 5: %d ERR segments, want 6", a.Count("ERR"))
	}
	listed, omitted := Listed(fs, 100)
	var rest []Finding
	for f := range Omitted(fs, 100) {
		rest = append(rest, f)
	}
	if len(listed) != 100 || omitted != 26 || len(rest) != 26 || listed[0].Severity != Error || rest[0].Text != "warning 86" || rest[25].Severity != Information {
		t.Errorf("Listed: %d + %d (%d)", len(listed), omitted, len(rest))
	}
	if all, none := Listed(fs[:3], 100); len(all) != 3 || none != 0 {
		t.Errorf("Listed under the bound: %d + %d", len(all), none)
	}
}
