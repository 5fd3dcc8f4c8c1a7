package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// personRecord is an accepted record of a VXU about the patient with identifier mrn, named
// family^given, born on birth (YYYYMMDD).
func personRecord(t *testing.T, s *ingest.Sender, control, mrn, family, given, birth string) *ingest.Record {
	t.Helper()
	raw := []byte("MSH|^~\\&|EHR|X68|IIS|IIS|20261201120000||VXU^V04^VXU_V04|" + control + "|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS\r" +
		"PID|1||" + mrn + "^^^EHR^MR||" + family + "^" + given + "||" + birth + "|F\r" +
		"ORC|RE||O-" + control + "^EHR\r" +
		"RXA|0|1|20261101||08^HepB^CVX|0.5|mL^mL^UCUM||00^New^NIP001|||||||L1||MSD^Merck^MVX|||CP|A\r")
	return acceptedRecord(t, s, raw)
}

// TestLookUpLocksRegistryPatientsInOneOrder: the look-up a batch begins with locks the registry
// patients it reads in one ascending order, those of its own patients and those of its link
// candidates together, so that two batches never wait for each other's locks (a deadlock, which
// PostgreSQL breaks after deadlock_timeout by failing one of them).
//
// Patients P and Q are stored, P's registry patient first (the lower id). Batch A reports P
// again under another name (so A does not hold the linking lock of P's stored block) and a new
// patient in Q's block; batch B reports Q again under another name and a new patient in P's
// block. A reads P's registry patient as its own and Q's as a candidate; B the other way round.
// A third transaction holds P's registry patient while A's look-up, then B's, start: when it
// ends, each must be able to finish in turn. Locking its own patients' registry patients first
// and the candidates' after, A would hold P's and wait for Q's, which B holds while it waits for
// P's.
func TestLookUpLocksRegistryPatientsInOneOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := storetest.New(t)
	s := newSite(ctx, t, db, "SITE-LO")
	w, err := db.NewWriter(store.WriterOptions{MaxBatch: 1, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*ingest.Record{
		personRecord(t, s, "C1", "P-MRN", "SMITH", "ANN", "20100101"),
		personRecord(t, s, "C2", "Q-MRN", "JONES", "BOB", "20110202"),
	} {
		if _, err := w.Commit(r).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var regP, regQ int64
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT registry_patient_id FROM patients WHERE id_value = 'P-MRN'),
		(SELECT registry_patient_id FROM patients WHERE id_value = 'Q-MRN')`).Scan(&regP, &regQ); err != nil {
		t.Fatal(err)
	}
	if regP >= regQ {
		t.Fatalf("registry patients %d (P) and %d (Q): want P's first", regP, regQ)
	}
	batchA := []*ingest.Record{
		personRecord(t, s, "A1", "P-MRN", "SMITHSON", "ANNA", "20100101"),
		personRecord(t, s, "A2", "X-MRN", "JONES", "BOB", "20110202"),
	}
	batchB := []*ingest.Record{
		personRecord(t, s, "B1", "Q-MRN", "JONESY", "BOBBY", "20110202"),
		personRecord(t, s, "B2", "Y-MRN", "SMITH", "ANN", "20100101"),
	}

	conn := func() *pgx.Conn {
		c, err := pgx.ConnectConfig(ctx, db.Pool.Config().ConnConfig.Copy())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	holder, connA, connB := conn(), conn(), conn()
	for _, c := range []*pgx.Conn{holder, connA, connB} {
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := holder.Exec(ctx, "SELECT 1 FROM registry_patients WHERE id = $1 FOR UPDATE", regP); err != nil {
		t.Fatal(err)
	}
	type result struct {
		regs []int64
		err  error
	}
	lookUp := func(c *pgx.Conn, recs []*ingest.Record) <-chan result {
		out := make(chan result, 1)
		go func() {
			regs, err := store.LookUpPatients(ctx, c, recs)
			out <- result{regs, err}
		}()
		return out
	}
	// waitForLock returns once c's backend waits for a lock.
	waitForLock := func(c *pgx.Conn) {
		t.Helper()
		for range 500 {
			var waiting bool
			if err := db.Pool.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`,
				c.PgConn().PID()).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if waiting {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("the look-up never waited for the held registry patient")
	}
	doneA := lookUp(connA, batchA)
	waitForLock(connA)
	doneB := lookUp(connB, batchB)
	waitForLock(connB)
	if _, err := holder.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}

	finish := func(name string, c *pgx.Conn, done <-chan result) {
		t.Helper()
		r := <-done
		var pg *pgconn.PgError
		if errors.As(r.err, &pg) && pg.Code == "40P01" {
			t.Fatalf("batch %s: %v: the look-ups locked registry patients in different orders", name, r.err)
		}
		if r.err != nil {
			t.Fatalf("batch %s: %v", name, r.err)
		}
		if got := fmt.Sprint(r.regs); got != fmt.Sprint([]int64{regP, regQ}) {
			t.Errorf("batch %s read registry patients %s, want %d (P's) then %d (Q's)", name, got, regP, regQ)
		}
		if _, err := c.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
	}
	finish("A", connA, doneA)
	finish("B", connB, doneB)
}
