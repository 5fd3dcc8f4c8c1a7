package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// End-to-end tests of issue 13's intake answers (empty messages, batches, other message types,
// ACK syntax) over a real MLLP listener and PostgreSQL.

// sendFrame writes payload as one MLLP frame on a new connection (whatever it holds, even
// nothing) and returns the frame that answers it.
func (e *engine) sendFrame(t *testing.T, payload []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(hl7.AppendFrame(nil, payload)); err != nil {
		t.Fatal(err)
	}
	answer, err := hl7.NewFrameReader(c, 64<<20).ReadFrame()
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return bytes.Clone(answer)
}

func mustParseACK(t *testing.T, raw []byte) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse(raw)
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%q", err, raw)
	}
	return m
}

// TestEmptyMessageOverMLLP (issue 13.5): an empty frame, or one of whitespace only, is the
// sender's error: AR 100, and nothing reaches the writer (nothing is archived, no batch fails).
func TestEmptyMessageOverMLLP(t *testing.T) {
	e := newEngine(t, "production")
	for _, payload := range []string{"", " ", "\r\n", " \t\r\n\r\n ", "\xef\xbb\xbf\r"} {
		t.Run(fmt.Sprintf("%q", payload), func(t *testing.T) {
			a := mustParseACK(t, e.sendFrame(t, []byte(payload)))
			if a.Get("MSA-1") != ack.AR {
				t.Fatalf("MSA-1 = %q, want AR", a.Get("MSA-1"))
			}
			if got := errCodes(a); len(got) != 1 || got[0] != "100" {
				t.Errorf("ERR-3 %v, want [100]", got)
			}
			if a.Get("MSH-9") != "ACK" || a.Get("MSH-9-2") != "V04" || a.Get("MSA-2") != "" {
				t.Errorf("MSH-9 %q^%q MSA-2 %q", a.Get("MSH-9"), a.Get("MSH-9-2"), a.Get("MSA-2"))
			}
			if a.Get("ERR-8") == "" || !strings.Contains(a.Get("ERR-8"), "empty") {
				t.Errorf("ERR-8 = %q", a.Get("ERR-8"))
			}
		})
	}
	// The same connection goes on: a message after an empty frame is answered and stored.
	if a, _ := e.send(t, fixture(t, "vxu_basic.hl7")); a.Get("MSA-1") == ack.AR {
		t.Fatalf("message after empty frames: %v", errCodes(a))
	}
	if n := e.count(t, "messages"); n != 1 {
		t.Errorf("%d messages archived, want 1: empty frames must not reach the writer", n)
	}
}

