package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/ingest/validate"
)

// End to end (real MLLP, real PostgreSQL): what senders send that is not what the guide says —
// undeclared Latin-1, empty acknowledgment types, NDC codes, poison values, hostile sizes — gets
// a definitive answer naming the field, and what is accepted is stored exactly.

// variant is vxu_basic.hl7 with a control ID of its own and the replacements old → new applied.
func variant(t *testing.T, ctrl string, repl ...string) []byte {
	t.Helper()
	s := strings.Replace(string(fixture(t, "vxu_basic.hl7")), "|CTRL-0001|", "|"+ctrl+"|", 1)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("variant %s: %q not in the fixture", ctrl, repl[i])
		}
		s = strings.Replace(s, repl[i], repl[i+1], 1)
	}
	return []byte(s)
}

// withValidator is a newEngine option: the pipeline validates with o.
func withValidator(t *testing.T, o validate.Options) func(*ingest.Options) {
	t.Helper()
	o.Now = func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }
	v, err := validate.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return func(io *ingest.Options) { io.Validator = v }
}

// errFor returns the ERR segments of the ACK whose ERR-8 mentions what (a field, e.g. "PID-3").
func errFor(a *hl7.Message, what string) []hl7.Segment {
	var out []hl7.Segment
	for i := 1; i <= a.Count("ERR"); i++ {
		s, _ := a.Find("ERR", i)
		if strings.Contains(s.Field(8).String(), what) {
			out = append(out, s)
		}
	}
	return out
}

