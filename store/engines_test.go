package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestTwoWritersOneDatabase: two engines' writers on one database, given reports of the same
// patients at the same time (alternately, each in its own order), serialise on each patient (its
// advisory lock, then its registry patient's row lock): every report is stored, every patient is
// stored once with one registry patient, and each patient row references every one of its reports
// — none lost to a concurrent write of the same row.
func TestTwoWritersOneDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := storetest.New(t)
	s := newSite(ctx, t, db, "SITE-2W")
	const n = 480
	recs := recordsAbout(t, s, n, 12, 21)
	reports := map[string]int{} // by patient identifier
	for _, rec := range recs {
		reports[rec.VXU.Patient.PrimaryID().Value]++
	}
	if len(reports) < 8 {
		t.Fatalf("%d patients in the traffic, want several reported many times", len(reports))
	}
	var wg sync.WaitGroup
	for e := range 2 {
		w, err := db.NewWriter(store.WriterOptions{MaxBatch: 16, MaxDelay: time.Millisecond, Shards: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pend []ingest.Pending
			for i := e; i < n; i += 2 {
				pend = append(pend, w.Commit(recs[i]))
			}
			for _, p := range pend {
				if _, err := p.Wait(ctx); err != nil {
					t.Errorf("engine %d: %v", e, err)
				}
			}
		}()
	}
	wg.Wait()
	var stored, patients, registry int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM patients),
		(SELECT count(*) FROM registry_patients)`).Scan(&stored, &patients, &registry); err != nil {
		t.Fatal(err)
	}
	if stored != n || patients != len(reports) || registry != len(reports) {
		t.Errorf("%d messages, %d patients, %d registry patients stored; want %d, %d, %d", stored, patients, registry,
			n, len(reports), len(reports))
	}
	rows, err := db.Pool.Query(ctx, `SELECT id_value, cardinality(report_messages),
		(SELECT count(DISTINCT m) FROM unnest(report_messages) AS m) FROM patients`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var refs, distinct int
		if err := rows.Scan(&id, &refs, &distinct); err != nil {
			t.Fatal(err)
		}
		if refs != reports[id] || distinct != refs {
			t.Errorf("patient %s: %d report references (%d distinct), want %d", id, refs, distinct, reports[id])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
