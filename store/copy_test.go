package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestArchiveCopyEqualsInsert: archive rows copied as the writer copies them (COPY's binary
// format) are stored column for column as the same rows inserted as batch_message records (the
// writer's encoding before COPY, itself checked against pgx's): NULLs, every byte value of a raw
// message, a 100 kB message, time zones and microseconds, JSON findings with escapes and
// non-ASCII text, finding keys, and the report facts (smallint columns) with and without a site.
func TestArchiveCopyEqualsInsert(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := storetest.New(t)
	site := newSite(ctx, t, db, "CP").SiteID
	raw := vxugen.New(vxugen.Options{Seed: 9, Facility: "CP", ControlIDs: "C", Now: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}).Next()
	var m hl7.Message
	var content report.Content
	report.ReadContent(&m, raw, time.Date(2025, 3, 20, 0, 0, 0, 0, time.UTC), &content)
	conn := writerConn(ctx, t, db)
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		n, err := store.ArchiveBothWays(ctx, tx, site, &content)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT a.id, to_jsonb(a) - 'id' - 'control_id', to_jsonb(b) - 'id' - 'control_id',
				b.readable IS NOT NULL, octet_length(b.raw)
			FROM messages a JOIN messages b ON b.id = a.id + $1 ORDER BY a.id`, n)
		if err != nil {
			return err
		}
		defer rows.Close()
		got, facts, long := 0, 0, false
		for rows.Next() {
			var id int64
			var inserted, copied map[string]any
			var hasFacts bool
			var size int
			if err := rows.Scan(&id, &inserted, &copied, &hasFacts, &size); err != nil {
				return err
			}
			got++
			for col, v := range inserted {
				if w, ok := copied[col]; !ok || !sameJSON(v, w) {
					t.Errorf("row %d, %s: inserted %v, copied %v", id, col, v, w)
				}
			}
			if len(copied) != len(inserted) {
				t.Errorf("row %d: %d columns copied, %d inserted", id, len(copied), len(inserted))
			}
			if hasFacts {
				facts++
			}
			long = long || size > 100_000
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if got != n || facts < 2 || !long {
			t.Errorf("%d rows compared of %d, %d with facts, a 100 kB message: %v", got, n, facts, long)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sameJSON compares two values decoded from JSON.
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !sameJSON(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// TestWriteArchiveBothSizes: a batch's archive rows are stored whole whichever way they go — a
// small batch's inserted with the statements queued after them, a larger one's copied.
func TestWriteArchiveBothSizes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := storetest.New(t)
	site := newSite(ctx, t, db, "WA").SiteID
	raw := vxugen.New(vxugen.Options{Seed: 3, Facility: "WA", ControlIDs: "W", Now: time.Now()}).Next()
	conn := writerConn(ctx, t, db)
	next := int64(1)
	for _, n := range []int{1, store.CopyMinRows - 1, store.CopyMinRows, 3 * store.CopyMinRows} {
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			return store.WriteArchive(ctx, tx, next, n, site, raw)
		}); err != nil {
			t.Fatalf("%d rows: %v", n, err)
		}
		var got int
		var same bool
		if err := db.Pool.QueryRow(ctx, `SELECT count(*), bool_and(raw = $3) FROM messages WHERE id >= $1 AND id < $2`,
			next, next+int64(n), raw).Scan(&got, &same); err != nil {
			t.Fatal(err)
		}
		if got != n || !same {
			t.Errorf("%d rows written: %d stored, raw messages intact: %v", n, got, same)
		}
		next += int64(n)
	}
}

// newSite adds an organization and a production site, both named code, and returns them as a
// sender.
func newSite(ctx context.Context, t *testing.T, db *store.DB, code string) *ingest.Sender {
	t.Helper()
	s := &ingest.Sender{SiteCode: code, Status: ingest.SiteProduction}
	if err := db.Pool.QueryRow(ctx, `WITH o AS (INSERT INTO organizations (code, name) VALUES ($1, $1) RETURNING id)
		INSERT INTO sites (organization_id, code, name, status) SELECT id, $1, $1, 'production' FROM o
		RETURNING organization_id, id`, code).Scan(&s.OrganizationID, &s.SiteID); err != nil {
		t.Fatal(err)
	}
	return s
}

// writerConn is a connection of db's pool that knows the batch row types, as the writer's do;
// it is released when the test ends.
func writerConn(ctx context.Context, t *testing.T, db *store.DB) *pgxpool.Conn {
	t.Helper()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Release)
	if err := store.RegisterRowTypes(ctx, conn.Conn()); err != nil {
		t.Fatal(err)
	}
	return conn
}
