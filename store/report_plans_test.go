package store_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestReportPlans: the reports' queries over a site's period read messages through its index by
// site, environment and time (messages_site_env_received) — and the catch-up's look-up through
// the partial index of messages without facts (messages_without_facts) — never by a scan of the
// whole archive, both as planned for the given period (custom plans) and as planned once for any
// period (generic plans, which a prepared statement may switch to). The archive: 40 sites'
// messages of about 1 kB over 30 days, analysed, a few without facts.
func TestReportPlans(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO organizations (id, code, name) VALUES (1, 'ORG', 'Org');
		INSERT INTO sites (id, organization_id, code, name, status)
			SELECT s, 1, 'S' || s, 'Site ' || s, 'production' FROM generate_series(1, 40) s;
		INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key,
			readable, has_errors, has_warnings, finding_keys, administered, historical, refusals, immunity, with_lot,
			with_mvx, with_funding, with_vis, has_race, has_ethnicity, has_address, lag_1, lag_7, lag_30, lag_late, lag_days)
		SELECT CASE WHEN g % 97 = 0 THEN NULL ELSE 'P' END, g % 40 + 1, 'mllp', 'C-' || g,
			'2025-03-01T00:00:00Z'::timestamptz + g * interval '43 seconds', convert_to(repeat('MSH|^~\&|EHR|FAC|', 60), 'UTF8'),
			'\x00', 'AA', '[]', true, true, false, false, '{I:pd1-12-recorded}', 1, 0, 0, 0, 1, 1, 1, 1, true, true, true,
			1, 0, 0, 0, 1
		FROM generate_series(1, 60000) g;
		UPDATE messages SET readable = NULL, has_errors = NULL, has_warnings = NULL, finding_keys = NULL,
			administered = NULL, historical = NULL, refusals = NULL, immunity = NULL, with_lot = NULL, with_mvx = NULL,
			with_funding = NULL, with_vis = NULL, has_race = NULL, has_ethnicity = NULL, has_address = NULL, lag_1 = NULL,
			lag_7 = NULL, lag_30 = NULL, lag_late = NULL, lag_days = NULL
		WHERE id % 1000 = 0;`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE messages`); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	args := []any{int64(7), "P", from, from.Add(7 * 24 * time.Hour)}
	names := make([]string, 0, len(store.ReportQueries))
	for name := range store.ReportQueries {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sql := store.ReportQueries[name]
		want := "messages_site_env_received"
		if name == "missing facts" {
			want = "messages_without_facts"
		}
		check := func(kind, plan string) {
			t.Helper()
			if !strings.Contains(plan, want) || strings.Contains(plan, "Seq Scan on messages") {
				t.Errorf("%s, %s plan does not read %s:\n%s", name, kind, want, plan)
			}
		}
		plan := explain(ctx, t, db.Pool, "EXPLAIN "+sql, args...)
		t.Logf("%s:\n%s", name, plan)
		check("custom", plan)
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `PREPARE report_q (bigint, text, timestamptz, timestamptz) AS `+sql); err != nil {
				return err
			}
			defer func() { _, _ = tx.Exec(ctx, `DEALLOCATE report_q`) }()
			// The generic plan does not depend on the values.
			check("generic", explain(ctx, t, tx, `EXPLAIN EXECUTE report_q (7, 'P', '2025-03-10T00:00:00Z', '2025-03-17T00:00:00Z')`))
			return nil
		})
		if err != nil {
			t.Fatalf("%s: generic plan: %v", name, err)
		}
	}
}

// TestSaveFactsPlan: the summaries' UPDATE of a chunk of 2,000 messages' facts
// (report.Service.Summarize's chunk) finds each archive row by its primary key, not by a scan of
// the archive.
func TestSaveFactsPlan(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code)
		SELECT 'P', 1, 'mllp', 'C-' || g, now(), convert_to(repeat('MSH|^~\&|EHR|FAC|', 60), 'UTF8'), '\x00', 'AA'
		FROM generate_series(1, 50000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE messages`); err != nil {
		t.Fatal(err)
	}
	rs := make([]report.FactsRow, 2000)
	for i := range rs {
		rs[i] = report.FactsRow{MessageID: int64(20000 + 7*i), Readable: true, Findings: []string{"W:x"}}
	}
	sql, args := store.UpdateFacts(rs)
	c, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if err := store.RegisterRowTypes(ctx, c.Conn()); err != nil {
		t.Fatal(err)
	}
	plan := explain(ctx, t, c, "EXPLAIN "+sql, args...)
	t.Logf("%s", plan)
	if !strings.Contains(plan, "messages_pkey") || strings.Contains(plan, "Seq Scan on messages") {
		t.Errorf("the facts UPDATE does not find its rows by primary key:\n%s", plan)
	}
}

// explain returns the lines of an EXPLAIN.
func explain(ctx context.Context, t *testing.T, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, args ...any) string {
	t.Helper()
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return strings.Join(lines, "\n")
}
