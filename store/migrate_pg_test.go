package store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestMigratePGStorage: migration 011 leaves room on the pages of the tables intake updates on
// nearly every message (patients, registry_patients, vaccinations: fillfactor 80, so that their
// updates can be HOT), and stores an archive row under 8 kB in line and uncompressed (messages:
// toast_tuple_target 8160) — no pglz attempt and no TOAST row per message. A typical archive
// row (2 to 2.5 kB, over PostgreSQL's 2 kB TOAST threshold) reads back in line.
func TestMigratePGStorage(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	want := map[string]string{
		"patients":          "fillfactor=80",
		"registry_patients": "fillfactor=80",
		"vaccinations":      "fillfactor=80",
		"messages":          "toast_tuple_target=8160",
	}
	for table, opt := range want {
		var opts []string
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = $1::regclass`,
			table).Scan(&opts); err != nil {
			t.Fatalf("%s: reloptions: %v", table, err)
		}
		found := false
		for _, o := range opts {
			found = found || o == opt
		}
		if !found {
			t.Errorf("%s: reloptions %v, want %s", table, opts, opt)
		}
	}

	// A compressible 2.4 kB message with its ACK and findings: before 011 raw was compressed
	// (or moved out of line); now the row is stored as it is.
	raw := bytes.Repeat([]byte("MSH|^~\\&|EHR|FAC|VAXGATE|VAXGATE|20240101||VXU^V04^VXU_V04|C1|P|2.5.1\r"), 40)[:2400]
	ack := bytes.Repeat([]byte("MSA|AA|C1\r"), 45)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO messages (id, transport, control_id, received_at, raw, ack, ack_code, findings)
		VALUES (1, 'mllp', 'C1', now(), $1, $2, 'AA', '[{"rule":"x"}]')`, raw, ack); err != nil {
		t.Fatalf("insert message: %v", err)
	}
	var compression *string
	var stored, toastRows int64
	if err := db.Pool.QueryRow(ctx, `SELECT pg_column_compression(raw), pg_column_size(raw) FROM messages WHERE id = 1`).
		Scan(&compression, &stored); err != nil {
		t.Fatalf("read message: %v", err)
	}
	var toast string
	if err := db.Pool.QueryRow(ctx, `SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'messages'::regclass`).
		Scan(&toast); err != nil {
		t.Fatalf("toast table: %v", err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+toast).Scan(&toastRows); err != nil {
		t.Fatalf("count %s: %v", toast, err)
	}
	if compression != nil || stored < int64(len(raw)) || toastRows != 0 {
		t.Errorf("archive row of %d bytes: raw compression %v, stored %d bytes, %d TOAST rows; want in line, uncompressed",
			len(raw)+len(ack), deref(compression), stored, toastRows)
	}
}

func deref(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}

// TestReportedAgainUpdatesAreHOT: updating full pages of patients and registry patients the way
// the writer does when a sender reports them again (same identity, name and birth date; the
// report list grows) is mostly HOT — heap-only, no index entries — because migration 011 leaves
// room on their pages. At fillfactor 100 the same updates find their pages full and insert into
// every index instead (counted in the transaction itself: pg_stat_xact_user_tables).
func TestReportedAgainUpdatesAreHOT(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	const n = 600 // about 20 pages of each table
	for _, sql := range []string{
		`INSERT INTO registry_patients (id, env, family_name, given_name, birth_date)
			SELECT g, 'P', 'Family' || g, 'Given', date '2020-01-01' + g FROM generate_series(1, 600) g`,
		`INSERT INTO patients (id, env, organization_id, id_value, registry_patient_id, family_name, given_name,
			birth_date, match_family, match_given, report_messages)
			SELECT g, 'P', 1, 'MRN' || g, g, 'Family' || g, 'Given', date '2020-01-01' + g, 'FAMILY' || g, 'GIVEN', '{1}'
			FROM generate_series(1, 600) g`,
		`UPDATE patients SET family_name = family_name, birth_date = birth_date, match_family = match_family,
			report_messages = report_messages || 2::bigint, updated_at = now()`,
		`UPDATE registry_patients SET family_name = family_name, birth_date = birth_date, sharing = 'Y', updated_at = now()`,
	} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, table := range []string{"patients", "registry_patients"} {
		var upd, hot int64
		if err := tx.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = $1`,
			table).Scan(&upd, &hot); err != nil {
			t.Fatalf("%s: stats: %v", table, err)
		}
		// With 20% of each page free, at least a fifth of the rows' new versions fit beside them
		// (more for the narrower registry rows); at fillfactor 100, only those of the last page.
		if upd != n || hot < n/5 {
			t.Errorf("%s: %d updates, %d HOT; want %d, at least %d HOT", table, upd, hot, n, n/5)
		}
	}
}

// TestArchiveStatistics: after migration 016, ANALYZE leaves the archive's wide columns out and
// samples the others with a statistics target of 30 (9,000 rows), the writer's own target.
func TestArchiveStatistics(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	wide := map[string]bool{"raw": true, "ack": true, "findings": true, "more_findings": true}
	rows, err := db.Pool.Query(ctx, `SELECT attname::text, attstattarget FROM pg_attribute
		WHERE attrelid = 'messages'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]int{}
	for rows.Next() {
		var name string
		var target int
		if err := rows.Scan(&name, &target); err != nil {
			t.Fatal(err)
		}
		targets[name] = target
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name, target := range targets {
		want := 30
		if wide[name] {
			want = 0
		}
		if target != want {
			t.Errorf("messages.%s: statistics target %d, want %d", name, target, want)
		}
	}
	if len(targets) < 30 {
		t.Fatalf("messages has %d columns", len(targets))
	}

	// ANALYZE then has statistics for the key columns and none for the wide ones.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO messages (id, site_id, env, transport, control_id, received_at, raw, ack, ack_code)
		SELECT g, 1, 'P', 'mllp', 'C' || g, now(), convert_to(repeat(md5(g::text), 38), 'UTF8'), '\x4d5341'::bytea, 'AA'
		FROM generate_series(1, 2000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE messages`); err != nil {
		t.Fatal(err)
	}
	var keyStats, wideStats int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE attname IN ('control_id', 'received_at', 'site_id')),
		count(*) FILTER (WHERE attname IN ('raw', 'ack', 'findings', 'more_findings'))
		FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'messages'`).Scan(&keyStats, &wideStats); err != nil {
		t.Fatal(err)
	}
	if keyStats != 3 || wideStats != 0 {
		t.Errorf("after ANALYZE: %d of 3 key columns with statistics, %d wide ones; want 3 and 0", keyStats, wideStats)
	}
}

// BenchmarkAnalyzeArchive measures one ANALYZE of an archive of VAXGATE_BENCH_MESSAGES (default
// 200,000) rows of about 2 kB, with the column statistics of migration 015 (PostgreSQL's default
// target everywhere) and of the latest migration.
func BenchmarkAnalyzeArchive(b *testing.B) {
	n := benchMessages(200_000)
	for _, v := range []struct {
		name    string
		version int32
	}{{"015", 15}, {"latest", 0}} {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := store.Open(ctx, storetest.NewEmptyURL(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if v.version > 0 {
				err = store.MigrateTo(ctx, db, v.version)
			} else {
				err = db.Migrate(ctx)
			}
			if err != nil {
				b.Fatal(err)
			}
			// Rows shaped like make bench's: a 1.2 kB raw message, a 400-byte ACK, two findings.
			if _, err := db.Pool.Exec(ctx, `INSERT INTO messages (id, site_id, env, transport, control_id, sending_facility,
					message_type, received_at, raw, ack, ack_code, findings, content_digest, readable)
				SELECT g, 1 + g % 3, 'P', 'mllp', 'CTL' || g, 'FAC', 'VXU^V04', now() - (g || ' s')::interval,
					convert_to(repeat(md5(g::text), 38), 'UTF8'), convert_to(repeat(md5((g + 1)::text), 12), 'UTF8'),
					'AE', '[{"code":101,"severity":"W","text":"missing"},{"code":103,"severity":"I","text":"value"}]',
					decode(md5(g::text), 'hex'), true
				FROM generate_series(1, $1::int) g`, n); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := db.Pool.Exec(ctx, `ANALYZE messages`); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
