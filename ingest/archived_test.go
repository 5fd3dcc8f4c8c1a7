package ingest_test

import (
	"context"
	"testing"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
)

// TestArchivedFallbackReadsBackExactly: a message accepted through the fallback character set is
// archived with the fallback's name (messages.charset), and the patient record, read back from the
// archive, shows what was decoded when it was accepted — per sender, with that sender's fallback.
// A message that needed no fallback is archived without one.
func TestArchivedFallbackReadsBackExactly(t *testing.T) {
	e := newEngine(t, "production", withValidator(t, validate.Options{
		SenderCharset: map[string]string{"SITE-B": "8859/15"},
	}))
	siteB := e.addSite(t, siteSpec{org: "ORG-B", code: "SITE-B", status: "production", facilities: []string{"FAC-B"}, addr: "127.0.0.2"})
	ctx := context.Background()

	cases := []struct {
		send           func() *hl7.Message
		mrn, family    string
		given, charset string
	}{
		{func() *hl7.Message {
			a, _ := e.send(t, variant(t, "AR-1", "Müller^Jürgen", "Jos\xe9^Ren\xe9e"))
			return a
		},
			"MRN-1001", "José", "Renée", "windows-1252"},
		{func() *hl7.Message {
			a, _ := siteB.send(t, variant(t, "AR-2", "|FAC-A|", "|FAC-B|", "MRN-1001", "MRN-B1", "Müller^Jürgen", "Caf\xe9\xa4^Ana"))
			return a
		}, "MRN-B1", "Café€", "Ana", "ISO-8859-15"},
		{func() *hl7.Message { a, _ := e.send(t, variant(t, "AR-3", "MRN-1001", "MRN-1003")); return a },
			"MRN-1003", "Müller", "Jürgen", ""},
	}
	for _, c := range cases {
		if a := c.send(); a.Get("MSA-1") == ack.AR {
			t.Fatalf("%s rejected: %s", c.mrn, a.Bytes())
		}
		var regID int64
		var charset *string
		if err := e.db.Pool.QueryRow(ctx, `SELECT p.registry_patient_id, m.charset FROM patients p
			JOIN messages m ON m.id = p.report_messages[1] WHERE p.id_value = $1`, c.mrn).Scan(&regID, &charset); err != nil {
			t.Fatal(err)
		}
		got := ""
		if charset != nil {
			got = *charset
		}
		if want, err := hl7.DecoderFor(c.charset); c.charset != "" && (err != nil || got != want.Name()) {
			t.Errorf("%s: archived with charset %q, want %q's name (%v)", c.mrn, got, c.charset, err)
		} else if c.charset == "" && charset != nil {
			t.Errorf("%s: archived with charset %q, want none", c.mrn, got)
		}
		rec, err := e.db.PatientRecord(ctx, regID)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Senders) != 1 {
			t.Fatalf("%s: %d sender patients", c.mrn, len(rec.Senders))
		}
		if n := rec.Senders[0].Demographics.LegalName(); n.Family != c.family || n.Given != c.given {
			t.Errorf("%s: read back %q^%q, want %q^%q", c.mrn, n.Family, n.Given, c.family, c.given)
		}
		if rec.FamilyName != c.family {
			t.Errorf("%s: registry patient %q, want %q", c.mrn, rec.FamilyName, c.family)
		}
	}
}

// TestDecodeArchivedKeepsGroups: decoding an archived message again gives the orders with the
// group numbers the pipeline gave them, which stored vaccinations name.
func TestDecodeArchivedKeepsGroups(t *testing.T) {
	raw := []byte("MSH|^~\\&|A|B|C|D|20240101||VXU^V04^VXU_V04|X1|P|2.5.1\r" +
		"PID|1||M1^^^AUTH^MR||Doe^Jane||20200101|F\r" +
		"ORC|RE||O1^A\rRXA|0|1|20240101|20240101|08^HepB^CVX\rOBX|1|CE|64994-7^Funding^LN||V02^VFC^HL70064\r" +
		"ORC|RE||O2^A\rRXA|0|1|20240102|20240102|20^DTaP^CVX\r")
	v, err := ingest.DecodeArchived(raw, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Orders) != 2 || v.Orders[0].Group != 1 || v.Orders[1].Group != 2 || v.Orders[1].FillerOrder != "O2^A" ||
		len(v.Orders[0].Observations) != 1 || v.Patient.LegalName().Family != "Doe" {
		t.Fatalf("decoded %+v", v)
	}
	if _, err := ingest.DecodeArchived([]byte("not hl7"), "", nil); err == nil {
		t.Error("junk decoded without an error")
	}
	if _, err := ingest.DecodeArchived(raw, "no-such-charset", nil); err == nil {
		t.Error("an unknown fallback character set was accepted")
	}
}

// FuzzDecodeArchived: whatever the archive holds, decoding it again answers an error or a VXU,
// never a crash.
func FuzzDecodeArchived(f *testing.F) {
	f.Add([]byte("MSH|^~\\&|A|B|C|D|20240101||VXU^V04|X|P|2.5.1\rPID|1||M^^^A^MR||D\xe9^J\rRXA|0|1|2024"), "windows-1252")
	f.Add([]byte("MSH|^~\\&\rORC\rRXA\rOBX\rNK1"), "")
	f.Fuzz(func(t *testing.T, raw []byte, charset string) {
		v, err := ingest.DecodeArchived(raw, charset, nil)
		if err == nil && v == nil {
			t.Fatal("no VXU and no error")
		}
	})
}
