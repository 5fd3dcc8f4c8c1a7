package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/store"
)

// Integration tests of the registry semantics (SPEC §2.6): every message goes through the real
// MLLP listener, pipeline, validator and group-commit writer into a real PostgreSQL, and what a
// clinician would later see is read back with store.PatientRecord.

// The further sites the tests use. SITE-A (organization ORG-A, facility FAC-A) is newEngine's.
func siteB(e *engine, t *testing.T, status string) *sender {
	return e.addSite(t, siteSpec{org: "ORG-B", code: "SITE-B", status: status, facilities: []string{"FAC-B"}, addr: "127.0.0.2"})
}

func siteC(e *engine, t *testing.T, status string) *sender {
	return e.addSite(t, siteSpec{org: "ORG-C", code: "SITE-C", status: status, facilities: []string{"FAC-C"}, addr: "127.0.0.3"})
}

// facility is the MSH-4 each sender may send for.
func (s *sender) facility() string {
	switch s.code {
	case "SITE-A":
		return "FAC-A"
	case "SITE-B":
		return "FAC-B"
	case "SITE-C":
		return "FAC-C"
	}
	return "FAC-" + s.code
}

// vxu builds a production message from this sender.
func (s *sender) vxu(ctrl string, c child, doses ...dose) []byte {
	return vxu(ctrl, s.facility(), "P", c, doses...)
}

// accept sends msg and fails the test unless it was accepted (AA or AE).
func (s *sender) accept(t *testing.T, msg []byte) *hl7.Message {
	t.Helper()
	a, _ := s.send(t, msg)
	if code := a.Get("MSA-1"); code != ack.AA && code != ack.AE {
		t.Fatalf("%s: MSA-1 = %s, want AA or AE; ERR: %v", a.Get("MSA-2"), code, errTexts(a))
	}
	return a
}

// errTexts lists each ERR as "location code severity: text".
func errTexts(m *hl7.Message) []string {
	var out []string
	for i := 1; i <= m.Count("ERR"); i++ {
		s, _ := m.Find("ERR", i)
		out = append(out, fmt.Sprintf("%s-%s %s %s: %s", s.Field(2).Component(1).String(), s.Field(2).Component(3).String(),
			s.Field(3).Component(1).String(), s.Field(4).String(), s.Field(8).String()))
	}
	return out
}

// errAt returns the severities of the ERR segments at segment-field (e.g. "PD1", 12).
func errAt(m *hl7.Message, segment string, field int) []string {
	var out []string
	for i := 1; i <= m.Count("ERR"); i++ {
		s, _ := m.Find("ERR", i)
		if s.Field(2).Component(1).String() == segment && s.Field(2).Component(3).String() == fmt.Sprint(field) {
			out = append(out, s.Field(4).String())
		}
	}
	return out
}

