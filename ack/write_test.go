package ack

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// referenceBuild is how ACKs were built before Builder.write: with hl7.Builder and hl7.Values.
// write must produce the same bytes.
func (b *Builder) referenceBuild(h Header, code string, findings []Finding, more *Finding, controlID, stamp, charset string) []byte {
	sendApp, sendFac := h.ReceivingApplication, h.ReceivingFacility
	if len(sendApp) == 0 {
		sendApp = b.Application
	}
	if len(sendFac) == 0 {
		sendFac = b.Facility
	}
	processing := h.ProcessingID
	if processing == "" {
		processing = "P"
	}
	// The Z23 profile for VXU^V04; the generic ACK of its own trigger, without a profile, for a
	// message the registry does not support (it is not a VXU acknowledgement).
	msgType, profile := hl7.Comps("ACK", "V04", "ACK"), hl7.Comps("Z23", "CDCPHINVS")
	if h.Generic() {
		msgType, profile = hl7.Comps("ACK", h.TriggerEvent, "ACK"), hl7.Value{}
	}
	w := hl7.NewBuilder(hl7.DefaultDelimiters)
	w.Segment("MSH",
		hl7.Comps(sendApp...),
		hl7.Comps(sendFac...),
		hl7.Comps(h.SendingApplication...),
		hl7.Comps(h.SendingFacility...),
		hl7.Text(stamp),
		hl7.Text(""),
		msgType,
		hl7.Text(controlID),
		hl7.Text(processing),
		hl7.Text("2.5.1"),
		hl7.Text(""), hl7.Text(""),
		hl7.Text("NE"), hl7.Text("NE"),
		hl7.Text(""),
		hl7.Text(charset),
		hl7.Text(""), hl7.Text(""),
		profile,
	)
	w.Segment("MSA", hl7.Text(code), hl7.Text(h.ControlID))
	if code == AA && len(findings) == 0 && b.Policy.AcceptedERR {
		w.Segment("ERR", hl7.Text(""), hl7.Text(""),
			hl7.Comps("0", "Message Accepted", "HL70357"), hl7.Text(string(Information)))
	}
	for _, f := range findings {
		w.Segment("ERR", referenceERR(f)...)
	}
	if more != nil {
		w.Segment("ERR", referenceERR(*more)...)
	}
	return w.Bytes()
}

func referenceERR(f Finding) []hl7.Value {
	loc := hl7.Text("")
	if l := f.Location; validSegmentName(l.Segment) {
		seq, rep := l.Sequence, l.Rep
		if seq <= 0 {
			seq = 1
		}
		if l.Field > 0 && rep <= 0 {
			rep = 1
		}
		if l.Field <= 0 {
			loc = hl7.Comps(l.Segment, itoa(seq))
		} else {
			loc = hl7.Comps(l.Segment, itoa(seq), itoa(l.Field), itoa(rep), itoa(l.Component), itoa(l.Sub))
		}
	}
	app := hl7.Text("")
	if f.App != AppNone {
		app = hl7.Comps(strconv.Itoa(int(f.App)), f.App.Text(), "HL70533")
	}
	return []hl7.Value{
		hl7.Text(""), // ERR-1 is not used in 2.5.1
		loc,
		hl7.Comps(strconv.Itoa(int(f.Code)), f.Code.Text(), "HL70357"),
		hl7.Text(string(f.Severity)),
		app,
		hl7.Text(""), hl7.Text(""),
		hl7.Text(f.Text),
	}
}

func checkWrite(t *testing.T, b *Builder, h Header, code string, findings []Finding, more *Finding) {
	t.Helper()
	stamp := "20240102030405-0500"
	for _, charset := range []string{"", "UNICODE UTF-8"} {
		got := b.write(h, code, findings, more, 42, []byte(stamp), charset)
		want := b.referenceBuild(h, code, findings, more, b.prefix+strconv.Itoa(42), stamp, charset)
		if !bytes.Equal(got, want) {
			t.Fatalf("write:\n%q\nhl7.Builder:\n%q", got, want)
		}
	}
}