// TestEmptyMessageIsTheSendersError: Submit answers an empty payload with an AR and
// ErrEmptyMessage, without calling the committer, so that SOAP can answer soap:Sender.
func TestEmptyMessageIsTheSendersError(t *testing.T) {
	p, err := ingest.NewPipeline(ingest.Options{Committer: failingCommitter{t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{"", "  \r\n"} {
		a, err := p.Submit(context.Background(), ingest.Envelope{Transport: ingest.TransportSOAP, Payload: []byte(payload)})
		if !errors.Is(err, ingest.ErrEmptyMessage) {
			t.Errorf("%q: err %v, want ErrEmptyMessage", payload, err)
		}
		if m := mustParseACK(t, a); m.Get("MSA-1") != ack.AR || m.Get("ERR-3") != "100" {
			t.Errorf("%q: %q", payload, a)
		}
	}
}

type failingCommitter struct{ t *testing.T }

func (f failingCommitter) Commit(rec *ingest.Record) ingest.Pending {
	f.t.Errorf("record %q reached the committer", rec.ControlID)
	return ingest.DryRun{}.Commit(rec)
}

// batchOf wraps messages in FHS/BHS ... BTS/FTS.
func batchOf(declared int, msgs ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("FHS|^~\\&|ClinicEHR|FAC-A|vaxgate|STATEIIS|20240310101500-0500||||FILE-1\r")
	b.WriteString("BHS|^~\\&|ClinicEHR|FAC-A|vaxgate|STATEIIS|20240310101500-0500||||BATCH-1\r")
	for _, m := range msgs {
		b.Write(m)
	}
	fmt.Fprintf(&b, "BTS|%d\rFTS|1\r", declared)
	return b.Bytes()
}

// TestBatchOverMLLP (issue 13.7): an FHS/BHS batch in one frame is split, each message is
// processed on its own, and the ACKs come back in the same envelope with their counts.
func TestBatchOverMLLP(t *testing.T) {
	e := newEngine(t, "production")
	a := e.siteA
	second := ava
	second.mrn, second.given = "MRN-B2", "Ben"
	msgs := [][]byte{
		[]byte("not a segment, before any MSH\r"), // a message of its own, answered AR
		a.vxu("B-1", ava, hepB),
		a.vxu("B-2", second, dose{order: "ORD-B2^CLINIC", date: "20240301", cvx: "20", text: "DTaP"}),
		bytes.Replace(a.vxu("B-3", ava, hepB), []byte("|P|2.5.1|"), []byte("|P|2.4|"), 1),
	}
	raw := e.sendFrame(t, batchOf(3, msgs...)) // BTS-1 counts MSH segments
	back, err := hl7.SplitBatch(raw)
	if err != nil {
		t.Fatalf("the answer's counts: %v\n%q", err, raw)
	}
	if back.FHS == nil || back.BHS == nil || back.BTS == nil || back.FTS == nil {
		t.Fatalf("answer without its envelope: %q", raw)
	}
	if !strings.HasPrefix(string(back.FHS), "FHS|^~\\&|vaxgate|STATEIIS|ClinicEHR|FAC-A|") || !strings.HasSuffix(string(back.FHS), "|FILE-1") ||
		!strings.HasSuffix(string(back.BHS), "|BATCH-1") || string(back.BTS) != "BTS|4|AA 1, AE 1, AR 2" || string(back.FTS) != "FTS|1" {
		t.Errorf("envelope %q %q %q %q", back.FHS, back.BHS, back.BTS, back.FTS)
	}
	if len(back.Messages) != 4 {
		t.Fatalf("%d ACKs, want 4", len(back.Messages))
	}
	want := []struct{ control, code, err string }{{"", ack.AR, "100"}, {"B-1", "A", ""}, {"B-2", "A", ""}, {"B-3", ack.AR, "203"}}
	for i, w := range want {
		m := mustParseACK(t, back.Messages[i])
		if m.Get("MSA-2") != w.control || !strings.HasPrefix(m.Get("MSA-1"), w.code) || (w.err != "" && m.Get("ERR-3") != w.err) {
			t.Errorf("ACK %d: MSA %q %q ERR-3 %q, want %s %s %s", i+1, m.Get("MSA-1"), m.Get("MSA-2"), m.Get("ERR-3"), w.code, w.control, w.err)
		}
	}
	if n := e.count(t, "vaccinations"); n != 2 {
		t.Errorf("%d vaccinations stored, want 2", n)
	}
	if n := e.count(t, "messages"); n != 4 {
		t.Errorf("%d messages archived, want 4 (each message of the batch)", n)
	}
	// The whole batch again: each accepted message is a resend, answered as before.
	before := e.snapshot(t)
	again, _ := hl7.SplitBatch(e.sendFrame(t, batchOf(3, msgs...)))
	for i := 1; i <= 2; i++ {
		if !bytes.Equal(again.Messages[i], back.Messages[i]) {
			t.Errorf("resent batch, ACK %d:\n%q\n%q", i+1, again.Messages[i], back.Messages[i])
		}
	}
	sameCounts(t, "resent batch", before, e.snapshot(t))
	// Each message of both batches (resend copies too) has its report facts, as the summaries make them.
	if n := storetest.CheckFacts(t, e.db); n != 8 {
		t.Errorf("report facts of %d messages; want 8", n)
	}

	t.Run("BHS only, wrong count", func(t *testing.T) {
		raw := e.sendFrame(t, []byte("BHS|^~\\&|ClinicEHR|FAC-A\r"+string(a.vxu("B-4", ava, hepB))+"BTS|2\r"))
		back, err := hl7.SplitBatch(raw)
		if err != nil || back.FHS != nil || len(back.Messages) != 1 {
			t.Fatalf("answer %q (%v)", raw, err)
		}
		if string(back.BTS) != "BTS|1|AA 1, AE 0, AR 0; BTS-1 declared 2 messages, 1 found; every message found was processed" {
			t.Errorf("BTS = %q", back.BTS)
		}
	})
}

// TestLegacyBatchFromCorpus (issue 13.7): the public HL7 2.4 FHS/BHS batch gets, inside the
// batch envelope, an AR 203 (unsupported version) for each of its messages.
func TestLegacyBatchFromCorpus(t *testing.T) {
	paths, _ := filepath.Glob("../../shared/corpus/batch/*.hl7")
	if len(paths) == 0 {
		t.Skip("../shared/corpus/batch is absent: no public batch sample to send")
	}
	e := newEngine(t, "production")
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			in, _ := hl7.SplitBatch(data)
			raw := e.sendFrame(t, bytes.ReplaceAll(data, []byte("\n"), []byte("\r")))
			back, err := hl7.SplitBatch(raw)
			if err != nil || back.BHS == nil || back.FHS == nil {
				t.Fatalf("answer %q (%v)", raw, err)
			}
			if len(back.Messages) != len(in.Messages) || len(in.Messages) == 0 {
				t.Fatalf("%d ACKs for %d messages", len(back.Messages), len(in.Messages))
			}
			for i, a := range back.Messages {
				m := mustParseACK(t, a)
				if m.Get("MSA-1") != ack.AR || m.Get("ERR-3") != "203" || m.Get("MSA-2") == "" {
					t.Errorf("ACK %d: MSA %q %q ERR-3 %q, want AR 203", i+1, m.Get("MSA-1"), m.Get("MSA-2"), m.Get("ERR-3"))
				}
			}
		})
	}
	if n := e.count(t, "vaccinations"); n != 0 {
		t.Errorf("%d vaccinations stored from a 2.4 batch", n)
	}
}

