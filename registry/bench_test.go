package registry

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// BenchmarkApplyTraffic applies the traffic of `make bench` (vxugen messages, decoded outside
// the timing) the way the store does, in batches of 64 records: the view, each record's keys
// (KeyOf, Demographics, BlockOf, OrderNumber as the prefetch reads them; LinkKey as the locks
// take them), Apply, Merge and Written. ns/op, B/op and allocs/op are per record. The view starts
// empty, as for the new patients that make most of that traffic.
func BenchmarkApplyTraffic(b *testing.B) {
	val, err := validate.New(validate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 11, ControlIDs: "CPU", Now: time.Now()})
	recs := make([]*ingest.Record, 4096)
	for i := range recs {
		m, err := hl7.Parse(g.Next())
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = &ingest.Record{Env: "P", ResendKey: true, VXU: ingest.DecodeWith(m, val),
			Sender: &ingest.Sender{OrganizationID: 1, SiteID: 10, SiteCode: "SITE" + strconv.Itoa(i%4)}}
	}
	r := New(nil)
	ids := seqIDs{}
	const batch = 64
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	defer func() {
		// CPU time per record (GC included): on a shared machine, wall time includes waiting for a
		// core.
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}()
	var v *View
	var sink int32
	for i := 0; b.Loop(); i++ {
		if i%batch == 0 {
			if v != nil {
				v.Merge()
				v.Written()
			}
			v = NewViewFor(batch)
		}
		rec := recs[i%len(recs)]
		if k, ok := KeyOf(rec); ok {
			sink += int32(len(k.Value))
		}
		if bk, ok := BlockOf(rec.Env, v.Demographics(rec)); ok {
			sink += int32(len(bk.Birth))
		}
		for j := range rec.VXU.Orders {
			sink += int32(len(OrderNumber(&rec.VXU.Orders[j])))
		}
		if k, ok := LinkKey(rec); ok {
			sink += k
		}
		if _, err := r.Apply(v, ids, rec, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	_ = sink
}