func (e *engine) familyNames(t *testing.T) []string {
	t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT family_name || '^' || given_name FROM patients ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestUndeclaredLatin1IsStoredExactly (issue 13.3): Jos\xE9 with MSH-18 empty, or wrongly
// "UNICODE UTF-8", is stored as José with a warning naming the field and asking for MSH-18; per
// sender, another fallback applies; a byte no character set involved defines rejects the message
// naming the field, and nothing is stored with U+FFFD.
func TestUndeclaredLatin1IsStoredExactly(t *testing.T) {
	e := newEngine(t, "production", withValidator(t, validate.Options{
		SenderCharset: map[string]string{"SITE-B": "8859/15"},
	}))
	siteB := e.addSite(t, siteSpec{org: "ORG-B", code: "SITE-B", status: "production", facilities: []string{"FAC-B"}, addr: "127.0.0.2"})

	a, _ := e.send(t, variant(t, "L1-1", "Müller^Jürgen", "Jos\xe9^Ren\xe9e"))
	if a.Get("MSA-1") != ack.AE {
		t.Fatalf("MSA-1 = %q, want AE (stored, with a warning)", a.Get("MSA-1"))
	}
	errs := errFor(a, "PID-5")
	if len(errs) != 1 || errs[0].Field(4).String() != "W" || !strings.Contains(errs[0].Field(8).String(), "MSH-18") {
		t.Fatalf("want one warning naming PID-5 and MSH-18, got %d: %s", len(errs), a.Bytes())
	}

	a, _ = e.send(t, variant(t, "L1-2", "MRN-1001", "MRN-1002", "Müller^Jürgen", "Nu\xf1ez^Jos\xe9", "|||||Z22^CDCPHINVS", "||UNICODE UTF-8|||Z22^CDCPHINVS"))
	if a.Get("MSA-1") != ack.AE || len(errFor(a, "UNICODE UTF-8")) != 1 {
		t.Fatalf("declared UTF-8 but Latin-1: MSA-1 %q, %s", a.Get("MSA-1"), a.Bytes())
	}

	// SITE-B's fallback is ISO-8859-15, where 0xA4 is the euro sign (in Windows-1252 it is ¤).
	a, _ = siteB.send(t, variant(t, "L1-3", "|FAC-A|", "|FAC-B|", "MRN-1001", "MRN-B1", "Müller^Jürgen", "Caf\xe9\xa4^Ana"))
	if a.Get("MSA-1") != ack.AE {
		t.Fatalf("SITE-B: MSA-1 = %q: %s", a.Get("MSA-1"), a.Bytes())
	}

	// 0x81 is a character neither in UTF-8 nor in Windows-1252: rejected, naming PID-5.
	before := e.count(t, "patients")
	a, _ = e.send(t, variant(t, "L1-4", "MRN-1001", "MRN-1004", "Müller^Jürgen", "X\x81Y^Ana"))
	if a.Get("MSA-1") != ack.AR {
		t.Fatalf("undecodable byte: MSA-1 = %q, want AR", a.Get("MSA-1"))
	}
	if errs := errFor(a, "PID-5"); len(errs) != 1 || errs[0].Field(4).String() != "E" || errs[0].Field(2).Component(1).String() != "PID" {
		t.Fatalf("want one error naming PID-5: %s", a.Bytes())
	}
	if e.count(t, "patients") != before {
		t.Error("a message with an undecodable name was stored")
	}

	got := e.familyNames(t)
	want := []string{"José^Renée", "Nuñez^José", "Café€^Ana"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stored names %q, want %q", got, want)
	}
	if n := e.count(t, "patients WHERE family_name LIKE '%' || chr(65533) || '%' OR given_name LIKE '%' || chr(65533) || '%'"); n != 0 {
		t.Errorf("%d patients stored with U+FFFD", n)
	}
}

// TestEmptyAcknowledgmentTypesAreWarnings (issue 13.2): CDC's own test messages leave MSH-15 and
// MSH-16 empty; the message is stored and warned, not rejected.
func TestEmptyAcknowledgmentTypesAreWarnings(t *testing.T) {
	e := newEngine(t, "production")
	a, _ := e.send(t, variant(t, "HDR-1", "|||ER|AL|", "|||||", "20240310101500-0500||VXU", "||VXU"))
	if a.Get("MSA-1") != ack.AE {
		t.Fatalf("MSA-1 = %q, want AE: %s", a.Get("MSA-1"), a.Bytes())
	}
	for _, f := range []string{"MSH-15", "MSH-16", "MSH-7"} {
		if errs := errFor(a, f); len(errs) != 1 || errs[0].Field(4).String() != "W" {
			t.Errorf("%s: want one warning: %s", f, a.Bytes())
		}
	}
	if n := e.count(t, "vaccinations"); n != 1 {
		t.Errorf("%d vaccinations stored, want 1", n)
	}
}

// TestNDCIsStoredWithItsCVX (issue 13.8): a dose sent as an NDC is stored with the CVX the CDC
// maps it to; a CVX with a disagreeing NDC beside it is stored by its CVX and warned.
func TestNDCIsStoredWithItsCVX(t *testing.T) {
	e := newEngine(t, "production")
	a, _ := e.send(t, variant(t, "NDC-1", "08^Hep B, adolescent or pediatric^CVX", "00006-4093-01^Recombivax HB^NDC"))
	if code := a.Get("MSA-1"); code == ack.AR {
		t.Fatalf("NDC dose rejected: %s", a.Bytes())
	}
	var cvx, ndc string
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT cvx, ndc FROM vaccinations`).Scan(&cvx, &ndc); err != nil {
		t.Fatal(err)
	}
	if cvx != "08" || ndc != "00006-4093-01" {
		t.Errorf("stored cvx %q ndc %q, want 08 and the NDC", cvx, ndc)
	}

	a, _ = e.send(t, variant(t, "NDC-2", "MRN-1001", "MRN-2002", "ORD-5001", "ORD-5002",
		"08^Hep B, adolescent or pediatric^CVX", "08^Hep B, adolescent or pediatric^CVX^00006-4094-01^Recombivax HB adult^NDC"))
	if errs := errFor(a, "RXA-5.4"); a.Get("MSA-1") != ack.AE || len(errs) != 1 || errs[0].Field(4).String() != "W" {
		t.Fatalf("CVX/NDC disagreement: want AE with a warning on RXA-5.4: %s", a.Bytes())
	}
	if n := e.count(t, "vaccinations WHERE cvx = ''"); n != 0 {
		t.Errorf("%d vaccinations stored without a CVX", n)
	}
}

// TestPoisonValuesGetDefinitiveAnswers (issue 14.7): a NUL in free text and a 3,000-character
// PID-3 reach the database never: each gets a definitive answer naming the field, and the next
// message on the same connection is stored normally.
func TestPoisonValuesGetDefinitiveAnswers(t *testing.T) {
	e := newEngine(t, "production")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, e.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(msg []byte) *hl7.Message {
		t.Helper()
		raw, err := c.Send(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		a, err := hl7.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	// NUL in an NTE of the vaccination: that vaccination is rejected (AE), the patient stored.
	a := send(variant(t, "NUL-1", "RXR|C28161^Intramuscular^NCIT|LT^Left Thigh^HL70163", "RXR|C28161^Intramuscular^NCIT|LT^Left Thigh^HL70163\rNTE|1||Given\x00 by nurse"))
	errs := errFor(a, "NTE-3")
	if a.Get("MSA-1") != ack.AE || len(errs) != 1 || errs[0].Field(4).String() != "E" || errs[0].Field(3).Component(1).String() != "102" {
		t.Fatalf("NUL in NTE-3: want AE with a 102 error naming NTE-3: %s", a.Bytes())
	}
	// NUL in an OBX text value, as the \X00\ escape.
	a = send(variant(t, "NUL-2", "MRN-1001", "MRN-1002", "ORD-5001", "ORD-5002", "20230512||||||F", "20230512\\X00\\||||||F"))
	if errs := errFor(a, "control character"); a.Get("MSA-1") != ack.AE || len(errs) != 1 ||
		errs[0].Field(4).String() != "E" || !strings.HasPrefix(errs[0].Field(8).String(), "OBX-5") {
		t.Fatalf("\\X00\\ in OBX-5: want AE with an error naming OBX-5: %s", a.Bytes())
	}
	// A 3,000-character PID-3: the patient cannot be stored, so nothing is (AR), naming PID-3.
	a = send(variant(t, "LONG-1", "MRN-1001", strings.Repeat("M", 3000)))
	errs = errFor(a, "the registry keeps at most")
	if a.Get("MSA-1") != ack.AR || len(errs) != 1 || errs[0].Field(2).Component(3).String() != "3" ||
		!strings.HasPrefix(errs[0].Field(8).String(), "PID-3") {
		t.Fatalf("3,000-character PID-3: want AR with an error naming PID-3: %s", a.Bytes())
	}
	for _, code := range errCodes(a) {
		if code == "207" {
			t.Fatalf("answered as an internal error: %s", a.Bytes())
		}
	}
	// The next message on the connection is stored normally.
	a = send(variant(t, "OK-1", "MRN-1001", "MRN-1003", "ORD-5001", "ORD-5003"))
	if code := a.Get("MSA-1"); code != ack.AA && code != ack.AE {
		t.Fatalf("next message: MSA-1 %q: %s", code, a.Bytes())
	}
	if n := e.count(t, "patients"); n != 3 {
		t.Errorf("%d patients, want 3 (NUL-1, NUL-2 with their vaccinations rejected, and OK-1)", n)
	}
	if n := e.count(t, "vaccinations"); n != 1 {
		t.Errorf("%d vaccinations, want 1 (OK-1's)", n)
	}
}

// TestHostileSizesAreAnsweredAtOnce (issue 14.1): a message of four million PID-5 repetitions, and
// one of 20,000 OBX segments, get an AR naming the limit quickly, and the next message is stored.
func TestHostileSizesAreAnsweredAtOnce(t *testing.T) {
	e := newEngine(t, "production")
	// The torture run's message: PID-5 = "~" four million times (4 MB; it kept a core busy for
	// over 13 minutes).
	reps := variant(t, "HUGE-1", "Müller^Jürgen^Paul^^^^L", strings.Repeat("~", 4_000_000))
	var obx strings.Builder
	for i := range 20_000 {
		obx.WriteString("\rOBX|" + itoaE2E(i+5) + "|ST|30956-7^x^LN|9|junk||||||F")
	}
	many := variant(t, "HUGE-2", "20240310||||||F\r", "20240310||||||F"+obx.String()+"\r")
	for _, c := range []struct {
		msg  []byte
		want string // ERR-8 mentions it
	}{{reps, "PID-5 has 4000001 repetitions"}, {many, "segments"}} {
		start := time.Now()
		a, _ := e.send(t, c.msg)
		if a.Get("MSA-1") != ack.AR || len(errFor(a, c.want)) != 1 {
			t.Fatalf("%d bytes: want AR mentioning %q: %.400s", len(c.msg), c.want, a.Bytes())
		}
		t.Logf("%d bytes answered in %v", len(c.msg), time.Since(start))
	}
	a, _ := e.send(t, variant(t, "AFTER-1"))
	if code := a.Get("MSA-1"); code != ack.AA && code != ack.AE {
		t.Fatalf("next message: MSA-1 %q", code)
	}
}

func itoaE2E(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestNULInHeaderIsRejectedDefinitively (issue 14.7): a NUL in MSH-10 or MSH-4 is answered AR
// naming the field, not "internal error": the archive row (whose control ID and facility are
// text columns) is still written.
func TestNULInHeaderIsRejectedDefinitively(t *testing.T) {
	e := newEngine(t, "production")
	for _, c := range []struct {
		msg   []byte
		field string
	}{
		{variant(t, "NUL\x00ID"), "MSH-10"},
		{variant(t, "CTRL-NUL4", "|FAC-A|", "|FAC\x00A|"), "MSH-4"},
	} {
		a, _ := e.send(t, c.msg)
		if a.Get("MSA-1") != ack.AR || len(errFor(a, c.field)) == 0 {
			t.Fatalf("%s: want AR naming it: %q", c.field, a.Bytes())
		}
		for _, code := range errCodes(a) {
			if code == "207" {
				t.Fatalf("%s: answered as an internal error: %q", c.field, a.Bytes())
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.count(t, "messages") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.count(t, "messages WHERE ack_code = 'AR'"); n != 2 {
		t.Errorf("%d rejected messages archived, want 2", n)
	}
}
