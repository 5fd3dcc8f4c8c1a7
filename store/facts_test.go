package store_test

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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// corpusDir is the shared VXU corpus beside the checkout (never committed here).
const corpusDir = "../../shared/corpus/vxu"

// factsEngine is a real pipeline (with the validator) over a real writer and PostgreSQL, with a
// production site and a testing site.
type factsEngine struct {
	db         *store.DB
	w          *store.Writer
	p          *ingest.Pipeline
	prod, test *ingest.Sender
}

func newFactsEngine(t *testing.T, wo store.WriterOptions, facilities ...string) *factsEngine {
	t.Helper()
	ctx := context.Background()
	db := storetest.New(t)
	e := &factsEngine{db: db}
	var org int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ('F-ORG', 'Facts Org') RETURNING id`).Scan(&org); err != nil {
		t.Fatal(err)
	}
	facilities = append(facilities, "X68", "CERT01")
	for _, s := range []struct {
		sender **ingest.Sender
		code   string
		status ingest.SiteStatus
	}{{&e.prod, "F-PROD", ingest.SiteProduction}, {&e.test, "F-TEST", ingest.SiteTesting}} {
		var id int64
		if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, $2, $2, $3) RETURNING id`,
			org, s.code, string(s.status)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		*s.sender = &ingest.Sender{SiteID: id, SiteCode: s.code, OrganizationID: org, Status: s.status, Facilities: facilities}
	}
	if wo.Registerer == nil {
		wo.Registerer = prometheus.NewRegistry()
	}
	w, err := db.NewWriter(wo)
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	v, err := validate.New(validate.Options{Now: func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	if e.p, err = ingest.NewPipeline(ingest.Options{Committer: w, Validator: v, Registerer: prometheus.NewRegistry()}); err != nil {
		t.Fatal(err)
	}
	return e
}

// submit sends payload as s through the pipeline and returns MSA-1 of the answer.
func (e *factsEngine) submit(t *testing.T, s *ingest.Sender, payload []byte, at time.Time) string {
	t.Helper()
	out, err := e.p.Submit(context.Background(), ingest.Envelope{Transport: ingest.TransportMLLP, Sender: s, Payload: payload, ReceivedAt: at})
	if err != nil && !errors.Is(err, ingest.ErrEmptyMessage) {
		t.Fatalf("submit: %v", err)
	}
	m, err := hl7.Parse(out)
	if err != nil {
		t.Fatalf("ACK %q: %v", out, err)
	}
	return m.Get("MSA-1")
}

// storedFacts reads the facts row of the message archived with this control ID and resend key
// (either, when nil).
func storedFacts(t *testing.T, db *store.DB, site int64, control string, resendKey *bool) report.FactsRow {
	t.Helper()
	var id int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT id FROM messages WHERE site_id = $1 AND control_id = $2
		AND ($3::bool IS NULL OR resend_key = $3) ORDER BY id DESC LIMIT 1`, site, control, resendKey).Scan(&id); err != nil {
		t.Fatalf("message %s: %v", control, err)
	}
	rs, err := store.NewReportStore(db).StoredFacts(context.Background(), []int64{id})
	if err != nil || len(rs) != 1 {
		t.Fatalf("facts of %s: %v (%d rows)", control, err, len(rs))
	}
	return rs[0]
}

func certMessages(t *testing.T) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile("../report/testdata/certification/checklist.hl7")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range hl7.SplitMessages(data) {
		pm, err := hl7.Parse(m)
		if err != nil {
			t.Fatal(err)
		}
		out[pm.Get("MSH-10")] = m
	}
	return out
}

// TestIntakeFactsEqualSummaries: the facts intake writes with each archive row equal, column by
// column, those the summaries compute from the archived copy: for the certification checklist
// (historical, refusal, immunity, next of kin, update, deletion; AA and AE) in production and in
// the test environment, a resend, rejections (unknown facility, not HL7, empty of segments past
// MSH), a message with more findings than its ACK lists, and timeliness lags.
func TestIntakeFactsEqualSummaries(t *testing.T) {
	e := newFactsEngine(t, store.WriterOptions{})
	at := time.Date(2025, 3, 20, 9, 0, 0, 123456789, time.UTC) // sub-microsecond: the archive rounds
	codes := map[string]int{}
	msgs := certMessages(t)
	for ctl, m := range msgs {
		codes[e.submit(t, e.test, m, at)]++
		// The same message from the production site (MSH-11 T there: a finding or a rejection).
		codes[e.submit(t, e.prod, []byte(strings.Replace(string(m), "|"+ctl+"|", "|P-"+ctl+"|", 1)), at.Add(40*24*time.Hour))]++
	}
	// Received in the last microsecond of a day: the archive keeps the day (pgx truncates), and
	// so do the facts' lags.
	codes[e.submit(t, e.test, []byte(strings.Replace(string(msgs["CERT-06-MULTI"]), "|CERT-06-MULTI|", "|MIDNIGHT|", 1)),
		time.Date(2025, 3, 20, 23, 59, 59, 999999700, time.UTC))]++
	// A resend: the same message again, answered with the original's ACK.
	codes[e.submit(t, e.test, msgs["CERT-01-CHILD"], at.Add(time.Hour))]++
	// Rejections: an unknown facility, a payload that is not HL7, a header alone.
	codes[e.submit(t, e.test, []byte(strings.Replace(string(msgs["CERT-02-ADULT"]), "|CERT01|", "|NOPE|", 1)), at)]++
	codes[e.submit(t, e.test, []byte("this is not HL7"), at)]++
	codes[e.submit(t, e.test, []byte("MSH|^~\\&|A|CERT01|||20250320||VXU^V04^VXU_V04|HDR-ONLY|T|2.5.1\r"), at)]++
	// More findings than the ACK lists: 120 orders with an unknown vaccine.
	var many strings.Builder
	many.WriteString(strings.SplitAfter(string(msgs["CERT-01-CHILD"]), "\r")[0])
	many.WriteString("PID|1||M-1^^^CERTCLINIC^MR||Doe^Jo|Roe^Ann|20200101|F\r")
	for i := range 120 {
		fmt.Fprintf(&many, "ORC|RE||O-%d^CERTCLINIC\rRXA|0|1|20250301||99999^Nothing^CVX|0.5|mL^mL^UCUM||00^New^NIP001\r", i)
	}
	codes[e.submit(t, e.test, []byte(strings.Replace(many.String(), "|CERT-01-CHILD|", "|MANY|", 1)), at)]++
	if codes["AA"] == 0 || codes["AE"] == 0 || codes["AR"] == 0 {
		t.Errorf("answers %v: want some AA, AE and AR", codes)
	}

	if n := storetest.CheckFacts(t, e.db); n != 2*len(msgs)+6 {
		t.Errorf("checked %d messages, want %d", n, 2*len(msgs)+6)
	}

	// What the rows say, for the cases the reports count apart.
	yes, no := true, false
	if r := storedFacts(t, e.db, e.test.SiteID, "CERT-01-CHILD", &no); !r.Resend || r.ACKCode != "AA" || r.Env != "T" || !r.Readable {
		t.Errorf("resend's facts %+v", r)
	}
	if r := storedFacts(t, e.db, e.test.SiteID, "CERT-01-CHILD", &yes); r.Resend || r.Facts.Administered != 1 || r.Facts.Lag30 != 1 || r.Facts.LagDays != 10 {
		t.Errorf("original's facts %+v", r)
	}
	if r := storedFacts(t, e.db, e.prod.SiteID, "P-CERT-01-CHILD", nil); r.Env != "" || r.ACKCode != "AR" || !r.Errors ||
		r.Facts.LagLate != 1 || r.Facts.LagDays != 50 {
		// Rejected (MSH-11 T from a production site) before its environment was known.
		t.Errorf("late production copy's facts %+v", r)
	}
	if r := storedFacts(t, e.db, e.test.SiteID, "CERT-03-HISTORICAL", &yes); r.Facts.Historical != 1 || r.Facts.Administered != 0 {
		t.Errorf("historical's facts %+v", r)
	}
	if r := storedFacts(t, e.db, e.test.SiteID, "CERT-04-REFUSAL", &yes); r.Facts.Refusals != 1 {
		t.Errorf("refusal's facts %+v", r)
	}
	if r := storedFacts(t, e.db, e.test.SiteID, "CERT-05-IMMUNITY", &yes); r.Facts.Immunity != 1 {
		t.Errorf("immunity's facts %+v", r)
	}
	if r := storedFacts(t, e.db, e.test.SiteID, "", &no); r.Readable || r.ACKCode != "AR" || r.Env != "" || !r.Errors || r.Resend {
		t.Errorf("unreadable message's facts %+v", r)
	}
	if r := storedFacts(t, e.db, e.test.SiteID, "MANY", nil); !r.Errors || r.Facts.Orders != 0 {
		t.Errorf("many findings' facts %+v", r)
	}
	var more int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE more_findings IS NOT NULL`).Scan(&more); err != nil {
		t.Fatal(err)
	}
	if more == 0 {
		t.Error("no message has more findings than its ACK lists: the case is not tested")
	}
}