// TestOtherMessageTypesOverMLLP (issue 13.9): a query or an ADT message gets the generic
// acknowledgement of its own trigger, without the Z23 profile, AR 200 (201 for a VXU with
// another event).
func TestOtherMessageTypesOverMLLP(t *testing.T) {
	e := newEngine(t, "production")
	header := func(typ string) string {
		return "MSH|^~\\&|ClinicEHR|FAC-A|vaxgate|STATEIIS|20240310101500-0500||" + typ + "|OT-1|P|2.5.1|||NE|AL|||||Z44^CDCPHINVS\r"
	}
	cases := []struct{ typ, ack, code string }{
		{"QBP^Q11^QBP_Q11", "ACK^Q11^ACK", "200"},
		{"ADT^A04^ADT_A01", "ACK^A04^ACK", "200"},
		{"ADT^A08^ADT_A01", "ACK^A08^ACK", "200"},
		{"ADT^A28^ADT_A05", "ACK^A28^ACK", "200"},
		{"ADT^A31^ADT_A05", "ACK^A31^ACK", "200"},
		{"VXU^V05", "ACK^V05^ACK", "201"},
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			body := "QPD|Z44^Request Evaluated History and Forecast^CDCPHINVS|Q-1|MRN-1^^^CLINIC^MR|Smith^Ava\rRCP|I|5^RD\r"
			raw := e.sendFrame(t, []byte(header(c.typ)+body))
			m := mustParseACK(t, raw)
			msh, _ := m.Find("MSH", 1)
			if got := string(msh.Field(9).Raw()); got != c.ack {
				t.Errorf("MSH-9 = %q, want %q", got, c.ack)
			}
			if got := string(msh.Field(21).Raw()); got != "" {
				t.Errorf("MSH-21 = %q, want none (no Z23 profile)", got)
			}
			if m.Get("MSA-1") != ack.AR || m.Get("MSA-2") != "OT-1" || m.Get("ERR-3") != c.code {
				t.Errorf("MSA %q %q ERR-3 %q, want AR OT-1 %s", m.Get("MSA-1"), m.Get("MSA-2"), m.Get("ERR-3"), c.code)
			}
		})
	}
	t.Run("corpus QBP", func(t *testing.T) {
		data, err := os.ReadFile("../../shared/corpus/qbp/nist_QBP_Z44_query.hl7")
		if err != nil {
			t.Skip("../shared/corpus/qbp is absent")
		}
		m := mustParseACK(t, e.sendFrame(t, bytes.ReplaceAll(data, []byte("\n"), []byte("\r"))))
		if m.Get("MSH-9-2") != "Q11" || m.Get("MSH-21") != "" || m.Get("MSA-1") != ack.AR || m.Get("ERR-3") != "200" {
			t.Errorf("ACK MSH-9-2 %q MSH-21 %q MSA-1 %q ERR-3 %q", m.Get("MSH-9-2"), m.Get("MSH-21"), m.Get("MSA-1"), m.Get("ERR-3"))
		}
	})
}

