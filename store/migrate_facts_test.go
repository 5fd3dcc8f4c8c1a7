package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestMigrateFactsIntoMessages: a database of the old shape (migration 011) with report_facts
// rows migrates to the facts as columns of messages (014): every row's facts are copied to its
// message column by column (the resend flag, no longer stored, reads back the same from the
// archive columns); a message of a known site that had no facts row, and a message without a
// site, have none (NULL); report_facts and its index are gone; the catch-up's partial index
// holds the known site's message without facts alone, and a report summarizes it and counts
// every message.
func TestMigrateFactsIntoMessages(t *testing.T) {
	ctx := context.Background()
	db, exec := migratedTo(t, 11)
	exec(`INSERT INTO organizations (id, code, name) VALUES (1, 'ORG', 'Org')`)
	exec(`INSERT INTO sites (id, organization_id, code, name, status) VALUES (1, 1, 'SITE', 'Site', 'production')`)
	at := time.Date(2025, 3, 10, 9, 30, 0, 0, time.UTC)
	vxu := func(ctl string) []byte {
		return []byte("MSH|^~\\&|EHR|FAC|VAXGATE|VAXGATE|20250310||VXU^V04^VXU_V04|" + ctl + "|P|2.5.1\r" +
			"PID|1||MRN-1^^^AUTH^MR||Doe^Ana||20200101|F||2106-3^White^CDCREC|1 Main St^^Town^ST^12345|||||||||||2186-5^Not^CDCREC\r" +
			"ORC|RE||O1^FAC\rRXA|0|1|20250301|20250301|08^HepB^CVX|0.5|mL||00^New^NIP001||||||L1||MSD^Merck^MVX\r")
	}
	// 1: accepted, with facts; 2: its resend copy (archived without the resend key), with facts;
	// 3: rejected before its environment was known, with facts; 4: a known site's message without
	// facts (archived before intake wrote them); 5: an unknown sender's message.
	msgs := []struct {
		id        int
		env, site any
		ctl, code string
		resendKey bool
		findings  string
	}{
		{1, "P", 1, "C1", "AA", true, `[{"rule":"rxa-17-missing","severity":"W"}]`},
		{2, "P", 1, "C1", "AA", false, `[{"rule":"rxa-17-missing","severity":"W"}]`},
		{3, nil, 1, "C3", "AR", false, `[{"rule":"msh-11-processing-id","severity":"E"}]`},
		{4, "P", 1, "C4", "AE", true, `[{"rule":"vis-missing","severity":"W"},{"rule":"lot-missing","severity":"W"}]`},
		{5, nil, nil, "C5", "AR", false, `[{"rule":"unknown-sender","severity":"E"}]`},
	}
	for _, m := range msgs {
		exec(`INSERT INTO messages (id, env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key)
			VALUES ($1, $2, $3, 'mllp', $4, $5, $6, '\x00', $7, $8, $9)`, m.id, m.env, m.site, m.ctl, at.Add(time.Duration(m.id)*time.Minute),
			vxu(m.ctl), m.code, m.findings, m.resendKey)
	}
	// The facts rows of 1 to 3 as the summaries computed them before 012.
	st := store.NewReportStore(db)
	archived, err := st.ArchivedForFacts(ctx, []int64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]report.FactsRow{}
	var m hl7.Message
	for _, a := range archived {
		r := storetest.StoredColumns(report.Summarized(&m, a))
		want[r.MessageID] = r
		f := &r.Facts
		exec(`INSERT INTO report_facts (message_id, site_id, env, received_at, control_id, ack_code, resend, readable,
				has_errors, has_warnings, findings, administered, historical, refusals, immunity, with_lot, with_mvx,
				with_funding, with_vis, race, ethnicity, address, lag_1, lag_7, lag_30, lag_late, lag_days)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
				$23, $24, $25, $26, $27)`,
			r.MessageID, r.SiteID, r.Env, r.ReceivedAt, r.ControlID, r.ACKCode, r.Resend, r.Readable, r.Errors, r.Warnings,
			r.Findings, f.Administered, f.Historical, f.Refusals, f.Immunity, f.WithLot, f.WithMVX, f.WithFunding, f.WithVIS,
			f.Race, f.Ethnicity, f.Address, f.Lag1, f.Lag7, f.Lag30, f.LagLate, f.LagDays)
	}
	if !want[2].Resend || want[1].Resend || want[3].Env != "" || !want[3].Errors || want[1].Facts.Administered != 1 ||
		want[1].Facts.Lag30 != 1 || !want[1].Facts.Race || !want[1].Facts.Address {
		t.Fatalf("the old rows are not the cases this test is about: %+v", want)
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate to 012: %v", err)
	}

	stored, err := st.StoredFacts(ctx, []int64{1, 2, 3, 4, 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 3 {
		t.Fatalf("%d messages with facts after the migration, want 3 (1 to 3)", len(stored))
	}
	for _, r := range stored {
		if d := storetest.DiffFacts(r, want[r.MessageID]); d != "" {
			t.Errorf("message %d: facts after the migration differ from its report_facts row: %s", r.MessageID, d)
		}
	}
	var table *string
	var index *string
	var without []int64
	if err := db.Pool.QueryRow(ctx, `SELECT to_regclass('report_facts')::text, to_regclass('report_facts_site')::text`).
		Scan(&table, &index); err != nil {
		t.Fatal(err)
	}
	if table != nil || index != nil {
		t.Errorf("left behind: %v %v", table, index)
	}
	// The partial index, read alone (an index-only scan of it: the predicate is the index's).
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM messages
		WHERE readable IS NULL AND site_id IS NOT NULL`).Scan(&without); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(without) != "[4]" {
		t.Errorf("messages of known sites without facts %v, want [4]", without)
	}

	// A report over the day summarizes message 4 and counts the site's four messages.
	svc := report.NewService(st, report.Options{Now: func() time.Time { return at.Add(72 * time.Hour) }})
	site, err := svc.Site(ctx, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	from, to, err := report.ParseBounds("2025-03-10", "2025-03-10")
	if err != nil {
		t.Fatal(err)
	}
	q, err := svc.Quality(ctx, site, report.Period{Env: "P", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if v := q.Volume; q.Summarized != 1 || v.Messages != 3 || v.Resends != 1 || v.AE != 1 || v.AR != 1 || v.WithErrors != 1 ||
		v.WithWarnings != 2 || v.Administered != 3 {
		t.Errorf("quality after the migration: summarized %d, volume %+v; want 1 summarized, 3 messages (1 AE, 1 AR, 1 with "+
			"errors, 2 with warnings, 3 doses) and a resend",
			q.Summarized, q.Volume)
	}
	if n := storetest.CheckFacts(t, db); n != 4 {
		t.Errorf("checked %d messages, want 4", n)
	}
}

// BenchmarkMigrateFacts measures migration 014 on an archive of 1,000,000 messages (about 1 kB
// each) that all have a report_facts row (VAXGATE_BENCH_MESSAGES overrides the count): the time
// of the migration (ADD COLUMN, the UPDATE … FROM report_facts, the partial index, ANALYZE).
//
//	go test -run XXX -bench MigrateFacts -benchtime 1x ./store
func BenchmarkMigrateFacts(b *testing.B) {
	benchMigration(b, 11,
		`INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key)
		SELECT 'P', 1, 'mllp', 'C-' || g, '2025-03-01T00:00:00Z'::timestamptz + g * interval '2 seconds',
			convert_to(repeat('MSH|^~\&|EHR|FAC|', 60), 'UTF8'), '\x00', 'AA', '[]', true
		FROM generate_series(1, $1::int) g`,
		`INSERT INTO report_facts SELECT id, site_id, env, received_at, control_id, ack_code, false, true, false, false,
			'{}', 1, 0, 0, 0, 1, 1, 1, 1, true, true, true, 1, 0, 0, 0, 1 FROM messages`,
		`VACUUM ANALYZE messages`, `VACUUM ANALYZE report_facts`)
}