// record reads the consolidated record of the registry patient a sender's MRN belongs to.
func (s *sender) record(t *testing.T, env, mrn string) *store.PatientRecord {
	t.Helper()
	ctx := context.Background()
	id, err := s.e.db.RegistryPatientID(ctx, env, s.org, ingest.Identifier{Value: mrn, Authority: "CLINIC", Type: "MR"})
	if err != nil {
		t.Fatalf("%s patient %s (%s): %v", s.code, mrn, env, err)
	}
	r, err := s.e.db.PatientRecord(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// registryID is the registry patient a sender's MRN belongs to in production, 0 when none.
func (s *sender) registryID(t *testing.T, mrn string) int64 {
	t.Helper()
	id, err := s.e.db.RegistryPatientID(context.Background(), "P", s.org, ingest.Identifier{Value: mrn, Authority: "CLINIC", Type: "MR"})
	if errors.Is(err, store.ErrPatientNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// snapshot counts the rows of every registry table, to show that something changed nothing.
func (e *engine) snapshot(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tbl := range []string{"registry_patients", "patients", "vaccinations", "sharing_changes", "registry_reviews", "audit_log"} {
		out[tbl] = e.count(t, tbl)
	}
	// Reports are references to archived messages, kept on the rows they report (next of kin and
	// observations are read back from those messages).
	out["patient_reports"] = e.count(t, "patients, unnest(report_messages)")
	out["vaccination_reports"] = e.count(t, "vaccinations, unnest(report_messages)")
	return out
}

func sameCounts(t *testing.T, what string, before, after map[string]int) {
	t.Helper()
	for tbl, n := range before {
		if after[tbl] != n {
			t.Errorf("%s: %s has %d rows, %d before", what, tbl, after[tbl], n)
		}
	}
}

var ava = child{mrn: "MRN-1", family: "Smith", given: "Ava", mother: "Jones", dob: "20200105", sex: "F",
	street: "12 Elm Street", zip: "01101"}

var hepB = dose{order: "ORD-1^CLINIC", date: "20240301", cvx: "08", text: "Hep B, adolescent or pediatric"}

// The registry tests build their messages from these descriptions, so that each test states
// only what it is about (a name, a date, an action code) and the rest is a valid Z22 VXU.

// child is a patient as a sender reports it (PID, PD1).
type child struct {
	mrn, authority        string // PID-3 (type MR)
	family, given, middle string
	mother                string // PID-6 family name
	dob, sex              string
	street, city, zip     string
	protection            string // PD1-12
	nk1Family, nk1Given   string // mother as NK1 (MTH), when set
	patientOBX            []string
}

// dose is an order group (ORC, RXA, RXR, OBX).
type dose struct {
	order      string // ORC-3 "id^namespace"; "" for none
	date       string // RXA-3
	cvx, text  string
	historical bool   // RXA-9 01 instead of 00
	lot, mvx   string // administered only
	status     string // RXA-20 (default CP)
	refusal    string // RXA-18 code (NIP002)
	action     string // RXA-21 (default A)
	obx        []string
}

// vxu builds a VXU^V04 from facility (MSH-4) with processing ID proc (MSH-11).
func vxu(ctrl, facility, proc string, c child, doses ...dose) []byte {
	var b strings.Builder
	seg := func(fields ...string) {
		b.WriteString(strings.Join(fields, "|"))
		b.WriteByte('\r')
	}
	seg(`MSH`, `^~\&`, `ClinicEHR`, facility, `vaxgate`, `STATEIIS`, `20240310101500-0500`, ``, `VXU^V04^VXU_V04`, ctrl, proc, `2.5.1`,
		``, ``, `ER`, `AL`, ``, ``, ``, ``, `Z22^CDCPHINVS`)
	authority := c.authority
	if authority == "" {
		authority = "CLINIC"
	}
	sex := c.sex
	if sex == "" {
		sex = "F"
	}
	mother := ""
	if c.mother != "" {
		mother = c.mother + "^Anne^^^^^M"
	}
	addr := ""
	if c.street != "" || c.zip != "" {
		addr = c.street + "^^" + orDefault(c.city, "Springfield") + "^MA^" + c.zip + "^USA^L"
	}
	seg(`PID`, `1`, ``, c.mrn+`^^^`+authority+`^MR`, ``, c.family+`^`+c.given+`^`+c.middle+`^^^^L`, mother, c.dob, sex, ``,
		`2106-3^White^CDCREC`, addr, ``, `^PRN^PH^^^413^5551234`, ``, ``, ``, ``, ``, ``, ``, ``, `2186-5^Not Hispanic or Latino^CDCREC`)
	if c.protection != "" {
		seg(`PD1`, ``, ``, ``, ``, ``, ``, ``, ``, ``, ``, `02^Reminder/Recall - any method^HL70215`, c.protection, `20240301`,
			``, ``, `A`, `20240301`, `20240301`)
	}
	if c.nk1Family != "" {
		seg(`NK1`, `1`, c.nk1Family+`^`+c.nk1Given+`^^^^^L`, `MTH^Mother^HL70063`, addr, `^PRN^PH^^^413^5551234`)
	}
	for _, o := range c.patientOBX {
		seg(`OBX`, o)
	}
	for _, d := range doses {
		status := orDefault(d.status, "CP")
		action := orDefault(d.action, "A")
		seg(`ORC`, `RE`, ``, d.order, ``, ``, ``, ``, ``, ``, `7824^Jackson^Lily^^^^^^NIST-AA-1^^^^PRN`)
		vaccine := d.cvx + `^` + d.text + `^CVX`
		switch {
		case status == "RE":
			seg(`RXA`, `0`, `1`, d.date, ``, vaccine, `999`, ``, ``, ``, ``, ``, ``, ``, ``, ``, ``, ``,
				d.refusal+`^Parental decision^NIP002`, ``, `RE`, action)
		case d.cvx == "998":
			seg(`RXA`, `0`, `1`, d.date, ``, vaccine, `999`, ``, ``, ``, ``, ``, ``, ``, ``, ``, ``, ``, ``, ``, orDefault(d.status, "NA"), action)
		case d.historical:
			seg(`RXA`, `0`, `1`, d.date, ``, vaccine, `999`, ``, ``, `01^Historical information - source unspecified^NIP001`,
				``, ``, ``, ``, ``, ``, ``, ``, ``, ``, status, action)
		default:
			seg(`RXA`, `0`, `1`, d.date, ``, vaccine, `0.5`, `mL^milliliters^UCUM`, ``, `00^New immunization record^NIP001`,
				`7824^Jackson^Lily^^^^^^NIST-AA-1^^^^PRN`, `^^^`+facility, ``, ``, ``, orDefault(d.lot, "LOT1"), `20251231`,
				orDefault(d.mvx, "MSD")+`^Merck^MVX`, ``, ``, status, action)
			seg(`RXR`, `C28161^Intramuscular^NCIT`, `LT^Left Thigh^HL70163`)
			if d.obx == nil {
				d.obx = []string{
					`1|CE|64994-7^Vaccine funding program eligibility category^LN|1|V02^VFC eligible - Medicaid/Medicaid Managed Care^HL70064||||||F|||` + d.date + `|||VXC40^Eligibility captured at the immunization level^CDCPHINVS`,
					`2|CE|30956-7^vaccine type^LN|2|45^Hep B, unspecified formulation^CVX||||||F`,
					`3|TS|29768-9^Date vaccine information statement published^LN|2|20230512||||||F`,
					`4|TS|29769-7^Date vaccine information statement presented^LN|2|` + d.date + `||||||F`,
				}
			}
		}
		for _, o := range d.obx {
			seg(`OBX`, o)
		}
	}
	return []byte(b.String())
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// --- resend ---

// TestRegistryResend (issue 13.1): a resend is the same message — same site, same MSH-10, same
// content apart from MSH-7 — and gets the original ACK, changing nothing; a different message
// under a used control ID is processed like any other and warned (0357 code 205).
func TestRegistryResend(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	msgA := a.vxu("RS-1", ava, hepB)
	_, first := a.send(t, msgA)
	if m, _ := hl7.Parse(first); m.Get("MSA-1") == ack.AR || len(errAtCode(m, "205")) > 0 {
		t.Fatalf("original: %q", first)
	}
	before := e.snapshot(t)

	t.Run("same message", func(t *testing.T) {
		_, again := a.send(t, msgA)
		if !bytes.Equal(first, again) {
			t.Fatalf("resend ACK differs:\n%q\n%q", first, again)
		}
		sameCounts(t, "resend", before, e.snapshot(t))
	})
	t.Run("same message, new MSH-7 and CRLF", func(t *testing.T) {
		restamped := bytes.Replace(msgA, []byte("|20240310101500-0500|"), []byte("|20240311090000-0500|"), 1)
		restamped = bytes.ReplaceAll(restamped, []byte("\r"), []byte("\r\n"))
		if bytes.Equal(restamped, msgA) {
			t.Fatal("MSH-7 not replaced")
		}
		_, again := a.send(t, restamped)
		if !bytes.Equal(first, again) {
			t.Fatalf("resend ACK differs:\n%q\n%q", first, again)
		}
		sameCounts(t, "resend with a new MSH-7", before, e.snapshot(t))
	})
	other := ava
	other.given = "Zoe"
	msgB := a.vxu("RS-1", other, dose{order: "ORD-9^CLINIC", date: "20240302", cvx: "20", text: "DTaP"})
	var answerB []byte
	t.Run("same control ID, other content", func(t *testing.T) {
		m, raw := a.send(t, msgB)
		answerB = raw
		if m.Get("MSA-1") != ack.AE || m.Get("MSA-2") != "RS-1" {
			t.Fatalf("MSA %q %q, want AE for RS-1", m.Get("MSA-1"), m.Get("MSA-2"))
		}
		if got := errAtCode(m, "205"); len(got) != 1 || got[0] != "MSH^1^10^1 W" {
			t.Errorf("205 warnings %v, want one at MSH^1^10^1; ERR: %v", got, errTexts(m))
		}
		after := e.snapshot(t)
		if after["vaccinations"] != before["vaccinations"]+1 || after["patient_reports"] != before["patient_reports"]+1 {
			t.Errorf("message B not stored: %v before, %v after", before, after)
		}
		if got := a.record(t, "P", ava.mrn); got.GivenName != "Zoe" || len(got.Doses()) != 2 {
			t.Errorf("registry after B: given %q, %d doses; want Zoe with 2", got.GivenName, len(got.Doses()))
		}
	})
	t.Run("resends of both are told apart", func(t *testing.T) {
		mid := e.snapshot(t)
		if _, again := a.send(t, msgA); !bytes.Equal(first, again) {
			t.Errorf("resend of A after B:\n%q\n%q", first, again)
		}
		if _, again := a.send(t, msgB); !bytes.Equal(answerB, again) {
			t.Errorf("resend of B:\n%q\n%q", answerB, again)
		}
		sameCounts(t, "resends of A and B", mid, e.snapshot(t))
	})
	t.Run("other content that is rejected", func(t *testing.T) {
		mid := e.snapshot(t)
		broken := ava
		broken.family = ""
		m, _ := a.send(t, a.vxu("RS-1", broken, hepB))
		if m.Get("MSA-1") != ack.AR {
			t.Fatalf("MSA-1 = %s, want AR for its own content; ERR: %v", m.Get("MSA-1"), errTexts(m))
		}
		sameCounts(t, "rejected message under a used control ID", mid, e.snapshot(t))
	})
	t.Run("rejected original is not a resend key", func(t *testing.T) {
		broken := ava
		broken.family = ""
		m, _ := a.send(t, a.vxu("RS-2", broken, hepB))
		if m.Get("MSA-1") != ack.AR {
			t.Fatalf("MSA-1 = %s, want AR", m.Get("MSA-1"))
		}
		fixed := a.accept(t, a.vxu("RS-2", ava, hepB))
		if fixed.Get("MSA-2") != "RS-2" || len(errAtCode(fixed, "205")) != 0 {
			t.Errorf("MSA-2 = %q, ERR %v", fixed.Get("MSA-2"), errTexts(fixed))
		}
	})
	if n := e.count(t, "messages WHERE resend_key"); n != 3 {
		t.Errorf("%d resend keys, want 3 (RS-1 twice, with two contents, and the accepted RS-2)", n)
	}
	if n := e.count(t, "messages WHERE control_id = 'RS-1'"); n != 7 {
		t.Errorf("%d archived copies of RS-1, want 7 (every copy is archived)", n)
	}
	if n := e.count(t, "messages WHERE content_digest IS NULL"); n != 0 {
		t.Errorf("%d messages archived without a content digest", n)
	}
}

// TestRegistryResendUnderControlIDUsedThrice: with three messages of different content stored
// under one control ID, a resend of each is still answered with its own original ACK and changes
// nothing. The store's first look-up reads at most two of the messages under a control ID; the
// third is found by its content (the exact look-up that follows).
func TestRegistryResendUnderControlIDUsedThrice(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	var msgs, answers [][]byte
	for i, given := range []string{"Ava", "Zoe", "Mia"} {
		p := ava
		p.given = given
		msg := a.vxu("RS-3", p, dose{order: fmt.Sprintf("ORD-3%d^CLINIC", i), date: "20240302", cvx: "20", text: "DTaP"})
		m, answer := a.send(t, msg)
		if want := []int{0, 1, 1}[i]; len(errAtCode(m, "205")) != want || m.Get("MSA-1") == ack.AR {
			t.Fatalf("message %d: MSA-1 %s, 205 warnings %v, want %d", i, m.Get("MSA-1"), errAtCode(m, "205"), want)
		}
		msgs, answers = append(msgs, msg), append(answers, answer)
	}
	before := e.snapshot(t)
	for i, msg := range msgs {
		if _, again := a.send(t, msg); !bytes.Equal(answers[i], again) {
			t.Errorf("resend of message %d:\n%q\n%q", i, answers[i], again)
		}
	}
	sameCounts(t, "resends under a control ID used thrice", before, e.snapshot(t))
	if n := e.count(t, "messages WHERE control_id = 'RS-3' AND resend_key"); n != 3 {
		t.Errorf("%d resend keys of RS-3, want 3", n)
	}
}

// TestRegistryResendOfLegacyOriginal: a message archived before content digests existed (null
// digest) is still recognised when resent, by the digest of its raw message, and another
// message under its control ID is still processed.
func TestRegistryResendOfLegacyOriginal(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	msg := a.vxu("LEG-1", ava, hepB)
	_, first := a.send(t, msg)
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE messages SET content_digest = NULL`); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot(t)
	if _, again := a.send(t, msg); !bytes.Equal(first, again) {
		t.Fatalf("resend of a legacy original:\n%q\n%q", first, again)
	}
	sameCounts(t, "resend of a legacy original", before, e.snapshot(t))
	m, _ := a.send(t, a.vxu("LEG-1", ava, dose{order: "ORD-8^CLINIC", date: "20240302", cvx: "20", text: "DTaP"}))
	if got := errAtCode(m, "205"); len(got) != 1 || e.count(t, "vaccinations") != before["vaccinations"]+1 {
		t.Errorf("other message under a legacy control ID: 205 %v, %d vaccinations", got, e.count(t, "vaccinations"))
	}
}

// errAtCode lists "location severity" of the ERR segments with ERR-3.1 code.
func errAtCode(m *hl7.Message, code string) []string {
	var out []string
	for i := 1; i <= m.Count("ERR"); i++ {
		s, _ := m.Find("ERR", i)
		if s.Field(3).Component(1).String() == code {
			out = append(out, string(s.Field(2).Raw())+" "+s.Field(4).String())
		}
	}
	return out
}

func TestRegistryResendConcurrent(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	const copies = 8
	// fire sends the messages at once, each on its own connection, and returns the ACKs.
	fire := func(msgs [][]byte) [][]byte {
		acks := make([][]byte, len(msgs))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, m := range msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, raw, err := a.try(m)
				if err != nil {
					t.Error(err)
				}
				acks[i] = raw
			}()
		}
		close(start)
		wg.Wait()
		return acks
	}
	for round := range 4 {
		c := ava
		c.mrn = fmt.Sprintf("MRN-C%d", round)
		c.given = fmt.Sprintf("Child%c", 'A'+round)
		msg := a.vxu(fmt.Sprintf("CC-%d", round), c, dose{order: fmt.Sprintf("ORD-C%d^CLINIC", round), date: "20240301", cvx: "08", text: "Hep B"})
		msgs := make([][]byte, copies)
		for i := range msgs {
			msgs[i] = msg
		}
		acks := fire(msgs)
		for i := 1; i < copies; i++ {
			if !bytes.Equal(acks[0], acks[i]) {
				t.Fatalf("round %d: copy %d got another ACK:\n%q\n%q", round, i, acks[0], acks[i])
			}
		}
	}
	// Same control ID, two different messages (different patients): they go to different writer
	// shards, and still each is stored once, every copy gets its message's ACK, and exactly one
	// of the two (the later) is warned that the control ID was used (205): batches with the same
	// control ID are serialised.
	x, y := ava, ava
	x.mrn, x.given = "MRN-X", "Xena"
	y.mrn, y.given = "MRN-Y", "Yara"
	var msgs [][]byte
	for range copies / 2 {
		msgs = append(msgs, a.vxu("CC-XY", x, hepB), a.vxu("CC-XY", y, hepB))
	}
	acks := fire(msgs)
	for i := 2; i < len(acks); i++ {
		if !bytes.Equal(acks[i%2], acks[i]) {
			t.Fatalf("same control ID: copy %d got another ACK:\n%q\n%q", i, acks[i%2], acks[i])
		}
	}
	warned := 0
	for _, raw := range acks[:2] {
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		warned += len(errAtCode(m, "205"))
	}
	if warned != 1 {
		t.Errorf("%d of the two messages under CC-XY warned 205, want exactly 1:\n%q\n%q", warned, acks[0], acks[1])
	}

	for tbl, want := range map[string]int{"patients": 6, "registry_patients": 6, "patients, unnest(report_messages)": 6, "vaccinations": 6,
		"vaccinations, unnest(report_messages)": 6, "messages": 5 * copies, "messages WHERE resend_key": 6} {
		if n := e.count(t, tbl); n != want {
			t.Errorf("%s: %d rows, want %d", tbl, n, want)
		}
	}
}

func TestRegistryResendKeyPerEnvironment(t *testing.T) {
	// A site certifies with MSH-11 T, goes live and restarts its control IDs: its first production
	// message is not a resend of a test message.
	e := newEngine(t, "production")
	b := siteB(e, t, "testing")
	_, testACK := b.send(t, vxu("ENV-1", "FAC-B", "T", ava, hepB))
	b.setSite(t, "production", time.Time{})
	prod := b.accept(t, b.vxu("ENV-1", ava, hepB))
	_, prodACK := b.send(t, b.vxu("ENV-1", ava, hepB))
	if bytes.Equal(testACK, prodACK) || prod.Get("MSH-11") != "P" {
		t.Fatalf("production message answered as a resend of the test one:\n%q\n%q", testACK, prodACK)
	}
	for env, want := range map[string]int{"T": 1, "P": 1} {
		if n := e.count(t, "vaccinations WHERE env = '"+env+"'"); n != want {
			t.Errorf("env %s: %d vaccinations, want %d", env, n, want)
		}
	}
}

// --- patient identity and linking ---

func TestRegistryPatientIdentity(t *testing.T) {
	e := newEngine(t, "production")
	a, b := e.siteA, siteB(e, t, "production")

	a.accept(t, a.vxu("ID-1", ava, hepB))
	// The same MRN value from another organization is another patient.
	other := child{mrn: ava.mrn, family: "Brown", given: "Liam", mother: "Green", dob: "20190707", sex: "M", street: "1 Oak Road", zip: "02139"}
	b.accept(t, b.vxu("ID-2", other, dose{order: "ORD-1^CLINIC", date: "20240301", cvx: "08", text: "Hep B"}))
	if ra, rb := a.registryID(t, ava.mrn), b.registryID(t, ava.mrn); ra == rb || ra == 0 || rb == 0 {
		t.Fatalf("MRN %s of two organizations: registry patients %d and %d", ava.mrn, ra, rb)
	}
	// The same value under another assigning authority is another identifier of the sender's
	// (here: of the same child, whom the demographics then link).
	ava2 := ava
	ava2.authority = "OTHER-EHR"
	a.accept(t, a.vxu("ID-3", ava2, dose{order: "ORD-2^CLINIC", date: "20240401", cvx: "20", text: "DTaP"}))
	if n := e.count(t, "patients WHERE organization_id = "+fmt.Sprint(a.org)); n != 2 {
		t.Fatalf("%d sender patients of ORG-A, want 2 (identifier + authority + type)", n)
	}
	rec := a.record(t, "P", ava.mrn)
	if len(rec.Senders) != 2 || len(rec.Doses()) != 2 {
		t.Errorf("registry patient: %d senders, %d doses; want 2 and 2", len(rec.Senders), len(rec.Doses()))
	}

	// A later message updates the demographics; the reported versions are kept.
	moved := ava
	moved.family, moved.street, moved.zip = "Smith-Jones", "7 Harbor Avenue", "02110"
	a.accept(t, a.vxu("ID-4", moved, hepB))
	rec = a.record(t, "P", ava.mrn)
	if rec.FamilyName != "Smith-Jones" || rec.PostalCode != "02110" {
		t.Errorf("registry demographics %q %q, want the latest report's", rec.FamilyName, rec.PostalCode)
	}
	var sp *store.SenderPatient
	for i := range rec.Senders {
		if rec.Senders[i].Identifier.Authority == "CLINIC" {
			sp = &rec.Senders[i]
		}
	}
	if sp == nil || sp.Reports != 2 || sp.Demographics.LegalName().Family != "Smith-Jones" {
		t.Fatalf("sender patient: %+v", sp)
	}
	// Every reported version is kept: the archived messages the sender patient references, in order.
	var versions []string
	rows, err := e.db.Pool.Query(context.Background(), `SELECT m.raw, coalesce(m.charset, '')
		FROM patients p, unnest(p.report_messages) WITH ORDINALITY AS r(id, i) JOIN messages m ON m.id = r.id
		WHERE p.id = $1 ORDER BY r.i`, sp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var raw []byte
		var charset string
		if err := rows.Scan(&raw, &charset); err != nil {
			t.Fatal(err)
		}
		v, err := ingest.DecodeArchived(raw, charset, nil)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v.Patient.LegalName().Family)
	}
	if strings.Join(versions, ",") != "Smith,Smith-Jones" {
		t.Errorf("reported versions %v, want Smith then Smith-Jones", versions)
	}
	if len(rec.Doses()) != 2 {
		t.Errorf("%d doses after the update, want 2 (the HepB report was the same dose)", len(rec.Doses()))
	}
}

func TestRegistryLinking(t *testing.T) {
	// ORG-A reports base; ORG-B then reports variant under its own MRN.
	base := child{mrn: "A-1", family: "Müller", given: "Jürgen", mother: "O'Brien", dob: "20190402", sex: "M",
		street: "12 Elm Street", zip: "01101"}
	with := func(f func(c *child)) child {
		c := base
		c.mrn = "B-1"
		f(&c)
		return c
	}
	cases := []struct {
		name    string
		variant child
		linked  bool
		review  bool
	}{
		{"mother's maiden name agrees", with(func(c *child) { c.street, c.zip = "", "" }), true, false},
		{"case, diacritics and punctuation differ", with(func(c *child) {
			c.family, c.given, c.mother, c.street = "MULLER", "JURGEN", "OBRIEN", "12 ELM ST."
		}), true, false},
		{"address agrees, no mother's maiden name", with(func(c *child) { c.mother = "" }), true, false},
		{"name and birth date only", with(func(c *child) { c.mother, c.street, c.zip = "", "", "" }), false, true},
		{"other address, no mother's maiden name", with(func(c *child) { c.mother, c.street, c.zip = "", "9 Pine Lane", "01060" }), false, true},
		{"mother's maiden name conflicts", with(func(c *child) { c.mother = "Kowalski" }), false, true},
		{"sex conflicts", with(func(c *child) { c.sex = "F" }), false, true},
		{"twin with another given name", with(func(c *child) { c.given = "Jonas" }), false, false},
		{"other birth date", with(func(c *child) { c.dob = "20190403" }), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, "production")
			a, b := e.siteA, siteB(e, t, "production")
			a.accept(t, a.vxu("L-1", base, dose{order: "A-ORD-1^CLINIC", date: "20240301", cvx: "08", text: "Hep B"}))
			b.accept(t, b.vxu("L-2", c.variant, dose{order: "B-ORD-1^CLINIC", date: "20240401", cvx: "20", text: "DTaP"}))
			ra, rb := a.registryID(t, "A-1"), b.registryID(t, "B-1")
			if (ra == rb) != c.linked {
				t.Fatalf("registry patients %d and %d: linked = %v, want %v", ra, rb, ra == rb, c.linked)
			}
			reviews, err := e.db.OpenReviews(context.Background(), "P")
			if err != nil {
				t.Fatal(err)
			}
			if (len(reviews) > 0) != c.review {
				t.Fatalf("%d open reviews, want review = %v", len(reviews), c.review)
			}
			if c.review {
				r := reviews[0]
				if r.Kind != "possible-duplicate" || r.RegistryPatientID != rb || len(r.Candidates) != 1 || r.Candidates[0] != ra {
					t.Errorf("review %+v, want ORG-B's patient %d with candidate %d", r, rb, ra)
				}
				// The evidence names fields, never the patient's data.
				var ev struct {
					Candidates []struct {
						Match string `json:"match"`
					} `json:"candidates"`
				}
				if err := json.Unmarshal(r.Evidence, &ev); err != nil || len(ev.Candidates) != 1 || ev.Candidates[0].Match != "weak" {
					t.Errorf("review evidence %s (%v)", r.Evidence, err)
				}
				for _, v := range []string{"Müller", "Muller", "muller", "Jürgen", "Brien", "Elm", "01101"} {
					if strings.Contains(string(r.Evidence), v) {
						t.Errorf("review evidence contains patient data: %s", r.Evidence)
					}
				}
				// Both records show the open review.
				if rec := a.record(t, "P", "A-1"); len(rec.Reviews) != 1 {
					t.Errorf("candidate's record lists %d reviews, want 1", len(rec.Reviews))
				}
			}
			if c.linked {
				rec := a.record(t, "P", "A-1")
				orgs := map[string]string{}
				for _, v := range rec.Vaccinations {
					orgs[v.CVX] = v.Source.OrganizationCode + "/" + v.Source.SiteCode
				}
				if len(rec.Senders) != 2 || orgs["08"] != "ORG-A/SITE-A" || orgs["20"] != "ORG-B/SITE-B" {
					t.Errorf("linked record: %d senders, vaccination sources %v", len(rec.Senders), orgs)
				}
			}
		})
	}

	t.Run("several candidates", func(t *testing.T) {
		e := newEngine(t, "production")
		a, b, c := e.siteA, siteB(e, t, "production"), siteC(e, t, "production")
		// Two registry patients of the same name and birth date that the rules could not link ...
		p1 := base
		p1.mother = ""
		p2 := p1
		p2.mrn, p2.street, p2.zip = "C-1", "3 Mill Road", "01060"
		a.accept(t, a.vxu("M-1", p1, dose{order: "A-ORD-1^CLINIC", date: "20240301", cvx: "08", text: "Hep B"}))
		c.accept(t, c.vxu("M-2", p2, dose{order: "C-ORD-1^CLINIC", date: "20240302", cvx: "20", text: "DTaP"}))
		// ... and a third report that agrees with the first on the address: still ambiguous.
		p3 := base
		p3.mrn = "B-1"
		b.accept(t, b.vxu("M-3", p3, dose{order: "B-ORD-1^CLINIC", date: "20240303", cvx: "03", text: "MMR"}))
		ra, rb, rc := a.registryID(t, "A-1"), b.registryID(t, "B-1"), c.registryID(t, "C-1")
		if ra == rb || rb == rc || ra == rc {
			t.Fatalf("registry patients %d %d %d: an ambiguous report was merged", ra, rb, rc)
		}
		reviews, err := e.db.OpenReviews(context.Background(), "P")
		if err != nil {
			t.Fatal(err)
		}
		if len(reviews) != 2 {
			t.Fatalf("%d reviews, want 2", len(reviews))
		}
		last := reviews[1]
		if last.RegistryPatientID != rb || fmt.Sprint(last.Candidates) != fmt.Sprint([]int64{ra, rc}) {
			t.Errorf("review %+v, want patient %d with candidates [%d %d]", last, rb, ra, rc)
		}
	})
}

func TestRegistryLinkingConcurrent(t *testing.T) {
	// Two organizations report the same new children at the same moment, each on one pipelined
	// connection: their messages land in batches of different writer shards that are in flight
	// together. The linking lock must still make one registry patient of each child.
	e := newEngine(t, "production")
	a, b := e.siteA, siteB(e, t, "production")
	const children = 64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for j, s := range []*sender{a, b} {
		var opts []mllp.DialOption
		if s.local != "" {
			opts = append(opts, mllp.WithDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(s.local)}}))
		}
		conn, err := mllp.Dial(ctx, e.addr, nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var msgs [][]byte
		for i := range children {
			c := child{mrn: mrnOf(j, i), family: "Fam" + letters(i), given: "Noah",
				mother: "Rivera", dob: "20210610", sex: "M"}
			msgs = append(msgs, s.vxu(fmt.Sprintf("LC-%d", i), c,
				dose{order: fmt.Sprintf("ORD-%d^CLINIC", i), date: "20240301", cvx: "08", text: "Hep B"}))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := conn.SendPipelined(ctx, slices.Values(msgs), children, func(i int, raw []byte, _ time.Duration) {
				if m, err := hl7.Parse(raw); err != nil || m.Get("MSA-1") == ack.AR {
					t.Errorf("%s message %d: %q", s.code, i, raw)
				}
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range children {
		ra, rb := a.registryID(t, mrnOf(0, i)), b.registryID(t, mrnOf(1, i))
		if ra == 0 || ra != rb {
			t.Errorf("child %d: registry patients %d and %d, want one", i, ra, rb)
		}
	}
	if n := e.count(t, "registry_patients"); n != children {
		t.Errorf("%d registry patients, want %d", n, children)
	}
	if n := e.count(t, "registry_reviews"); n != 0 {
		t.Errorf("%d reviews, want none", n)
	}
}

// mrnOf is organization j's MRN of child i. ORG-B's numbering differs from ORG-A's so that the
// pairs spread over the writer's shards (which hash organization and MRN).
func mrnOf(j, i int) string {
	if j == 0 {
		return fmt.Sprintf("A-%d", i)
	}
	return fmt.Sprintf("B-%d", i*7+3)
}

// letters names i with letters only (names are compared without digits).
func letters(i int) string {
	return string(rune('a'+i/26%26)) + string(rune('a'+i%26))
}

// --- vaccination identity and RXA-21 ---

func TestRegistryVaccinationActions(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	lot := func(rec *store.PatientRecord) []string {
		var out []string
		for _, v := range rec.Doses() {
			out = append(out, v.CVX+":"+v.Lot)
		}
		return out
	}
	with := func(d dose, f func(*dose)) dose { f(&d); return d }

	t.Run("by order number", func(t *testing.T) {
		a.accept(t, a.vxu("V-1", ava, with(hepB, func(d *dose) { d.lot = "L1" })))
		a.accept(t, a.vxu("V-2", ava, with(hepB, func(d *dose) { d.lot = "L2"; d.action = "U" })))
		if got := lot(a.record(t, "P", ava.mrn)); fmt.Sprint(got) != "[08:L2]" {
			t.Fatalf("after U: %v, want [08:L2]", got)
		}
		// A for a dose the registry has is an update, not a second dose.
		a.accept(t, a.vxu("V-3", ava, with(hepB, func(d *dose) { d.lot = "L3" })))
		rec := a.record(t, "P", ava.mrn)
		if got := lot(rec); fmt.Sprint(got) != "[08:L3]" || rec.Doses()[0].Reports != 3 {
			t.Fatalf("after A again: %v (%d reports), want [08:L3] with 3 reports", got, rec.Doses()[0].Reports)
		}
		// U may correct the date: identity is the order number.
		a.accept(t, a.vxu("V-4", ava, with(hepB, func(d *dose) { d.lot = "L3"; d.date = "20240302"; d.action = "U" })))
		if d := a.record(t, "P", ava.mrn).Doses(); len(d) != 1 || d[0].AdministeredOn.Format("20060102") != "20240302" {
			t.Fatalf("after U of the date: %+v", d)
		}
		a.accept(t, a.vxu("V-5", ava, with(hepB, func(d *dose) { d.date = "20240302"; d.action = "D" })))
		if d := a.record(t, "P", ava.mrn).Doses(); len(d) != 0 {
			t.Fatalf("after D: %d doses shown, want 0", len(d))
		}
		var deleted bool
		var reports int
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT deleted, cardinality(report_messages)
			FROM vaccinations v WHERE filler_order_id = 'ORD-1^CLINIC'`).Scan(&deleted, &reports); err != nil {
			t.Fatal(err)
		}
		if !deleted || reports != 5 {
			t.Errorf("deleted vaccination: deleted %v with %d reports; want it kept, marked, with all 5", deleted, reports)
		}
		// D of something the registry does not have changes nothing.
		before := e.snapshot(t)
		a.accept(t, a.vxu("V-6", ava, dose{order: "ORD-404^CLINIC", date: "20240101", cvx: "20", text: "DTaP", action: "D"}))
		after := e.snapshot(t)
		after["patient_reports"]-- // the message itself is a report of the patient
		sameCounts(t, "D of an unknown dose", before, after)
	})

	t.Run("without order number", func(t *testing.T) {
		c := ava
		c.mrn, c.given = "MRN-2", "Mia"
		mmr := dose{date: "20240310", cvx: "03", text: "MMR", lot: "M1"}
		a.accept(t, a.vxu("W-1", c, mmr))
		a.accept(t, a.vxu("W-2", c, with(mmr, func(d *dose) { d.lot = "M2"; d.action = "U" })))
		a.accept(t, a.vxu("W-3", c, with(mmr, func(d *dose) { d.lot = "M3" })))
		if got := lot(a.record(t, "P", c.mrn)); fmt.Sprint(got) != "[03:M3]" {
			t.Fatalf("patient + CVX + date identity: %v, want [03:M3]", got)
		}
		a.accept(t, a.vxu("W-4", c, with(mmr, func(d *dose) { d.action = "D" })))
		if d := a.record(t, "P", c.mrn).Doses(); len(d) != 0 {
			t.Fatalf("after D: %d doses", len(d))
		}
		// U of a dose the registry does not have adds it.
		a.accept(t, a.vxu("W-5", c, dose{date: "20240311", cvx: "20", text: "DTaP", action: "U"}))
		if got := lot(a.record(t, "P", c.mrn)); len(got) != 1 || !strings.HasPrefix(got[0], "20:") {
			t.Fatalf("U of an unknown dose: %v, want it added", got)
		}
	})

	t.Run("order number reused for another patient", func(t *testing.T) {
		c1, c2 := ava, ava
		c1.mrn, c1.given = "MRN-3", "Ivy"
		c2.mrn, c2.given, c2.dob = "MRN-4", "Leo", "20180101"
		d := dose{order: "ORD-77^CLINIC", date: "20240315", cvx: "20", text: "DTaP"}
		a.accept(t, a.vxu("R-1", c1, d))
		a.accept(t, a.vxu("R-2", c2, d))
		if n1, n2 := len(a.record(t, "P", c1.mrn).Doses()), len(a.record(t, "P", c2.mrn).Doses()); n1 != 1 || n2 != 1 {
			t.Fatalf("doses %d and %d, want 1 each: a dose must not move between children", n1, n2)
		}
		if n := e.count(t, "registry_reviews WHERE kind = 'order-number-conflict'"); n != 1 {
			t.Errorf("%d order-number reviews, want 1", n)
		}
	})
}

func TestRegistryHistoricalAdministeredMerge(t *testing.T) {
	// ORG-B reports a historical HepB (unspecified formulation, CVX 45); ORG-A administered the
	// pediatric HepB (CVX 08) that day. One dose, the administered report wins.
	kid := child{family: "Nguyen", given: "Anh", mother: "Tran", dob: "20230105", sex: "F"}
	hist := dose{order: "H-1^CLINIC", date: "20240301", cvx: "45", text: "Hep B, unspecified formulation", historical: true}
	given := dose{order: "G-1^CLINIC", date: "20240301", cvx: "08", text: "Hep B, adolescent or pediatric"}
	check := func(t *testing.T, rec *store.PatientRecord, cvx, org string, historical bool, merged int) {
		t.Helper()
		d := rec.Doses()
		if len(d) != 1 {
			t.Fatalf("%d doses shown, want 1: %+v", len(d), d)
		}
		if d[0].CVX != cvx || d[0].Source.OrganizationCode != org || d[0].Historical != historical || len(d[0].Merged) != merged {
			t.Errorf("dose %s from %s historical %v with %d merged; want %s from %s historical %v with %d",
				d[0].CVX, d[0].Source.OrganizationCode, d[0].Historical, len(d[0].Merged), cvx, org, historical, merged)
		}
	}

	for _, order := range []string{"historical first", "administered first"} {
		t.Run(order, func(t *testing.T) {
			e := newEngine(t, "production")
			a, b := e.siteA, siteB(e, t, "production")
			ka, kb := kid, kid
			ka.mrn, kb.mrn = "A-1", "B-1"
			if order == "historical first" {
				b.accept(t, b.vxu("H-1", kb, hist))
				a.accept(t, a.vxu("G-1", ka, given))
			} else {
				a.accept(t, a.vxu("G-1", ka, given))
				b.accept(t, b.vxu("H-1", kb, hist))
			}
			rec := a.record(t, "P", "A-1")
			check(t, rec, "08", "ORG-A", false, 1)
			if m := rec.Doses()[0].Merged[0]; m.Source.OrganizationCode != "ORG-B" || !m.Historical {
				t.Errorf("merged report %+v, want ORG-B's historical one", m)
			}
			// A further historical report of it, by ORG-A itself, merges too.
			a.accept(t, a.vxu("G-2", ka, dose{date: "20240301", cvx: "08", text: "Hep B", historical: true}))
			check(t, a.record(t, "P", "A-1"), "08", "ORG-A", false, 2)

			// The administered report entered in error: the historical reports are what is left.
			a.accept(t, a.vxu("G-3", ka, dose{order: "G-1^CLINIC", date: "20240301", cvx: "08", text: "Hep B", action: "D"}))
			check(t, a.record(t, "P", "A-1"), "45", "ORG-B", true, 1)
			// ORG-B's own update of its historical report still finds it.
			b.accept(t, b.vxu("H-2", kb, dose{order: "H-1^CLINIC", date: "20240301", cvx: "08", text: "Hep B", historical: true, action: "U"}))
			check(t, a.record(t, "P", "A-1"), "08", "ORG-B", true, 1)
		})
	}

	t.Run("same sender, no order numbers", func(t *testing.T) {
		e := newEngine(t, "production")
		a := e.siteA
		k := kid
		k.mrn = "A-1"
		a.accept(t, a.vxu("S-1", k, dose{date: "20240301", cvx: "08", text: "Hep B", historical: true}))
		a.accept(t, a.vxu("S-2", k, dose{date: "20240301", cvx: "08", text: "Hep B", lot: "ADM1"}))
		check(t, a.record(t, "P", "A-1"), "08", "ORG-A", false, 1)
		if d := a.record(t, "P", "A-1").Doses()[0]; d.Lot != "ADM1" {
			t.Errorf("lot %q, want the administered report's", d.Lot)
		}
	})

	t.Run("administered reports are not merged", func(t *testing.T) {
		e := newEngine(t, "production")
		a, b := e.siteA, siteB(e, t, "production")
		ka, kb := kid, kid
		ka.mrn, kb.mrn = "A-1", "B-1"
		a.accept(t, a.vxu("X-1", ka, given))
		b.accept(t, b.vxu("X-2", kb, given))
		if d := a.record(t, "P", "A-1").Doses(); len(d) != 2 {
			t.Errorf("%d doses, want both organizations' administered reports", len(d))
		}
	})
}

// --- refusals, immunity, next of kin, observations ---

func TestRegistryRefusalAndImmunity(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	// The guide's ORC-3 for a dose not given is 9999: two children's refusals are two records.
	refusal := dose{order: "9999^CLINIC", date: "20240301", cvx: "107", text: "DTaP, unspecified formulation", status: "RE", refusal: "00"}
	k1, k2 := ava, ava
	k2.mrn, k2.given = "MRN-2", "Eli"
	a.accept(t, a.vxu("RF-1", k1, refusal))
	a.accept(t, a.vxu("RF-2", k2, refusal))
	for _, mrn := range []string{k1.mrn, k2.mrn} {
		rec := a.record(t, "P", mrn)
		if r := rec.Refusals(); len(r) != 1 || r[0].RefusalReason != "00" || r[0].CVX != "107" || len(rec.Doses()) != 0 {
			t.Errorf("%s: refusals %+v, %d doses; want one refusal (reason 00), no dose", mrn, r, len(rec.Doses()))
		}
		// A refusal is an immunization encounter: the default status applies.
		if rec.Sharing != "Y" {
			t.Errorf("%s: sharing %s, want Y", mrn, rec.Sharing)
		}
	}
	if n := e.count(t, "registry_reviews"); n != 0 {
		t.Errorf("%d reviews: the ORC-3 placeholder was taken for an identity", n)
	}

	k3 := ava
	k3.mrn, k3.given = "MRN-3", "Ada"
	immune := dose{order: "9999^CLINIC", date: "20240305", cvx: "998", text: "No vaccine administered",
		obx: []string{`1|CE|59784-9^Disease with presumed immunity^LN|1|38907003^History of varicella infection^SCT||||||F`}}
	a.accept(t, a.vxu("IM-1", k3, immune))
	rec := a.record(t, "P", k3.mrn)
	im := rec.Immunities()
	if len(im) != 1 || len(rec.Doses()) != 0 {
		t.Fatalf("immunities %+v, %d doses; want one immunity, no dose", im, len(rec.Doses()))
	}
	if len(im[0].Observations) != 1 || im[0].Observations[0].Value.Code != "38907003" {
		t.Errorf("immunity evidence %+v, want 38907003", im[0].Observations)
	}
	// 998 without evidence of immunity records nothing.
	k4 := ava
	k4.mrn, k4.given = "MRN-4", "Kai"
	a.accept(t, a.vxu("IM-2", k4, dose{order: "9999^CLINIC", date: "20240305", cvx: "998", text: "No vaccine administered", obx: []string{}}))
	if v := a.record(t, "P", k4.mrn).Vaccinations; len(v) != 0 {
		t.Errorf("998 without evidence recorded %+v", v)
	}
}

func TestRegistryMixedMessage(t *testing.T) {
	// One message with a historical MMR, a refused influenza vaccine (ORC-3 9999) and evidence of
	// varicella immunity: one dose, one refusal, one immunity.
	e := newEngine(t, "production")
	a := e.siteA
	m := a.accept(t, fixture(t, "vxu_history_refusal_immunity.hl7"))
	if m.Get("MSA-1") != ack.AA {
		t.Errorf("MSA-1 = %s; ERR %v", m.Get("MSA-1"), errTexts(m))
	}
	rec := a.record(t, "P", "MRN-7001")
	kinds := map[string]string{}
	for _, v := range rec.Vaccinations {
		kinds[v.Kind] += v.CVX
	}
	if len(rec.Vaccinations) != 3 || kinds["dose"] != "03" || kinds["refusal"] != "88" || kinds["immunity"] != "998" {
		t.Errorf("vaccinations by kind %v, want dose 03, refusal 88, immunity 998", kinds)
	}
	if d := rec.Doses(); len(d) != 1 || !d[0].Historical || d[0].InfoSource != "01" {
		t.Errorf("doses %+v, want the historical MMR", d)
	}
	// The refusal and the immunity are encounters of this sender: the default status applies.
	if rec.Sharing != "Y" || rec.FamilyName != "Okafor" || rec.Senders[0].NextOfKin[0].Name.Given != "Ngozi" {
		t.Errorf("sharing %s, family %q, next of kin %+v", rec.Sharing, rec.FamilyName, rec.Senders[0].NextOfKin)
	}
}

func TestRegistryNextOfKinAndObservations(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	k := ava
	k.nk1Family, k.nk1Given = "Smith", "Maria"
	// Patient-level OBX (before any order): out of the Z22 order (a warning), stored all the same.
	k.patientOBX = []string{`1|CE|64994-7^Vaccine funding program eligibility category^LN|1|V03^VFC eligible - Uninsured^HL70064||||||F|||20240301|||VXC40^Eligibility captured at the immunization level^CDCPHINVS`}
	a.accept(t, a.vxu("NK-1", k, hepB))
	rec := a.record(t, "P", k.mrn)
	s := rec.Senders[0]
	if len(s.NextOfKin) != 1 || s.NextOfKin[0].Name.Given != "Maria" || s.NextOfKin[0].Relationship.Code != "MTH" {
		t.Errorf("next of kin %+v", s.NextOfKin)
	}
	if len(s.Observations) != 1 || s.Observations[0].Value.Code != "V03" {
		t.Errorf("patient observations %+v, want funding eligibility V03", s.Observations)
	}
	obs := map[string]string{}
	for _, o := range rec.Doses()[0].Observations {
		obs[o.Identifier.Code] = o.Value.Code
	}
	if obs["64994-7"] != "V02" || obs["29768-9"] != "20230512" || obs["29769-7"] != "20240301" {
		t.Errorf("dose observations %v, want funding V02 and the VIS dates", obs)
	}
	// An update replaces what is shown (the latest report) and keeps what was reported before.
	k.nk1Given = "Maria Elena"
	a.accept(t, a.vxu("NK-2", k, hepB))
	rec = a.record(t, "P", k.mrn)
	if nk := rec.Senders[0].NextOfKin; len(nk) != 1 || nk[0].Name.Given != "Maria Elena" {
		t.Errorf("next of kin after update %+v", nk)
	}
	// Both reports are kept: the sender patient references both messages, each with its NK1.
	if n := e.count(t, "patients, unnest(report_messages) AS r(id) JOIN messages m ON m.id = r.id WHERE position('NK1|' in encode(m.raw, 'escape')) > 0"); n != 2 {
		t.Errorf("%d reports with next of kin, want both", n)
	}
	if len(rec.Doses()[0].Observations) != 4 {
		t.Errorf("%d observations shown for the dose, want the latest report's 4", len(rec.Doses()[0].Observations))
	}
}

// --- data sharing ---

func TestRegistryDataSharing(t *testing.T) {
	ctx := context.Background()
	historical := dose{order: "H-1^CLINIC", date: "20210301", cvx: "45", text: "Hep B, unspecified formulation", historical: true}
	history := func(rec *store.PatientRecord) string {
		var out []string
		for _, c := range rec.SharingHistory {
			out = append(out, c.OldStatus+">"+c.NewStatus+" "+c.Source)
		}
		return strings.Join(out, ", ")
	}
	audited := func(t *testing.T, e *engine, regID int64) int {
		t.Helper()
		var n int
		if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'patient.set_sharing'
			AND target_type = 'patient' AND target_id = $1`, fmt.Sprint(regID)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("default Yes", func(t *testing.T) {
		e := newEngine(t, "production")
		a := e.siteA
		a.accept(t, a.vxu("D-1", ava, hepB))
		if rec := a.record(t, "P", ava.mrn); rec.Sharing != "Y" || history(rec) != ">Y policy" {
			t.Errorf("sharing %s, history %q", rec.Sharing, history(rec))
		}
	})

	t.Run("before go-live Unknown, then an encounter", func(t *testing.T) {
		e := newEngine(t, "production")
		a := e.siteA
		a.setSite(t, "production", time.Now().AddDate(0, 1, 0))
		a.accept(t, a.vxu("G-1", ava, hepB))
		rec := a.record(t, "P", ava.mrn)
		if rec.Sharing != "U" || len(rec.SharingHistory) != 1 || !strings.Contains(rec.SharingHistory[0].Reason, "go-live") {
			t.Fatalf("backload: sharing %s, history %+v; want U for the go-live", rec.Sharing, rec.SharingHistory)
		}
		// More backload changes nothing; an encounter after go-live makes it Yes, audited.
		a.accept(t, a.vxu("G-2", ava, dose{order: "ORD-2^CLINIC", date: "20240305", cvx: "20", text: "DTaP"}))
		if rec := a.record(t, "P", ava.mrn); rec.Sharing != "U" {
			t.Fatalf("second backload message: sharing %s", rec.Sharing)
		}
		a.setSite(t, "production", time.Now().AddDate(0, 0, -1))
		a.accept(t, a.vxu("G-3", ava, dose{order: "ORD-3^CLINIC", date: "20240401", cvx: "03", text: "MMR"}))
		rec = a.record(t, "P", ava.mrn)
		if rec.Sharing != "Y" || history(rec) != ">U policy, U>Y policy" || audited(t, e, rec.ID) != 1 {
			t.Errorf("after go-live: sharing %s, history %q, %d audit entries", rec.Sharing, history(rec), audited(t, e, rec.ID))
		}
	})

	t.Run("historical only Unknown", func(t *testing.T) {
		e := newEngine(t, "production")
		a, b := e.siteA, siteB(e, t, "production")
		a.accept(t, a.vxu("HO-1", ava, historical))
		if rec := a.record(t, "P", ava.mrn); rec.Sharing != "U" {
			t.Fatalf("historical only: sharing %s, want U", rec.Sharing)
		}
		// Another organization's administered dose is an immunization encounter.
		kb := ava
		kb.mrn = "B-1"
		b.accept(t, b.vxu("HO-2", kb, hepB))
		rec := a.record(t, "P", ava.mrn)
		if rec.Sharing != "Y" || len(rec.Senders) != 2 || audited(t, e, rec.ID) != 1 {
			t.Errorf("after an encounter: sharing %s, %d senders, %d audit entries", rec.Sharing, len(rec.Senders), audited(t, e, rec.ID))
		}
		// A historical report for a patient who is Yes changes nothing.
		k2 := ava
		k2.mrn = "MRN-9"
		a.accept(t, a.vxu("HO-3", k2, historical))
		if rec := a.record(t, "P", "MRN-9"); rec.Sharing != "Y" || rec.ID != a.registryID(t, ava.mrn) {
			t.Errorf("historical report of a known patient: sharing %s (patient %d)", rec.Sharing, rec.ID)
		}
	})

	for _, policy := range []ingest.SharingPolicy{ingest.SharingPolicyMA, ingest.SharingPolicyPD1} {
		for _, pd1 := range []string{"Y", "N"} {
			t.Run(fmt.Sprintf("policy %s PD1-12 %s", policy, pd1), func(t *testing.T) {
				e := newEngine(t, "production", withSharingPolicy(policy))
				a := e.siteA
				k := ava
				k.protection = pd1
				m := a.accept(t, a.vxu("P-1", k, hepB))
				rec := a.record(t, "P", k.mrn)
				if rec.Senders[0].Protection != pd1 {
					t.Errorf("PD1-12 recorded as %q", rec.Senders[0].Protection)
				}
				sev := errAt(m, "PD1", 12)
				wantStatus, wantSev := "Y", ""
				switch {
				case policy == ingest.SharingPolicyMA && pd1 == "Y":
					// The objection is not taken from HL7: the sender is told to use the form.
					wantSev = "W"
				case policy == ingest.SharingPolicyMA:
					wantSev = "I"
				case pd1 == "Y":
					wantStatus = "N"
				}
				if strings.Join(sev, ",") != wantSev {
					t.Errorf("ERR at PD1-12: %v, want %q; all: %v", sev, wantSev, errTexts(m))
				}
				if wantSev == "W" && m.Get("MSA-1") != ack.AE {
					t.Errorf("MSA-1 = %s, want AE for the warning", m.Get("MSA-1"))
				}
				if wantSev == "I" && m.Get("MSA-1") != ack.AA {
					t.Errorf("MSA-1 = %s, want AA (information only); ERR: %v", m.Get("MSA-1"), errTexts(m))
				}
				if rec.Sharing != wantStatus {
					t.Errorf("new patient: sharing %s, want %s", rec.Sharing, wantStatus)
				}

				// An existing patient: set the other status (as registry staff would), then the
				// same PD1-12 again.
				other := map[string]string{"Y": "N", "N": "Y"}[rec.Sharing]
				if _, err := e.db.Pool.Exec(ctx, `UPDATE registry_patients SET sharing = $2 WHERE id = $1`, rec.ID, other); err != nil {
					t.Fatal(err)
				}
				before := audited(t, e, rec.ID)
				a.accept(t, a.vxu("P-2", k, hepB))
				rec = a.record(t, "P", k.mrn)
				want := other // the default policy never changes the status through HL7
				if policy == ingest.SharingPolicyPD1 {
					want = map[string]string{"Y": "N", "N": "Y"}[pd1]
				}
				if rec.Sharing != want {
					t.Errorf("existing patient at %s: sharing %s after PD1-12 %s, want %s", other, rec.Sharing, pd1, want)
				}
				if changed := want != other; changed != (audited(t, e, rec.ID) == before+1) {
					t.Errorf("status change %v but %d new audit entries", changed, audited(t, e, rec.ID)-before)
				}
				if policy == ingest.SharingPolicyPD1 && want != other {
					last := rec.SharingHistory[len(rec.SharingHistory)-1]
					if last.Source != "hl7" || last.MessageID == nil || !strings.Contains(last.Reason, "PD1-12") {
						t.Errorf("sharing change %+v, want one from hl7 naming PD1-12 and the message", last)
					}
				}
			})
		}
	}
}

// --- environments ---

func TestRegistryEnvironments(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	b := siteB(e, t, "testing")
	c := e.addSite(t, siteSpec{org: "ORG-C", code: "SITE-C", status: "registered", facilities: []string{"FAC-C"}, addr: "127.0.0.3"})

	rejected := []struct {
		name string
		s    *sender
		proc string
	}{
		{"P from a testing site", b, "P"},
		{"T from a production site", a, "T"},
		{"D from a production site", a, "D"},
		{"D from a testing site", b, "D"},
		{"T from a registered site", c, "T"},
		{"P from a registered site", c, "P"},
		{"empty processing ID", a, ""},
	}
	for i, r := range rejected {
		t.Run(r.name, func(t *testing.T) {
			m, _ := r.s.send(t, vxu(fmt.Sprintf("E-R%d", i), r.s.facility(), r.proc, ava, hepB))
			if m.Get("MSA-1") != ack.AR || fmt.Sprint(errCodes(m)) != "[202]" {
				t.Errorf("MSA-1 %s, ERR %v; want AR 202", m.Get("MSA-1"), errTexts(m))
			}
		})
	}
	if n := e.count(t, "vaccinations"); n != 0 {
		t.Fatalf("rejected messages stored %d vaccinations", n)
	}

	// The same child from the testing site (T) and from the production site (P): two worlds.
	kb := ava
	kb.mrn = "B-1"
	tm, _ := b.send(t, vxu("E-T1", "FAC-B", "T", kb, dose{order: "B-ORD^CLINIC", date: "20240301", cvx: "20", text: "DTaP"}))
	if code := tm.Get("MSA-1"); code == ack.AR || tm.Get("MSH-11") != "T" {
		t.Fatalf("test message: MSA-1 %s, MSH-11 %s; ERR %v", code, tm.Get("MSH-11"), errTexts(tm))
	}
	a.accept(t, a.vxu("E-P1", ava, hepB))
	test, prod := b.record(t, "T", "B-1"), a.record(t, "P", ava.mrn)
	if test.ID == prod.ID || test.Env != "T" || prod.Env != "P" {
		t.Fatalf("registry patients %d (%s) and %d (%s)", test.ID, test.Env, prod.ID, prod.Env)
	}
	if len(test.Senders) != 1 || len(prod.Senders) != 1 || len(test.Vaccinations) != 1 || len(prod.Vaccinations) != 1 ||
		test.Vaccinations[0].Source.SiteCode != "SITE-B" || prod.Vaccinations[0].Source.SiteCode != "SITE-A" {
		t.Errorf("test and production records mixed: test %+v, production %+v", test.Senders, prod.Senders)
	}
	if _, err := e.db.RegistryPatientID(context.Background(), "P", b.org, ingest.Identifier{Value: "B-1", Authority: "CLINIC", Type: "MR"}); !errors.Is(err, store.ErrPatientNotFound) {
		t.Errorf("the test patient is visible in production: %v", err)
	}
	for _, tbl := range []string{"patients", "registry_patients", "vaccinations"} {
		if n := e.count(t, tbl+" WHERE env = 'T'"); n != 1 {
			t.Errorf("%s: %d test rows, want 1", tbl, n)
		}
	}
	if n := e.count(t, "messages WHERE env = 'T' AND resend_key"); n != 1 {
		t.Errorf("%d test messages archived as accepted, want 1", n)
	}
}

// --- the writer under conflict ---

func TestRegistryWriterRetriesTransientFailure(t *testing.T) {
	// A conflict with a concurrent transaction (here a deadlock, injected once) fails the batch;
	// its records are written again one by one, and every sender gets its real answer.
	e := newEngine(t, "production")
	a := e.siteA
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `
		CREATE SEQUENCE injected;
		CREATE FUNCTION deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.lot = 'RETRY' AND nextval('injected') = 1 THEN
				RAISE EXCEPTION 'injected deadlock' USING ERRCODE = '40P01';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER deadlock_once BEFORE INSERT ON vaccinations FOR EACH ROW EXECUTE FUNCTION deadlock_once();`); err != nil {
		t.Fatal(err)
	}
	// Pipelined on one connection, so that they share batches.
	var msgs [][]byte
	for i := range 6 {
		k := ava
		k.mrn, k.given = fmt.Sprintf("MRN-%d", i), fmt.Sprintf("Kid%c", 'A'+i)
		d := hepB
		d.order = fmt.Sprintf("ORD-%d^CLINIC", i)
		if i == 2 {
			d.lot = "RETRY"
		}
		msgs = append(msgs, a.vxu(fmt.Sprintf("T-%d", i), k, d))
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := mllp.Dial(cctx, e.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	codes := make([]string, len(msgs))
	seq := func(yield func([]byte) bool) {
		for _, m := range msgs {
			if !yield(m) {
				return
			}
		}
	}
	if err := c.SendPipelined(cctx, seq, len(msgs), func(i int, raw []byte, _ time.Duration) {
		if m, err := hl7.Parse(raw); err == nil {
			codes[i] = m.Get("MSA-1")
		}
	}); err != nil {
		t.Fatal(err)
	}
	for i, code := range codes {
		if code != ack.AA && code != ack.AE {
			t.Errorf("message %d: MSA-1 %q, want accepted after the retry", i, code)
		}
	}
	var injected int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT last_value FROM injected`).Scan(&injected); err != nil || injected < 2 {
		t.Errorf("the failure was not injected and retried (sequence at %d, %v)", injected, err)
	}
	if n := e.count(t, "vaccinations"); n != len(msgs) {
		t.Errorf("%d vaccinations, want %d (each once)", n, len(msgs))
	}
	if n := e.count(t, "messages"); n != len(msgs) {
		t.Errorf("%d messages archived, want %d", n, len(msgs))
	}
}

// TestRegistryUnknownKey (issue 13.4): RXA-21 U or D naming an order (ORC-3) the registry does
// not hold changes nothing and is answered with a warning (0357 code 204) that names it; the ACK
// is decided after the registry look-up and archived as sent, so a resend gets it too.
func TestRegistryUnknownKey(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	a.accept(t, a.vxu("UK-0", ava, hepB))
	ctx := context.Background()

	cases := []struct {
		name, ctrl string
		d          dose
		names      string // what the warning must name
	}{
		{"U of an unknown order", "UK-1", dose{order: "ORD-404^CLINIC", date: "20240301", cvx: "08", text: "Hep B", action: "U", lot: "L9"}, "ORD-404^CLINIC"},
		{"D of an unknown order", "UK-2", dose{order: "ORD-405^CLINIC", date: "20240301", cvx: "08", text: "Hep B", action: "D"}, "ORD-405^CLINIC"},
		{"D without order number of an unknown event", "UK-3", dose{date: "20240101", cvx: "20", text: "DTaP", action: "D"}, "20 of 20240101"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot(t)
			var lotBefore string
			if err := e.db.Pool.QueryRow(ctx, `SELECT lot FROM vaccinations WHERE filler_order_id = 'ORD-1^CLINIC'`).Scan(&lotBefore); err != nil {
				t.Fatal(err)
			}
			msg := a.vxu(c.ctrl, ava, c.d)
			m, first := a.send(t, msg)
			if m.Get("MSA-1") != ack.AE {
				t.Fatalf("MSA-1 = %s, want AE; ERR %v", m.Get("MSA-1"), errTexts(m))
			}
			got := errAtCode(m, "204")
			if len(got) != 1 || got[0] != "RXA^1^21^1 W" {
				t.Fatalf("204 findings %v, want one warning at RXA^1^21^1; ERR %v", got, errTexts(m))
			}
			if text := strings.Join(errTexts(m), "\n"); !strings.Contains(text, c.names) || !strings.Contains(text, "nothing was") {
				t.Errorf("the warning does not name %q or say nothing changed: %s", c.names, text)
			}
			after := e.snapshot(t)
			after["patient_reports"]-- // the message itself is a report of the patient
			sameCounts(t, c.name, before, after)
			var lot string
			var deleted bool
			if err := e.db.Pool.QueryRow(ctx, `SELECT lot, deleted FROM vaccinations WHERE filler_order_id = 'ORD-1^CLINIC'`).Scan(&lot, &deleted); err != nil {
				t.Fatal(err)
			}
			if lot != lotBefore || deleted {
				t.Errorf("the known dose changed: lot %q (was %q), deleted %v", lot, lotBefore, deleted)
			}
			// Archived as answered; a resend gets exactly that.
			var storedACK []byte
			var code, findings string
			if err := e.db.Pool.QueryRow(ctx, `SELECT ack, ack_code, findings::text FROM messages WHERE control_id = $1`, c.ctrl).
				Scan(&storedACK, &code, &findings); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(storedACK, first) || code != ack.AE || !strings.Contains(findings, `"code":204`) {
				t.Errorf("archive: ACK equal %v, code %s, findings %s", bytes.Equal(storedACK, first), code, findings)
			}
			if _, again := a.send(t, msg); !bytes.Equal(first, again) {
				t.Errorf("resend answered differently:\n%q\n%q", first, again)
			}
		})
	}
	t.Run("known and unknown in one message", func(t *testing.T) {
		before := e.count(t, "vaccinations")
		m := a.accept(t, a.vxu("UK-4", ava, dose{order: "ORD-406^CLINIC", date: "20240101", cvx: "20", text: "DTaP", action: "D"},
			dose{order: "ORD-7^CLINIC", date: "20240305", cvx: "20", text: "DTaP"}))
		if got := errAtCode(m, "204"); len(got) != 1 || got[0] != "RXA^1^21^1 W" {
			t.Errorf("204 findings %v", got)
		}
		if n := e.count(t, "vaccinations"); n != before+1 {
			t.Errorf("%d vaccinations, want %d: the known part of the message is stored", n, before+1)
		}
	})
	t.Run("U and D of a known order", func(t *testing.T) {
		for i, act := range []string{"U", "D"} {
			m := a.accept(t, a.vxu(fmt.Sprintf("UK-%d", 5+i), ava, with(hepB, func(d *dose) { d.action, d.lot = act, "L2" })))
			if got := errAtCode(m, "204"); len(got) != 0 {
				t.Errorf("%s of a known order warned 204: %v", act, errTexts(m))
			}
		}
	})
}

func with(d dose, f func(*dose)) dose { f(&d); return d }