// TestIntakeFactsEqualSummariesCorpus: the same for every message of the shared VXU corpus, from a
// site that may send for their facilities.
func TestIntakeFactsEqualSummariesCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("shared corpus not present (%s): this test needs ../shared next to the checkout", corpusDir)
	}
	var msgs [][]byte
	var facilities []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range hl7.SplitMessages(data) {
			msgs = append(msgs, m)
			if pm, err := hl7.Parse(m); err == nil {
				facilities = append(facilities, pm.Get("MSH-4"), pm.Get("MSH-4-2"))
			}
		}
	}
	e := newFactsEngine(t, store.WriterOptions{}, facilities...)
	at := time.Date(2025, 3, 20, 9, 0, 0, 0, time.UTC)
	codes := map[string]int{}
	for i, m := range msgs {
		codes[e.submit(t, e.prod, m, at.Add(time.Duration(i)*time.Second))]++
		codes[e.submit(t, e.test, m, at.Add(time.Duration(i)*time.Second))]++
	}
	t.Logf("%d corpus messages, answers %v", len(msgs), codes)
	if n := storetest.CheckFacts(t, e.db); n != 2*len(msgs) {
		t.Errorf("checked %d messages, want %d", n, 2*len(msgs))
	}
}

// TestFactsOnEveryWriterPath: a batch with a bad record is written again in halves, down to the
// bad record alone (writeAlone); a resend of a record in the same batch; the archived copy of a
// message whose commit failed (answered AR by the pipeline); a message over MLLP. Every archived
// message of a known site has exactly one facts row, equal to the summaries'; the bad record
// none; a message without a known sender none.
func TestFactsOnEveryWriterPath(t *testing.T) {
	ctx := context.Background()
	e := newFactsEngine(t, store.WriterOptions{MaxBatch: 64, MaxDelay: 50 * time.Millisecond, Shards: 1})

	// Halves and writeAlone: one bad record among 20, committed together.
	recs := records(t, e.prod, 20)
	recs[7].Env = "X" // violates messages' CHECK: the batch fails, then its halves, then the record alone
	dup := *recs[3]   // a resend in the same batch
	recs = append(recs, &dup)
	pend := make([]ingest.Pending, len(recs))
	for i, r := range recs {
		pend[i] = e.w.Commit(r)
	}
	for i, p := range pend {
		if _, err := p.Wait(ctx); (err != nil) != (i == 7) {
			t.Errorf("record %d: %v", i, err)
		}
	}

	// The archive copy of a message whose commit failed: the pipeline archives it (AR, no content).
	failing := &failOnce{w: e.w}
	p, err := ingest.NewPipeline(ingest.Options{Committer: failing, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	gen := vxugen.New(vxugen.Options{Seed: 9, Facility: "X68", ControlIDs: "FAILED", Now: time.Now()})
	if _, err := p.Submit(ctx, ingest.Envelope{Transport: ingest.TransportSOAP, Sender: e.prod, Payload: gen.Next(), ReceivedAt: time.Now()}); err == nil {
		t.Error("the failed commit was not reported")
	}
	e.w.Close(ctx) // waits for the archive copy, committed without waiting

	// An unknown sender: archived, in no report.
	var before int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	w2, err := e.db.NewWriter(store.WriterOptions{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := ingest.NewPipeline(ingest.Options{Committer: w2, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Submit(ctx, ingest.Envelope{Transport: ingest.TransportMLLP, Payload: gen.Next(), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	// Over MLLP, from a site authenticated by its address.
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO site_facilities (facility_id, site_id) VALUES ('X68', $1)`, e.prod.SiteID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO sender_credentials (site_id, transport, source_cidr) VALUES ($1, 'mllp', '127.0.0.0/8')`, e.prod.SiteID); err != nil {
		t.Fatal(err)
	}
	srv, err := mllp.NewServer(mllp.Options{Starter: p2, Senders: e.db, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown(ctx) }()
	c, err := mllp.Dial(ctx, ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := c.Send(mctx, gen.Next())
	c.Close()
	if err != nil || !bytes.Contains(out, []byte("MSA|AA")) {
		t.Fatalf("MLLP answer %q (%v)", out, err)
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}

	var archived, noSite, failed, bad int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE site_id IS NULL),
			count(*) FILTER (WHERE control_id LIKE 'FAILED%' AND ack_code = 'AR' AND site_id IS NOT NULL), count(*) FILTER (WHERE env = 'X')
		FROM messages`).Scan(&archived, &noSite, &failed, &bad); err != nil {
		t.Fatal(err)
	}
	// 19 good records and the resend copy, the failed message's copy, the unknown sender's, MLLP's.
	if archived != 23 || noSite != 1 || failed != 1 || bad != 0 {
		t.Errorf("archived %d messages (%d without a site, %d failed copies, %d bad), want 23, 1, 1, 0", archived, noSite, failed, bad)
	}
	if n := storetest.CheckFacts(t, e.db); n != 22 {
		t.Errorf("checked %d messages, want 22", n)
	}
	if r := storedFacts(t, e.db, e.prod.SiteID, recs[3].ControlID, new(bool)); !r.Resend {
		t.Errorf("the resend in the batch: %+v", r)
	}
}

// failOnce fails the first commit it is given and passes the others to w.
type failOnce struct {
	w      *store.Writer
	failed bool
}

func (f *failOnce) Commit(rec *ingest.Record) ingest.Pending {
	if !f.failed {
		f.failed = true
		return failed{}
	}
	return f.w.Commit(rec)
}

type failed struct{}

func (failed) Wait(context.Context) ([]byte, error) { return nil, errors.New("the store broke") }

// TestFactsAreColumnsOfTheArchiveRow: the facts are written by the archive insert itself, so
// they cannot fail on their own (there is no second row whose key could conflict: the former
// report_facts table is gone), a message of an unknown sender has none (NULL), and intake adds
// no entry to the catch-up's partial index messages_without_facts: after a batch and a message
// without a site, the index is still the metapage alone.
func TestFactsAreColumnsOfTheArchiveRow(t *testing.T) {
	ctx := context.Background()
	e := newFactsEngine(t, store.WriterOptions{Shards: 1})
	recs := records(t, e.prod, 30)
	pend := make([]ingest.Pending, len(recs))
	for i, r := range recs {
		pend[i] = e.w.Commit(r)
	}
	for i, p := range pend {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: e.w, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	gen := vxugen.New(vxugen.Options{Seed: 4, Facility: "X68", ControlIDs: "NOSITE", Now: time.Now()})
	if _, err := p.Submit(ctx, ingest.Envelope{Transport: ingest.TransportMLLP, Payload: gen.Next(), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var table *string
	var indexBytes int64
	var siteless, sitelessFacts int
	if err := e.db.Pool.QueryRow(ctx, `SELECT to_regclass('report_facts')::text, pg_relation_size('messages_without_facts'),
			(SELECT count(*) FROM messages WHERE site_id IS NULL),
			(SELECT count(*) FROM messages WHERE site_id IS NULL AND num_nonnulls(readable, finding_keys, administered, lag_days) > 0)`).
		Scan(&table, &indexBytes, &siteless, &sitelessFacts); err != nil {
		t.Fatal(err)
	}
	if table != nil {
		t.Errorf("table %s still exists", *table)
	}
	if siteless != 1 || sitelessFacts != 0 {
		t.Errorf("%d messages without a site, %d of them with facts; want 1, 0", siteless, sitelessFacts)
	}
	if indexBytes != 8192 {
		t.Errorf("messages_without_facts is %d bytes: intake added entries to it (want the 8192-byte metapage alone)", indexBytes)
	}
	if n := storetest.CheckFacts(t, e.db); n != len(recs) {
		t.Errorf("checked %d messages, want %d", n, len(recs))
	}
}
