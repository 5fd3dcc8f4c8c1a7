package store_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// BenchmarkWriterBatch writes batches of accepted synthetic VXU (new patients and repeat
// reports of earlier ones, vxugen's mix) through the group-commit writer into PostgreSQL: the
// whole write path of a batch (prefetch, registry, set-based writes, commit). ns/record is the
// wall time per record; cpu-ns/record is this process's CPU (user + system: the writer, pgx, the
// runtime); pg-µs/record the CPU of the database's PostgreSQL backends (from /proc, when the
// server runs on this machine) per record; run with -cpuprofile to see where it goes. Batches of
// 24 are about what 64 connections sending one message at a time make (the small-batch path), 128
// what they make with eight in flight each (archive rows copied): the gap per record is the cost
// of a batch as such.
func BenchmarkWriterBatch(b *testing.B) {
	for _, batch := range []int{24, 128} {
		b.Run(fmt.Sprintf("records=%d", batch), func(b *testing.B) { benchmarkWriterBatch(b, batch) })
	}
}

func benchmarkWriterBatch(b *testing.B, batch int) {
	ctx := context.Background()
	db := storetest.New(b)
	s := &ingest.Sender{SiteCode: "SITE-W", Status: ingest.SiteProduction}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ('ORG-W', 'W') RETURNING id`).Scan(&s.OrganizationID); err != nil {
		b.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, 'SITE-W', 'W', 'production') RETURNING id`,
		s.OrganizationID).Scan(&s.SiteID); err != nil {
		b.Fatal(err)
	}
	w, err := db.NewWriter(store.WriterOptions{MaxBatch: batch, MaxDelay: time.Second, Shards: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(ctx)
	// The same records whatever the batch size (distinct control IDs; patients repeat), so that
	// the sizes compare the cost of a batch, not different mixes of new and repeat patients.
	all := records(b, s, 8192)
	rounds := len(all) / batch
	b.ResetTimer()
	cpu0 := processCPU(b)
	pg0 := databaseCPU(ctx, b, db)
	for i := 0; i < b.N; i++ {
		recs := all[(i%rounds)*batch : (i%rounds+1)*batch]
		if i >= rounds {
			b.StopTimer()
			for _, r := range recs { // a new message under a new control ID each round
				r.ControlID = r.ControlID + "x"
				r.Digest = append(r.Digest[:len(r.Digest):len(r.Digest)], 'x')
			}
			b.StartTimer()
		}
		pend := make([]ingest.Pending, len(recs))
		for k, r := range recs {
			pend[k] = w.Commit(r)
		}
		for _, p := range pend {
			if _, err := p.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N*batch), "cpu-ns/record")
	if pg, ok := databaseCPUSince(ctx, b, db, pg0); ok {
		b.ReportMetric(float64(pg.Microseconds())/float64(b.N*batch), "pg-µs/record")
	}
	// The writer may start a batch before all of an iteration's records reached it: the
	// transactions that wrote archive rows are the batches.
	var txs int
	if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM messages`).Scan(&txs); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*batch)/float64(max(txs, 1)), "records/batch")
}

// processCPU is the CPU time this process has used, user and system, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
