package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

func TestMain(m *testing.M) {
	passwd.DefaultParams = passwd.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	storetest.Main(m)
}

// fixture is a real database with two sites: CERT (testing) and OTHER (production).
type fixture struct {
	db    *store.DB
	svc   *report.Service
	site  *report.Site
	other *report.Site
	msgs  map[string][]byte // the checklist testdata by control ID
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.New(t)
	var org, site, other int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ('CERT-ORG', 'Cert Org') RETURNING id`).Scan(&org); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, 'CERT', 'Cert Clinic', 'testing') RETURNING id`, org).Scan(&site); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, 'OTHER', 'Other Clinic', 'production') RETURNING id`, org).Scan(&other); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, now: time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC), msgs: map[string][]byte{}}
	f.svc = report.NewService(store.NewReportStore(db), report.Options{Now: func() time.Time { return f.now }})
	var err error
	if f.site, err = f.svc.Site(ctx, 0, "CERT"); err != nil {
		t.Fatal(err)
	}
	if f.other, err = f.svc.Site(ctx, other, ""); err != nil {
		t.Fatal(err)
	}
	if f.site.ID != site || f.other.Code != "OTHER" {
		t.Fatalf("sites %+v %+v", f.site, f.other)
	}
	for _, file := range []string{"checklist.hl7", "adult_fixed.hl7"} {
		data, err := os.ReadFile("testdata/certification/" + file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range hl7.SplitMessages(data) {
			pm, err := hl7.Parse(m)
			if err != nil {
				t.Fatal(err)
			}
			f.msgs[pm.Get("MSH-10")] = m
		}
	}
	return f
}

// archive inserts an archived message as the writer stores it. env "" is NULL (rejected before
// the environment was known); resendKey false with an AA/AE code is the copy of a resend.
func (f *fixture) archive(t *testing.T, site int64, env, ctl string, at time.Time, code string, resendKey bool, findings string, raw []byte) int64 {
	t.Helper()
	var envArg *string
	if env != "" {
		envArg = &env
	}
	if findings == "" {
		findings = "[]"
	}
	var id int64
	err := f.db.Pool.QueryRow(context.Background(), `
		INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key)
		VALUES ($1, $2, 'mllp', $3, $4, $5, 'ack'::bytea, $6, $7::json, $8) RETURNING id`,
		envArg, site, ctl, at, raw, code, findings, resendKey).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

const adultFindings = `[{"rule":"rxa-15-missing","location":"RXA[1]-15.0.0","code":101,"severity":"W","app":7,"text":"RXA-15 (lot number) is empty for a dose you administered."},
	{"rule":"rxa-17-missing","location":"RXA[1]-17.0.0","code":101,"severity":"W","app":7,"text":"RXA-17 (manufacturer) is empty."},
	{"rule":"pd1-12-recorded","code":0,"severity":"I","text":"PD1-12 was recorded."}]`

// TestCertificationFromArchive: the checklist's messages archived as the pipeline answered them
// (the adult dose without lot and manufacturer got AE): the report says which case failed, with
// the message and its findings; a fixed resend passes it; sign-offs are audited and make the site
// ready.
func TestCertificationFromArchive(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	at := time.Date(2025, 3, 20, 9, 0, 0, 0, time.UTC)
	order := []string{"CERT-01-CHILD", "CERT-02-ADULT", "CERT-03-HISTORICAL", "CERT-04-REFUSAL", "CERT-05-IMMUNITY",
		"CERT-06-MULTI", "CERT-07-NEXTOFKIN", "CERT-08-UPDATE", "CERT-09-DELETE"}
	for i, id := range order {
		code, findings := "AA", `[{"rule":"pd1-12-recorded","code":0,"severity":"I","text":"x"}]`
		if id == "CERT-02-ADULT" {
			code, findings = "AE", adultFindings
		}
		f.archive(t, f.site.ID, "T", id, at.Add(time.Duration(i)*time.Minute), code, true, findings, f.msgs[id])
	}
	// A resent copy (answered with the original ACK) is not a second attempt.
	f.archive(t, f.site.ID, "T", "CERT-01-CHILD", at.Add(time.Hour), "AA", false, "", f.msgs["CERT-01-CHILD"])
	// A message matching no case, one that is not HL7, and another site's adult dose.
	f.archive(t, f.site.ID, "T", "CERT-X", at.Add(2*time.Hour), "AA", true, "", []byte("MSH|^~\\&|A|CERT01|||20250320||VXU^V04^VXU_V04|CERT-X|T|2.5.1\rPID|1||9^^^A^MR\r"))
	f.archive(t, f.site.ID, "", "CERT-JUNK", at.Add(3*time.Hour), "AR", false, `[{"rule":"message-unparseable","code":100,"severity":"E","text":"x"}]`, []byte("not hl7"))
	f.archive(t, f.other.ID, "T", "OTHER-1", at, "AA", true, "", f.msgs["CERT-02-ADULT"])

	c, err := f.svc.Certification(ctx, f.site)
	if err != nil {
		t.Fatal(err)
	}
	if c.Messages != 11 || c.Unmatched != 1 || c.Unreadable != 1 {
		t.Errorf("messages %d unmatched %d unreadable %d, want 11, 1, 1", c.Messages, c.Unmatched, c.Unreadable)
	}
	if c.Passed != 8 || c.Failed != 1 || c.NotAttempted != 0 || c.Ready {
		t.Fatalf("passed %d failed %d not attempted %d ready %v", c.Passed, c.Failed, c.NotAttempted, c.Ready)
	}
	adult := caseResult(t, c, "adult-administered")
	if adult.Status != report.CaseFailed || adult.Latest == nil || adult.Latest.ControlID != "CERT-02-ADULT" || adult.Latest.ACK != "AE" {
		t.Fatalf("adult case %+v", adult)
	}
	rules := map[string]bool{}
	for _, fd := range adult.Latest.Findings {
		rules[fd.Rule] = true
	}
	if !rules["rxa-15-missing"] || !rules["rxa-17-missing"] || rules["pd1-12-recorded"] {
		t.Errorf("adult findings %+v: want the errors and warnings, not the information", adult.Latest.Findings)
	}
	if child := caseResult(t, c, "child-administered"); child.Attempts != 3 || child.Status != report.CasePassed {
		t.Errorf("child case %+v: want 3 attempts (child, multi, next of kin), passed", child)
	}
	var lot *report.RuleCount
	for i := range c.Findings {
		if c.Findings[i].Rule == "rxa-15-missing" {
			lot = &c.Findings[i]
		}
	}
	if lot == nil || lot.Messages != 1 || lot.Severity != "W" || len(lot.Examples) != 1 || lot.Examples[0] != "CERT-02-ADULT" {
		t.Errorf("findings by rule: %+v", c.Findings)
	}
	if c.Findings[0].Severity != "E" {
		t.Errorf("errors come first: %+v", c.Findings[0])
	}
	var text bytes.Buffer
	if err := c.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FAILED adult-administered", "CERT-02-ADULT got AE, expected AA", "rxa-15-missing", "NOT READY"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var csvOut bytes.Buffer
	if err := c.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&csvOut).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if recs[2][0] != "case" || recs[2][1] != "adult-administered" || recs[2][2] != "failed" || recs[2][4] != "CERT-02-ADULT" {
		t.Errorf("CSV row %q", recs[2])
	}

	// The site fixes the adult message and sends it again: the latest attempt passes.
	f.archive(t, f.site.ID, "T", "CERT-02-ADULT-FIX", at.Add(4*time.Hour), "AA", true, "", f.msgs["CERT-02-ADULT-FIX"])
	c, err = f.svc.Certification(ctx, f.site)
	if err != nil {
		t.Fatal(err)
	}
	if adult := caseResult(t, c, "adult-administered"); adult.Status != report.CasePassed || adult.Attempts != 2 || adult.Passes != 1 {
		t.Fatalf("adult case after the fix %+v", adult)
	}
	if c.Passed != 9 || c.Ready {
		t.Fatalf("passed %d ready %v: every case passed, but nothing is signed off", c.Passed, c.Ready)
	}

	// Sign-offs: unknown items are refused; each is recorded with who and when, and audited.
	if _, err := f.svc.SignOff(ctx, admin.SystemActor("test"), f.site, "no-such-item", "", false, "J. Registrar"); err == nil {
		t.Fatal("an unknown readiness item was signed off")
	}
	for i, it := range f.svc.Plan().Readiness {
		f.now = f.now.Add(time.Minute)
		so, err := f.svc.SignOff(ctx, admin.SystemActor("test"), f.site, it.ID, "reviewed", false, "J. Registrar")
		if err != nil {
			t.Fatal(err)
		}
		if so.ID == 0 || so.By != "J. Registrar" || !so.At.Equal(f.now) {
			t.Errorf("sign-off %d: %+v", i, so)
		}
	}
	c, err = f.svc.Certification(ctx, f.site)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Ready {
		t.Fatalf("not ready after every sign-off: %+v", c.Readiness)
	}
	// Revoking one makes it not ready again.
	f.now = f.now.Add(time.Minute)
	item := f.svc.Plan().Readiness[0].ID
	if _, err := f.svc.SignOff(ctx, admin.SystemActor("test"), f.site, item, "", true, "J. Registrar"); err != nil {
		t.Fatal(err)
	}
	c, err = f.svc.Certification(ctx, f.site)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ready || c.Readiness[0].Signed {
		t.Fatalf("still ready after revoking %s", item)
	}
	var n int
	var actor, after string
	if err := f.db.Pool.QueryRow(ctx, `SELECT count(*), max(actor), max(after::text) FROM audit_log
		WHERE target_type = 'site' AND target_id = $1 AND action LIKE 'certification.%' AND $2 = ANY (site_ids)`,
		fmt.Sprint(f.site.ID), f.site.ID).Scan(&n, &actor, &after); err != nil {
		t.Fatal(err)
	}
	if n != len(f.svc.Plan().Readiness)+1 || actor != "system:test" || !strings.Contains(after, "J. Registrar") {
		t.Errorf("audit log: %d entries, actor %q, after %s", n, actor, after)
	}
}

func caseResult(t *testing.T, c *report.Certification, id string) report.CaseResult {
	t.Helper()
	for _, r := range c.Cases {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no case %s", id)
	return report.CaseResult{}
}

// TestQualityAndReconcile: a production period with accepted, warned and rejected messages, a
// resend and messages outside the period or of another site.
func TestQualityAndReconcile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	site := f.other                                     // production
	w1 := time.Date(2025, 3, 11, 10, 0, 0, 0, time.UTC) // a Tuesday
	w2 := w1.AddDate(0, 0, 7)
	warn := `[{"rule":"rxa-15-missing","code":101,"severity":"W","text":"x"},{"rule":"rxa-17-missing","code":101,"severity":"W","text":"x"},{"rule":"rxa-15-missing","code":101,"severity":"W","text":"again"}]`
	f.archive(t, site.ID, "P", "P-1", w1, "AA", true, "", f.msgs["CERT-01-CHILD"])                 // 1 dose, complete, 1 day late
	f.archive(t, site.ID, "P", "P-2", w1, "AE", true, warn, f.msgs["CERT-02-ADULT"])               // 1 dose, no lot/mvx
	f.archive(t, site.ID, "P", "P-2", w1.Add(time.Hour), "AE", false, "", f.msgs["CERT-02-ADULT"]) // its resend
	f.archive(t, site.ID, "", "P-3", w1, "AR", false, `[{"rule":"msh-11-processing-id","code":202,"severity":"E","text":"x"}]`, f.msgs["CERT-03-HISTORICAL"])
	f.archive(t, site.ID, "P", "P-4", w2, "AA", true, "", f.msgs["CERT-06-MULTI"]) // 2 doses
	f.archive(t, site.ID, "P", "P-5", w2, "AR", false, `[{"rule":"message-unparseable","code":100,"severity":"E","text":"x"}]`, []byte("garbage"))
	f.archive(t, site.ID, "P", "P-5", w2.Add(time.Minute), "AA", true, "", f.msgs["CERT-07-NEXTOFKIN"]) // fixed: accepted
	f.archive(t, site.ID, "P", "P-OUT", w2.AddDate(0, 1, 0), "AA", true, "", f.msgs["CERT-01-CHILD"])   // after the period
	f.archive(t, site.ID, "T", "P-TEST", w1, "AA", true, "", f.msgs["CERT-01-CHILD"])                   // test environment
	f.archive(t, f.site.ID, "P", "P-1", w1, "AA", true, "", f.msgs["CERT-01-CHILD"])                    // another site

	from, to, err := report.ParseBounds("2025-03-10", "2025-03-23")
	if err != nil {
		t.Fatal(err)
	}
	p := report.Period{Env: "P", From: from, To: to}
	q, err := f.svc.Quality(ctx, site, p)
	if err != nil {
		t.Fatal(err)
	}
	v := q.Volume
	if q.Summarized != 7 || v.Messages != 6 || v.AA != 3 || v.AE != 1 || v.AR != 2 || v.Resends != 1 || v.Unreadable != 1 {
		t.Fatalf("summarized %d, volume %+v", q.Summarized, v)
	}
	if v.WithErrors != 2 || v.WithWarnings != 1 || v.Administered != 5 || v.Historical != 1 {
		t.Errorf("volume %+v", v)
	}
	rules := map[string]report.RuleCount{}
	for _, r := range q.Rules {
		rules[r.Severity+":"+r.Rule] = r
	}
	if r := rules["W:rxa-15-missing"]; r.Messages != 1 || r.Rate < 0.16 || r.Rate > 0.17 {
		t.Errorf("rule rxa-15-missing counted once per message: %+v", r)
	}
	if r := rules["E:msh-11-processing-id"]; r.Messages != 1 {
		t.Errorf("a message rejected before its environment was known counts: %+v", q.Rules)
	}
	comp := map[string]report.Completeness{}
	for _, c := range q.Completeness {
		comp[c.Item] = c
	}
	if c := comp["lot number"]; c.Count != 4 || c.Total != 5 {
		t.Errorf("lot completeness %+v", c)
	}
	if c := comp["funding eligibility"]; c.Count != 5 || c.Total != 5 {
		t.Errorf("funding completeness %+v", c)
	}
	if c := comp["race"]; c.Count != 5 || c.Total != 5 {
		t.Errorf("race completeness %+v (the unreadable message is not counted)", c)
	}
	// P-1's and P-2's doses (2025-03-10, -11) arrived 03-11, P-4's two (03-17) 03-18 and P-5's
	// (03-18) 03-18: all within a day, 3 days in all.
	if tl := q.Timeliness; tl.Doses != 5 || tl.Within1 != 5 || tl.MeanDays != 0.6 {
		t.Errorf("timeliness %+v", tl)
	}
	if len(q.Weeks) != 2 || !q.Weeks[0].Start.Equal(time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)) || q.Weeks[0].Messages != 3 || q.Weeks[1].Messages != 3 {
		t.Errorf("weeks %+v", q.Weeks)
	}
	// Summaries are made once: the same report again summarizes nothing and says the same.
	q2, err := f.svc.Quality(ctx, site, p)
	if err != nil {
		t.Fatal(err)
	}
	q2.Summarized, q2.GeneratedAt = q.Summarized, q.GeneratedAt
	if q2.Volume != q.Volume || q2.Timeliness != q.Timeliness || len(q2.Rules) != len(q.Rules) {
		t.Errorf("second report differs:\n%+v\n%+v", q, q2)
	}
	var csvOut bytes.Buffer
	if err := q.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&csvOut).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r[0] == "completeness (administered doses)" && r[1] == "lot number" && r[2] == "4" && r[3] == "5" && r[4] == "0.8000" {
			found = true
		}
	}
	if !found {
		t.Errorf("CSV lacks the lot completeness row:\n%s", csvOut.String())
	}

	// Reconciliation with a file: P-1, P-2 accepted; P-3 received and rejected; P-9 missing;
	// P-4 and P-5 unexpected; a junk line reported.
	claim, err := report.ParseControlIDs(strings.NewReader("P-1\nP-2\nP-3\nP-9\nnot an id\nP-1\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.Reconcile(ctx, site, p, claim)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != 5 || r.Accepted != 4 || r.Rejected != 1 || r.ClaimedAccepted != 2 || r.ClaimedRejected != 1 ||
		r.Missing != 1 || r.Unexpected != 2 || r.DuplicateLines != 1 || len(r.Junk) != 1 || r.Junk[0].Line != 5 {
		t.Fatalf("reconciliation %+v", r)
	}
	if strings.Join(r.MissingIDs, ",") != "P-9" || strings.Join(r.UnexpectedIDs, ",") != "P-4,P-5" || strings.Join(r.RejectedIDs, ",") != "P-3" {
		t.Errorf("ids: missing %v unexpected %v rejected %v", r.MissingIDs, r.UnexpectedIDs, r.RejectedIDs)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "line 5: contains spaces") || !strings.Contains(text.String(), "NOT RECONCILED") {
		t.Errorf("text:\n%s", text.String())
	}
	// With a count only.
	r, err = f.svc.Reconcile(ctx, site, p, &report.Claim{Count: 7})
	if err != nil {
		t.Fatal(err)
	}
	if r.ClaimKind != "count" || r.Received != 5 || r.Missing != 2 || r.Unexpected != 0 {
		t.Errorf("count reconciliation %+v", r)
	}
	// The closed days read whole were rolled up (report_days): a later report reads them there,
	// not in the messages' facts.
	var rolled, busy int
	if err := f.db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE tally[1] > 0) FROM report_days WHERE site_id = $1 AND env = 'P'`,
		site.ID).Scan(&rolled, &busy); err != nil {
		t.Fatal(err)
	}
	if rolled != 14 || busy != 2 {
		t.Errorf("%d days rolled up, %d with messages; want the 14 days of the period, 2 with messages (2025-03-11 and -18)", rolled, busy)
	}
	storetest.ClearFacts(t, f.db, site.ID)
	q3, err := f.svc.Quality(ctx, site, p)
	if err != nil {
		t.Fatal(err)
	}
	if q3.Summarized != 0 || q3.Volume != q.Volume || q3.Timeliness != q.Timeliness || len(q3.Rules) != len(q.Rules) || len(q3.Weeks) != 2 {
		t.Errorf("report from the rollups differs:\n%+v\n%+v", q, q3)
	}
	// A period cutting a day reads that day's part from the messages' facts and does not roll it up.
	half := report.Period{Env: "P", From: from, To: time.Date(2025, 3, 18, 12, 0, 0, 0, time.UTC)}
	if _, err := f.db.Pool.Exec(ctx, `DELETE FROM report_days WHERE site_id = $1`, site.ID); err != nil {
		t.Fatal(err)
	}
	qh, err := f.svc.Quality(ctx, site, half)
	if err != nil {
		t.Fatal(err)
	}
	if qh.Summarized != 7 || qh.Volume.Messages != 6 {
		t.Errorf("half period: summarized %d, %d messages", qh.Summarized, qh.Volume.Messages)
	}
	if err := f.db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE day = '2025-03-18') FROM report_days WHERE site_id = $1`,
		site.ID).Scan(&rolled, &busy); err != nil || rolled != 8 || busy != 0 {
		t.Errorf("%d days rolled up (%v), want 8 (03-10 to 03-17): the cut day is not", rolled, err)
	}

	// Bad periods are refused.
	if _, err := f.svc.Quality(ctx, site, report.Period{Env: "P", From: to, To: from}); err == nil {
		t.Error("a period ending before it starts was accepted")
	}
	if _, err := f.svc.Quality(ctx, site, report.Period{Env: "X", From: from, To: to}); err == nil {
		t.Error("environment X was accepted")
	}
}

// TestSummarizeConcurrent: two reports summarizing the same messages at once (the UPDATE of one
// of them meets the rows the other is setting) both succeed, and every message has its facts.
func TestSummarizeConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const n = 9000
	if _, err := f.db.Pool.Exec(ctx, `
		INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key)
		SELECT 'P', $1, 'mllp', 'C-' || g, '2025-03-01T00:00:00Z'::timestamptz + g * interval '1 minute', $2, 'ack'::bytea, 'AA', '[]', true
		FROM generate_series(1, $3::int) g`, f.other.ID, f.msgs["CERT-01-CHILD"], n); err != nil {
		t.Fatal(err)
	}
	from, to, _ := report.ParseBounds("2025-03-01", "2025-03-31")
	p := report.Period{SiteID: f.other.ID, Env: "P", From: from, To: to}
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := f.svc.Summarize(ctx, p); errs <- err }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if facts := storetest.FactsCount(t, f.db, f.other.ID); facts != n {
		t.Fatalf("%d summaries of %d messages", facts, n)
	}
	if again, err := f.svc.Summarize(ctx, p); err != nil || again != 0 {
		t.Fatalf("summarized %d again (%v)", again, err)
	}
	// A message arriving later in the period is found and summarized alone.
	f.archive(t, f.other.ID, "P", "C-LATE", time.Date(2025, 3, 2, 0, 0, 30, 0, time.UTC), "AA", true, "", f.msgs["CERT-02-ADULT"])
	if again, err := f.svc.Summarize(ctx, p); err != nil || again != 1 {
		t.Fatalf("summarized %d after one more message (%v)", again, err)
	}
}

// TestSummarizeRecent: the periodic summaries cover every site's messages of the lookback, in
// both environments, and leave older ones to the reports that need them.
func TestSummarizeRecent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.archive(t, f.site.ID, "T", "R-1", f.now.Add(-time.Hour), "AA", true, "", f.msgs["CERT-01-CHILD"])
	f.archive(t, f.site.ID, "", "R-2", f.now.Add(-2*time.Hour), "AR", false, "", []byte("junk"))
	f.archive(t, f.other.ID, "P", "R-3", f.now.Add(-47*time.Hour), "AA", true, "", f.msgs["CERT-02-ADULT"])
	f.archive(t, f.other.ID, "P", "R-OLD", f.now.Add(-72*time.Hour), "AA", true, "", f.msgs["CERT-02-ADULT"])
	n, err := f.svc.SummarizeRecent(ctx, 48*time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("summarized %d (%v), want 3", n, err)
	}
	rows, err := f.db.Pool.Query(ctx, `SELECT control_id FROM messages WHERE readable IS NOT NULL ORDER BY control_id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if strings.Join(got, ",") != "R-1,R-2,R-3" {
		t.Errorf("summarized %v", got)
	}
	if n, err := f.svc.SummarizeRecent(ctx, 48*time.Hour); err != nil || n != 0 {
		t.Errorf("summarized %d again (%v)", n, err)
	}
	// The closed days of the lookback (2025-03-30, R-3's, and -31) are rolled up; the day of
	// now is not closed.
	rows, err = f.db.Pool.Query(ctx, `SELECT site_id, env, day::text, tally[1] FROM report_days ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for rows.Next() {
		var site int64
		var env, day string
		var messages int64
		if err := rows.Scan(&site, &env, &day, &messages); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %s %d", site, env, day, messages))
	}
	// Both sites, both environments, the two closed days: 8 rollups, one of them with a message.
	want := fmt.Sprintf("%d P 2025-03-30 1", f.other.ID)
	withMessages := 0
	for _, r := range got {
		if !strings.HasSuffix(r, " 0") {
			withMessages++
			if r != want {
				t.Errorf("rollup %q, want %q", r, want)
			}
		}
	}
	if len(got) != 8 || withMessages != 1 {
		t.Errorf("rollups %q", got)
	}
}

// TestSummariesAfterCatchUp: after its first run, serve's periodic summaries leave the days that
// messages still arrive in to intake (which writes their facts), and summarize a day once it has
// closed, before rolling it up: a message archived without facts (by an older version, or by
// hand) is then counted in the day's rollup.
func TestSummariesAfterCatchUp(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	facts := func() int { return storetest.FactsCount(t, f.db, 0) }
	f.archive(t, f.other.ID, "P", "C-1", f.now.Add(-time.Hour), "AA", true, "", f.msgs["CERT-02-ADULT"])
	if n, err := f.svc.SummarizeClosed(ctx, 48*time.Hour); err != nil || n != 0 || facts() != 0 {
		t.Fatalf("the later runs summarized %d (%v), %d facts rows: the open day is intake's", n, err, facts())
	}
	if n, err := f.svc.SummarizeRecent(ctx, 48*time.Hour); err != nil || n != 1 {
		t.Fatalf("the first run summarized %d (%v), want 1", n, err)
	}
	f.archive(t, f.other.ID, "P", "C-2", f.now.Add(-30*time.Minute), "AE", true, "", f.msgs["CERT-02-ADULT"])
	if n, err := f.svc.SummarizeClosed(ctx, 48*time.Hour); err != nil || n != 0 {
		t.Fatalf("the later runs summarized %d (%v) in the open day", n, err)
	}
	// The day closes: C-2 is summarized before the day is rolled up with both messages.
	f.now = f.now.Add(25 * time.Hour)
	if n, err := f.svc.SummarizeClosed(ctx, 48*time.Hour); err != nil || n != 1 {
		t.Fatalf("the run after the day closed summarized %d (%v), want 1", n, err)
	}
	var messages, aa, ae int64
	if err := f.db.Pool.QueryRow(ctx, `SELECT tally[1], tally[2], tally[3] FROM report_days WHERE site_id = $1 AND env = 'P' AND day = '2025-04-01'`,
		f.other.ID).Scan(&messages, &aa, &ae); err != nil {
		t.Fatal(err)
	}
	if messages != 2 || aa != 1 || ae != 1 {
		t.Errorf("rollup of the closed day: %d messages, %d AA, %d AE; want 2, 1, 1", messages, aa, ae)
	}
	if n, err := f.svc.SummarizeClosed(ctx, 48*time.Hour); err != nil || n != 0 {
		t.Errorf("summarized %d again (%v)", n, err)
	}
}