// TestWriteMatchesBuilder: the ACK writer produces, byte for byte, what hl7.Builder made of the
// same header and findings: escapes, empty and trailing-empty fields and components, generic
// ACKs, locations of every shape, the accepted ERR, the summary ERR.
func TestWriteMatchesBuilder(t *testing.T) {
	b := NewBuilder([]string{"vaxgate"}, []string{"IIS", ""}, DefaultPolicy)
	headers := []Header{
		{},
		{SendingApplication: []string{"EHR"}, SendingFacility: []string{"X68", "2.16.840.1", "ISO"}, ReceivingApplication: []string{"IIS"},
			ReceivingFacility: []string{"MA", ""}, ControlID: "C-1", ProcessingID: "P", MessageType: "VXU", TriggerEvent: "V04"},
		{SendingApplication: []string{"A|B", "^~\\&", ""}, SendingFacility: []string{"", "", ""}, ControlID: "X\r\ny\x0b\x1c\"\"",
			ProcessingID: "T", MessageType: "QBP", TriggerEvent: "Q11"},
		{SendingFacility: []string{"Müller"}, ControlID: `""`, MessageType: "ADT", TriggerEvent: ""},
		{ControlID: "id", MessageType: "", TriggerEvent: "A31"},
	}
	findings := []Finding{
		{Rule: "r1", Location: Location{Segment: "PID", Sequence: 1, Field: 5, Component: 1}, Code: CodeRequiredFieldMissing, Severity: Error, App: AppRequiredDataMissing, Text: "PID-5 | missing ^ & ~ \\ text\nsecond line"},
		{Rule: "r2", Location: Location{Segment: "RXA", Sequence: 2, Field: 3, Rep: 2, Sub: 3}, Code: CodeDataType, Severity: Warning, Text: "no app code"},
		{Rule: "r3", Location: Location{Segment: "MSH", Sequence: 0}, Code: CodeUnsupportedMessage, Severity: Error, App: AppInvalidValue},
		{Rule: "r4", Location: Location{Segment: "bad!", Field: 3}, Code: CodeAccepted, Severity: Information, Text: "é ü — non-ASCII"},
		{Rule: "r5", Code: Code(999), Severity: Warning, App: AppCode(77), Text: `""`},
		{Rule: "r6", Location: Location{Segment: "OBX", Sequence: 3, Field: 0, Rep: 4, Component: 2}, Code: CodeUnknownKey, Severity: Error},
	}
	more := summary(func(yield func(Finding) bool) { yield(findings[0]) })
	for _, h := range headers {
		for _, code := range []string{AA, AE, AR} {
			checkWrite(t, b, h, code, nil, nil)
			checkWrite(t, b, h, code, findings, nil)
			checkWrite(t, b, h, code, findings[:1], &more)
		}
	}
	quiet := NewBuilder(nil, nil, Policy{})
	checkWrite(t, quiet, headers[0], AA, nil, nil)
	checkWrite(t, quiet, headers[1], AA, nil, nil)
}

// TestBuildAllocates: an ACK costs one allocation (its bytes) plus what Listed copies.
func TestBuildAllocates(t *testing.T) {
	b := NewBuilder([]string{"vaxgate"}, nil, DefaultPolicy)
	b.Now = func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) }
	h := Header{SendingApplication: []string{"EHR"}, SendingFacility: []string{"X68"}, ControlID: "C-1", ProcessingID: "P", MessageType: "VXU", TriggerEvent: "V04"}
	f := []Finding{{Location: Location{Segment: "PID", Sequence: 1, Field: 5}, Code: CodeRequiredFieldMissing, Severity: Warning, App: AppRequiredDataMissing, Text: "PID-5 is empty."}}
	if n := testing.AllocsPerRun(100, func() { b.Build(h, AA, nil) }); n > 2 {
		t.Errorf("an AA costs %v allocations, want at most 2", n)
	}
	if n := testing.AllocsPerRun(100, func() { b.Build(h, AE, f) }); n > 2 {
		t.Errorf("an AE with one finding costs %v allocations, want at most 2", n)
	}
}

