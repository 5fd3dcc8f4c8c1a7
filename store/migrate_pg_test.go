package store_test

import (
	"bytes"
	"context"
	"testing"

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
