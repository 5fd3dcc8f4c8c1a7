package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// hotTables are the tables the writer reads and updates by key on every batch.
var hotTables = []string{"patients", "registry_patients", "vaccinations"}

// seqScans reads the whole-table scans PostgreSQL counted on the hot tables (as far as backends
// have reported them: see waitStats).
func seqScans(ctx context.Context, t *testing.T, pool *pgxpool.Pool) (scans map[string]int64, idx, idxRead int64) {
	t.Helper()
	scans = map[string]int64{}
	rows, err := pool.Query(ctx, `SELECT relname, seq_scan, COALESCE(idx_scan, 0),
			(SELECT COALESCE(sum(i.idx_tup_read), 0)::bigint FROM pg_stat_user_indexes i WHERE i.relid = t.relid)
		FROM pg_stat_user_tables t WHERE relname = ANY($1)`, hotTables)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var s, i, r int64
		if err := rows.Scan(&name, &s, &i, &r); err != nil {
			t.Fatal(err)
		}
		scans[name] = s
		idx += i
		idxRead += r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return scans, idx, idxRead
}

// autovacuumOff turns autovacuum off for the tables the writer reads by key: their statistics are
// then the writer's alone.
func autovacuumOff(ctx context.Context, t *testing.T, db *store.DB) {
	t.Helper()
	for _, tbl := range append([]string{"messages"}, hotTables...) {
		if _, err := db.Pool.Exec(ctx, "ALTER TABLE "+tbl+" SET (autovacuum_enabled = false)"); err != nil {
			t.Fatal(err)
		}
	}
}

// freshSite registers a production site to write for.
func freshSite(ctx context.Context, t *testing.T, db *store.DB) *ingest.Sender {
	t.Helper()
	s := &ingest.Sender{SiteCode: "SITE-F", Status: ingest.SiteProduction}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ('ORG-F', 'F') RETURNING id`).Scan(&s.OrganizationID); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, 'SITE-F', 'F', 'production') RETURNING id`,
		s.OrganizationID).Scan(&s.SiteID); err != nil {
		t.Fatal(err)
	}
	return s
}