// TestACKSyntaxOverMLLP (issue 13.10): whatever delimiters the sender uses, the ACK uses |^~\&;
// ERR-2 has one format; an unreadable segment name gets no location.
func TestACKSyntaxOverMLLP(t *testing.T) {
	e := newEngine(t, "production")
	// vxu_basic.hl7 rewritten with # as field separator and $ as component separator.
	msg := strings.NewReplacer("|", "#", "^", "$").Replace(string(fixture(t, "vxu_basic.hl7")))
	msg = strings.Replace(msg, "MSH#$~\\&#", "MSH#$~\\&#", 1)
	if !strings.HasPrefix(msg, "MSH#$~\\&#ClinicEHR#FAC-A#") {
		t.Fatalf("rewrite: %q", msg[:40])
	}
	raw := e.sendFrame(t, []byte(msg))
	if !strings.HasPrefix(string(raw), "MSH|^~\\&|vaxgate|STATEIIS|ClinicEHR|FAC-A|") {
		t.Fatalf("ACK does not use |^~\\&: %q", raw)
	}
	m := mustParseACK(t, raw)
	if m.Get("MSA-2") != "CTRL-0001" || m.Get("MSA-1") == ack.AR {
		t.Fatalf("MSA %q %q: %v", m.Get("MSA-1"), m.Get("MSA-2"), errTexts(m))
	}
	for i := 1; i <= m.Count("ERR"); i++ {
		s, _ := m.Find("ERR", i)
		loc := string(s.Field(2).Raw())
		if loc == "" {
			continue
		}
		parts := strings.Split(loc, "^")
		if len(parts) < 2 || len(parts[0]) != 3 || parts[1] == "" || (len(parts) > 2 && parts[2] != "" && (len(parts) < 4 || parts[3] == "")) {
			t.Errorf("ERR %d location %q is not segment^sequence^field^repetition^...", i, loc)
		}
	}
	if n := e.count(t, "vaccinations"); n != 1 {
		t.Errorf("%d vaccinations stored, want 1", n)
	}

	t.Run("unreadable segment name", func(t *testing.T) {
		m := mustParseACK(t, e.sendFrame(t, []byte("MSH|^~\\&|App|FAC-A|||20240101||VXU^V04|DAMAGED-2|P|2.5.1\rP@D|broken\r")))
		if m.Get("MSA-1") != ack.AR || m.Get("MSA-2") != "DAMAGED-2" {
			t.Fatalf("MSA %q %q", m.Get("MSA-1"), m.Get("MSA-2"))
		}
		if s, _ := m.Find("ERR", 1); len(s.Field(2).Raw()) != 0 {
			t.Errorf("ERR-2 = %q, want it left out", s.Field(2).Raw())
		}
	})
}

