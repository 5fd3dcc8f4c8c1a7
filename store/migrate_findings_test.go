package store_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestMigrateFindingsToJSON: archive rows whose findings were stored as jsonb (migration 014)
// keep every finding when the column becomes json (015) — escapes, non-ASCII text, an empty
// list, a message with more findings than its ACK listed — a statement prepared before the
// migration still runs after it, and a row inserted afterwards without findings gets an empty
// list.
func TestMigrateFindingsToJSON(t *testing.T) {
	ctx := context.Background()
	db, exec := migratedTo(t, 14)
	exec(`INSERT INTO organizations (id, code, name) VALUES (1, 'ORG', 'Org')`)
	exec(`INSERT INTO sites (id, organization_id, code, name, status) VALUES (1, 1, 'SITE', 'Site', 'production')`)
	findings := []string{
		`[]`,
		`[{"rule":"length-exceeded","location":"ORC[1]-3.0.0","code":102,"severity":"I","app":4,"text":"ORC-3 is 26 characters long","group":1}]`,
		`[{"rule":"x","code":103,"severity":"E","text":"Müller \"O\\T\\Brien\" \u00e9 😀\n"},{"rule":"pd1-12-recorded","code":0,"severity":"I","text":"PD1-12"}]`,
	}
	for i, f := range findings {
		exec(`INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings,
				more_findings_count)
			VALUES ('P', 1, 'mllp', $1, now(), '\x4d5348', '\x4d5341', 'AE', $2::jsonb, $3)`, "C-"+strconv.Itoa(i), f, i)
	}
	// A statement the pool has prepared and kept before the migration (findings then jsonb) runs
	// after it: the migration closes the pool's connections, and their kept plans with them.
	read := func() (string, error) {
		var s string
		err := db.Pool.QueryRow(ctx, `SELECT findings FROM messages WHERE control_id = $1`, "C-1").Scan(&s)
		return s, err
	}
	if _, err := read(); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if s, err := read(); err != nil || !strings.Contains(s, "length-exceeded") {
		t.Errorf("findings read after the migration: %q, %v", s, err)
	}
	var typ, def string
	if err := db.Pool.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod), pg_get_expr(adbin, adrelid)
		FROM pg_attribute JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
		WHERE attrelid = 'messages'::regclass AND attname = 'findings'`).Scan(&typ, &def); err != nil {
		t.Fatal(err)
	}
	if typ != "json" || def != "'[]'::json" {
		t.Errorf("messages.findings is %s, default %s; want json, '[]'::json", typ, def)
	}
	for i, f := range findings {
		var same bool
		var count int
		if err := db.Pool.QueryRow(ctx, `SELECT findings::jsonb = $2::jsonb, more_findings_count FROM messages WHERE control_id = $1`,
			"C-"+strconv.Itoa(i), f).Scan(&same, &count); err != nil {
			t.Fatal(err)
		}
		if !same || count != i {
			t.Errorf("message %d: findings kept %v, more_findings_count %d", i, same, count)
		}
	}
	exec(`INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code)
		VALUES ('P', 1, 'mllp', 'C-new', now(), '\x4d5348', '\x4d5341', 'AA')`)
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT json_array_length(findings) FROM messages WHERE control_id = 'C-new'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a row without findings: %d findings, %v", n, err)
	}
}

// BenchmarkMigrateFindingsJSON measures migration 015 on an archive of 1,000,000 messages of
// about 1.5 kB with two findings each (VAXGATE_BENCH_MESSAGES overrides the count): the time of
// the column's type change, which rewrites the table and rebuilds its indexes.
//
//	go test -run XXX -bench MigrateFindingsJSON -benchtime 1x ./store
func BenchmarkMigrateFindingsJSON(b *testing.B) {
	benchMigration(b, 14,
		`INSERT INTO organizations (id, code, name) VALUES (1, 'ORG', 'Org')`,
		`INSERT INTO sites (id, organization_id, code, name, status) VALUES (1, 1, 'SITE', 'Site', 'production')`,
		`INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings,
			resend_key, content_digest, readable)
		SELECT 'P', 1, 'mllp', 'C-' || g, '2025-03-01T00:00:00Z'::timestamptz + g * interval '2 seconds',
			convert_to(repeat('MSH|^~\&|EHR|FAC|', 60), 'UTF8'), convert_to(repeat('MSA|AA|', 40), 'UTF8'), 'AA',
			'[{"rule":"length-exceeded","location":"ORC[1]-3.0.0","code":102,"severity":"I","app":4,"text":"ORC-3 (Filler Order Number) is 26 characters long; Z22 allows 22.","group":1},{"rule":"pd1-12-recorded","location":"PD1[1]-12.0.0","code":0,"severity":"I","app":8,"text":"PD1-12 was recorded; data sharing is managed in the registry."}]',
			true, sha256(int8send(g)), true
		FROM generate_series(1, $1::int) g`,
		`VACUUM ANALYZE messages`)
}