// newPatientsWriter returns a function that writes batches of per generated first reports of new
// patients through w, as s, each batch committed before the next is queued.
func newPatientsWriter(ctx context.Context, t *testing.T, w *store.Writer, s *ingest.Sender) func(batches, per int) {
	gen := vxugen.New(vxugen.Options{Seed: 11, ControlIDs: "F", NewPatients: true, Now: time.Now()})
	b := ack.NewBuilder([]string{"vaxgate"}, nil, ack.DefaultPolicy)
	return func(batches, per int) {
		t.Helper()
		for i := 0; i < batches; i++ {
			var pend []ingest.Pending
			for j := 0; j < per; j++ {
				raw := gen.Next()
				m, err := hl7.Parse(raw)
				if err != nil {
					t.Fatal(err)
				}
				h := ack.HeaderOf(m)
				pend = append(pend, w.Commit(&ingest.Record{
					Transport: ingest.TransportMLLP, Sender: s, Env: "P", ControlID: h.ControlID, Facility: "X68",
					MessageType: "VXU^V04", ReceivedAt: time.Now(), Raw: raw, ACK: b.Build(h, ack.AA, nil), ACKCode: ack.AA,
					ResendKey: true, VXU: ingest.Decode(m),
				}))
			}
			for _, p := range pend {
				if _, err := p.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// fillRegistry adds a registry's worth of rows (30,000 patients, registry patients, vaccinations
// and archived messages) as a bulk load would write them, with no ANALYZE.
func fillRegistry(ctx context.Context, t *testing.T, db *store.DB, s *ingest.Sender) {
	t.Helper()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, fill := range []string{
		`INSERT INTO registry_patients (id, env, family_name, given_name, birth_date)
			SELECT 1000000 + g, 'P', 'fam' || g % 500, 'giv' || g % 300, date '2008-01-01' + g % 6000 FROM generate_series(1, 30000) g`,
		`INSERT INTO patients (env, organization_id, id_value, id_authority, id_type, registry_patient_id, birth_date,
				match_family, match_given)
			SELECT 'P', ` + fmt.Sprint(s.OrganizationID) + `, 'BULK' || g, 'EHR', 'MR', 1000000 + g, date '2008-01-01' + g % 6000,
				'fam' || g % 500, 'giv' || g % 300
			FROM generate_series(1, 30000) g`,
		`INSERT INTO vaccinations (env, patient_id, registry_patient_id, organization_id, site_id, filler_order_id,
				administered_on, dose_key, historical, report_messages, report_groups)
			SELECT 'P', p.id, p.registry_patient_id, p.organization_id, ` + fmt.Sprint(s.SiteID) + `, 'ORD' || p.id,
				date '2026-01-01', 'cvx:08', false, ARRAY[(SELECT min(id) FROM messages)], '{1}'
			FROM patients p WHERE p.id_value LIKE 'BULK%'`,
		`INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, content_digest)
			SELECT 'P', ` + fmt.Sprint(s.SiteID) + `, 'mllp', 'BULK' || g, now() - g * interval '1 second', '\x00', '\x00', 'AA',
				sha256(g::text::bytea)
			FROM generate_series(1, 30000) g`,
		`SELECT pg_stat_force_next_flush()`,
	} {
		if _, err := conn.Exec(ctx, fill); err != nil {
			conn.Release()
			t.Fatalf("fill: %v", err)
		}
	}
	conn.Release()
}

// TestFreshDatabaseStaysOnIndexes: a registry starts vaxgate on an empty database, its writer's
// connections live long, and autovacuum may not have analysed the tables for a while (or analysed
// them while they were empty). PostgreSQL caches a generic plan of a prepared statement after five
// executions and keeps it until the tables' statistics change: a batch look-up planned while the
// tables were empty would then keep reading them whole as they grow, and throughput would fall
// with every message. The writer writes batches on an empty database (never analysed, and
// analysed while empty), the tables are then filled with 30,000 patients and vaccinations
// (autovacuum off, no ANALYZE), and the writer's next batches must not scan any of the tables it
// reads by key.
//
// Whole-table scans are not the only way to read a table whole: a plan made from no statistics may
// walk a whole index for each key (all patients of an environment, say). So the index entries the
// batches read are bounded per record too. With the writer keeping its tables' statistics
// (StatsInterval > 0) its statements run on kept plans once the statistics describe the filled
// tables; without (StatsInterval < 0), its look-ups are planned for every batch.
func TestFreshDatabaseStaysOnIndexes(t *testing.T) {
	for _, tc := range []struct {
		analysed bool
		stats    time.Duration
	}{{false, 100 * time.Millisecond}, {true, 100 * time.Millisecond}, {false, -1}} {
		analysed := tc.analysed
		t.Run(fmt.Sprintf("analysed-empty=%v/keeper=%v", analysed, tc.stats > 0), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			db := storetest.New(t)
			autovacuumOff(ctx, t, db)
			if analysed {
				if _, err := db.Pool.Exec(ctx, "ANALYZE messages, patients, registry_patients, vaccinations"); err != nil {
					t.Fatal(err)
				}
			}
			s := freshSite(ctx, t, db)
			w, err := db.NewWriter(store.WriterOptions{MaxBatch: 16, MaxDelay: 50 * time.Millisecond, Shards: 1, StatsInterval: tc.stats})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			write := newPatientsWriter(ctx, t, w, s)
			write(12, 8) // more than five executions of every statement, on the (nearly) empty tables

			fillRegistry(ctx, t, db, s)
			time.Sleep(200 * time.Millisecond)
			if tc.stats > 0 {
				// The writer analyses the tables it reads by key once they have grown.
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					var small int
					if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname = ANY($1) AND reltuples < 30000`,
						append([]string{"messages"}, hotTables...)).Scan(&small); err != nil {
						t.Fatal(err)
					}
					if small == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d of the writer's tables not analysed 30 s after they grew to 30,000 rows", small)
					}
				}
				time.Sleep(300 * time.Millisecond) // its next check decides to keep plans
			}
			before, idx0, read0 := seqScans(ctx, t, db.Pool)

			write(12, 8)
			// Backends report their counters when idle, at least 1 s apart (10 s at most): wait
			// until the writer's index scans of the second round show.
			var after map[string]int64
			var read int64
			for deadline := time.Now().Add(30 * time.Second); ; {
				var idx int64
				after, idx, read = seqScans(ctx, t, db.Pool)
				if idx > idx0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the writer's scans were not reported within 30 s")
				}
				time.Sleep(500 * time.Millisecond)
			}
			for _, tbl := range hotTables {
				if d := after[tbl] - before[tbl]; d > 0 {
					t.Errorf("%s: %d whole-table scans by 12 batches once it held 30,000 rows", tbl, d)
				}
			}
			// 96 records, each a few keys: a plan walking a whole index reads ~30,000 entries per key.
			const records, perRecord = 12 * 8, 50
			if d := read - read0; d > records*perRecord {
				t.Errorf("12 batches of 8 records read %d index entries of the registry tables (%.0f per record), want at most %d per record",
					d, float64(d)/records, perRecord)
			} else {
				t.Logf("12 batches of 8 records read %d index entries of the registry tables (%.1f per record)", d, float64(d)/records)
			}
		})
	}
}

// archiveIndexUse reads, per index of the archive, the scans and entries read that backends have
// reported.
func archiveIndexUse(ctx context.Context, t *testing.T, pool *pgxpool.Pool) map[string][2]int64 {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT indexrelname::text, idx_scan, idx_tup_read FROM pg_stat_user_indexes WHERE relname = 'messages'`)
	if err != nil {
		t.Fatal(err)
	}
	use := map[string][2]int64{}
	for rows.Next() {
		var name string
		var scans, read int64
		if err := rows.Scan(&name, &scans, &read); err != nil {
			t.Fatal(err)
		}
		use[name] = [2]int64{scans, read}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return use
}

// TestFreshArchiveAnalysedEarly: on a fresh database the writer's first statistics cannot wait for
// its interval. Without any, PostgreSQL prices the resend look-up on the archive's (site, env,
// received_at) index as cheaply as on the resend index, and then reads every archived message of
// the site for each key: make bench's fresh phase had one batch take 1.2–1.6 s at about 12,000
// messages, before the first check 2 s in. With an interval of an hour, the writer's own clock of
// committed records must analyse the archive within its first batches, and the batches after
// that must not read that index at all. (Which of the two equally priced indexes PostgreSQL takes
// without statistics depends on the tables' sizes of the moment; here, without the early clock,
// it took the right one: the first check is the one that fails then.)
func TestFreshArchiveAnalysedEarly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := storetest.New(t)
	autovacuumOff(ctx, t, db)
	s := freshSite(ctx, t, db)
	w, err := db.NewWriter(store.WriterOptions{MaxBatch: 64, MaxDelay: 50 * time.Millisecond, Shards: 1, StatsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	write := newPatientsWriter(ctx, t, w, s)

	write(4, 60) // 240 records: past the first early ANALYZE, due at 100
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var analysed float64
		if err := db.Pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE relname = 'messages'`).Scan(&analysed); err != nil {
			t.Fatal(err)
		}
		if analysed >= 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archive's statistics describe %.0f rows 10 s after 240 records were committed: not analysed by the writer's own clock", analysed)
		}
	}
	// Backends report their counters when idle, at least 1 s apart: each record's resend look-up
	// is one index scan of the archive (by either index), so a phase is reported once the scans
	// of its records show.
	lookups := func(use map[string][2]int64) int64 {
		return use["messages_resend"][0] + use["messages_site_env_received"][0]
	}
	reported := func(records int64) map[string][2]int64 {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
			use := archiveIndexUse(ctx, t, db.Pool)
			if lookups(use) >= records {
				return use
			}
			if time.Now().After(deadline) {
				t.Fatalf("the resend look-ups of %d records were not reported within 30 s: %v", records, use)
			}
		}
	}
	before := reported(240)

	const batches, per = 30, 60
	write(batches, per)
	after := reported(lookups(before) + batches*per)
	if d := after["messages_site_env_received"][1] - before["messages_site_env_received"][1]; d > 0 {
		t.Errorf("%d records read %d entries of messages_site_env_received (every archived message of the site, for each key); %v before, %v after", batches*per, d, before, after)
	}
}

// TestRestoredTablesAnalysed: a registry restored with pg_restore (or moved to a new major version
// with pg_upgrade) starts with its rows counted and no column statistics: reltuples, which CREATE
// INDEX sets, matches the live rows, so nothing looks stale by count, yet every index looks alike
// to the planner, as on a fresh database. The writer's first check must analyse such tables.
func TestRestoredTablesAnalysed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := storetest.New(t)
	keyed := append([]string{"messages"}, hotTables...)
	autovacuumOff(ctx, t, db)
	s := freshSite(ctx, t, db)
	fillRegistry(ctx, t, db, s)
	// As pg_restore leaves them: the indexes built after the rows were loaded.
	for _, tbl := range keyed {
		if _, err := db.Pool.Exec(ctx, "REINDEX TABLE "+tbl); err != nil {
			t.Fatal(err)
		}
	}
	var counted, withStats int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE c.reltuples >= 30000),
			count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pg_stats p WHERE p.tablename = c.relname))
		FROM pg_class c WHERE c.relname = ANY($1)`, keyed).Scan(&counted, &withStats); err != nil {
		t.Fatal(err)
	}
	if counted != len(keyed) || withStats != 0 {
		t.Fatalf("set-up: %d of %d tables with their rows counted, %d with column statistics; want all, none", counted, len(keyed), withStats)
	}

	w, err := db.NewWriter(store.WriterOptions{Shards: 1, StatsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var missing []string
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}')
			FROM pg_class c WHERE c.relname = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_stats p WHERE p.tablename = c.relname)`,
			keyed).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the writer started, no column statistics for %v", missing)
		}
	}
}