// TestEvaluateAnswersAsTheServer (issue 13.11): `vaxgate validate` (Pipeline.Evaluate) gives the
// answer the server gives for everything it can know offline — the ACK code and the ERR codes
// and locations — including what the server decides from the header alone (an empty MSH-4, a
// processing ID that is neither P nor T, a message type or version it does not take).
func TestEvaluateAnswersAsTheServer(t *testing.T) {
	e := newEngine(t, "production")
	// The engine's validator, with the same fixed clock.
	v, err := validate.New(validate.Options{Now: func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	offline, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	base := string(fixture(t, "vxu_basic.hl7"))
	cases := map[string]string{
		"accepted":             base,
		"empty MSH-4":          strings.Replace(base, "|ClinicEHR|FAC-A|", "|ClinicEHR||", 1),
		"processing ID D":      strings.Replace(base, "|P|2.5.1|", "|D|2.5.1|", 1),
		"empty processing ID":  strings.Replace(base, "|P|2.5.1|", "||2.5.1|", 1),
		"query":                strings.Replace(base, "VXU^V04^VXU_V04", "QBP^Q11^QBP_Q11", 1),
		"version 2.4":          strings.Replace(base, "|P|2.5.1|", "|P|2.4|", 1),
		"no birth date":        strings.Replace(base, "|20190402|M|", "||M|", 1),
		"no control ID":        strings.Replace(base, "|CTRL-0001|", "||", 1),
		"unparseable":          "MSH|^~\\&|App|FAC-A|||20240101||VXU^V04|DAMAGED-3|P|2.5.1\rP@D|broken\r",
		"empty":                "  \r\n",
		"unknown vaccine code": strings.Replace(base, "08^Hep B, adolescent or pediatric^CVX", "9999^Nothing^CVX", 1),
	}
	n := 0
	for name, msg := range cases {
		n++
		t.Run(name, func(t *testing.T) {
			if name != "accepted" && msg == base {
				t.Fatal("the edit did not apply")
			}
			// A control ID of its own: a used one is what only the server knows (205).
			msg = strings.Replace(msg, "|CTRL-0001|", fmt.Sprintf("|EV-%d|", n), 1)
			server := mustParseACK(t, e.sendFrame(t, []byte(msg)))
			rec := offline.Evaluate([]byte(msg))
			off := mustParseACK(t, rec.ACK)
			if server.Get("MSA-1") != off.Get("MSA-1") || rec.ACKCode != off.Get("MSA-1") {
				t.Errorf("server %s, offline %s (record %s)", server.Get("MSA-1"), off.Get("MSA-1"), rec.ACKCode)
			}
			if s, o := errList(server), errList(off); s != o {
				t.Errorf("ERR differ:\nserver  %s\noffline %s", s, o)
			}
			if server.Get("MSH-9") != off.Get("MSH-9") || server.Get("MSH-9-2") != off.Get("MSH-9-2") || server.Get("MSH-21") != off.Get("MSH-21") {
				t.Errorf("ACK type: server %s^%s %s, offline %s^%s %s", server.Get("MSH-9"), server.Get("MSH-9-2"), server.Get("MSH-21"),
					off.Get("MSH-9"), off.Get("MSH-9-2"), off.Get("MSH-21"))
			}
		})
	}
}

// errList is every ERR's location, code and severity.
func errList(m *hl7.Message) string {
	var out []string
	for i := 1; i <= m.Count("ERR"); i++ {
		s, _ := m.Find("ERR", i)
		out = append(out, fmt.Sprintf("%s %s %s", s.Field(2).Raw(), s.Field(3).Component(1).String(), s.Field(4).String()))
	}
	return strings.Join(out, ", ")
}