func FuzzWrite(f *testing.F) {
	f.Add("EHR", "X68^2.16^ISO", "C-1", "P", "VXU", "V04", "PID", 5, 1, "text | ^ ~ \\ &", uint8(1))
	f.Add("", "", "", "", "ADT", "A31", "", 0, 0, "", uint8(0))
	f.Add("Müller\x00", "\r\n", `""`, "T", "QBP", "", "RX1", -3, 9, "\x1c\x0b\x7f", uint8(2))
	b := NewBuilder([]string{"vaxgate"}, []string{"IIS"}, DefaultPolicy)
	f.Fuzz(func(t *testing.T, app, fac, id, pid, typ, event, seg string, field, comp int, text string, sev uint8) {
		h := Header{SendingApplication: []string{app}, SendingFacility: bytesSplit(fac), ReceivingApplication: bytesSplit(app),
			ControlID: id, ProcessingID: pid, MessageType: typ, TriggerEvent: event}
		s := []Severity{Error, Warning, Information}[int(sev)%3]
		fs := []Finding{{Location: Location{Segment: seg, Sequence: comp, Field: field, Rep: comp - 1, Component: comp, Sub: field - comp},
			Code: Code(field), Severity: s, App: AppCode(comp), Text: text}}
		for _, code := range []string{AA, AE, AR} {
			checkWrite(t, b, h, code, fs, nil)
			checkWrite(t, b, h, code, nil, &fs[0])
		}
	})
}

func bytesSplit(s string) []string {
	var out []string
	for _, p := range bytes.Split([]byte(s), []byte("^")) {
		out = append(out, string(p))
	}
	return out
}

// TestAppendStamp: the ACK's MSH-7 is what time.Time.AppendFormat makes of its layout, for times
// in zones east and west of UTC, offsets with seconds (local mean times), years of fewer and more
// than four digits and random instants.
func TestAppendStamp(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("E", 5*3600+45*60), time.FixedZone("W", -(9*3600 + 30*60)),
		time.FixedZone("LMT-", -30), time.FixedZone("LMT+", 59), time.FixedZone("LMT", -(4*3600 + 56*60 + 2)),
		time.FixedZone("far", 150*3600), time.FixedZone("farW", -101*3600)}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	times := []time.Time{
		time.Date(2026, 12, 7, 9, 5, 3, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 2, 3, 4, 5, 6, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 6, 7, 8, 9, 10, 0, time.UTC),
		time.Date(1883, 11, 18, 12, 0, 0, 0, time.UTC),
	}
	rng := rand.New(rand.NewPCG(7, 19))
	for range 2000 {
		times = append(times, time.Unix(rng.Int64N(1<<36)-1<<35, rng.Int64N(1e9)))
	}
	for _, z := range zones {
		for _, tm := range times {
			tm = tm.In(z)
			got, want := appendStamp([]byte("x"), tm), tm.AppendFormat([]byte("x"), stampLayout)
			if !bytes.Equal(got, want) {
				t.Fatalf("appendStamp(%v) = %q, want %q", tm, got, want)
			}
		}
	}
}

// TestIsASCII: the word-at-a-time test agrees with a byte loop at every length and position of a
// byte with its high bit set.
func TestIsASCII(t *testing.T) {
	for n := range 40 {
		b := bytes.Repeat([]byte{'a'}, n)
		if !isASCII(b) {
			t.Fatalf("isASCII(%d plain bytes) = false", n)
		}
		for i := range n {
			for _, c := range []byte{0x80, 0xc3, 0xff} {
				b[i] = c
				if isASCII(b) {
					t.Fatalf("isASCII with %#x at %d of %d = true", c, i, n)
				}
				b[i] = 0x7f
				if !isASCII(b) {
					t.Fatalf("isASCII with 0x7f at %d of %d = false", i, n)
				}
				b[i] = 'a'
			}
		}
	}
}
