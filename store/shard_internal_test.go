package store

import (
	"fmt"
	"testing"

	"github.com/vaxgate/vaxgate/ingest"
)

// TestShardOfSpreadsPatients: a patient's records always go to the same shard, whatever else the
// record says, and distinct patients spread evenly over the shards.
func TestShardOfSpreadsPatients(t *testing.T) {
	for _, shards := range []int{2, 3, 4} {
		w := &Writer{shards: make([]chan *job, shards)}
		counts := make([]int, shards)
		const n = 6000
		for i := range n {
			rec := func(control string) *ingest.Record {
				r := &ingest.Record{Sender: &ingest.Sender{OrganizationID: int64(1 + i%3)}, ControlID: control,
					VXU: &ingest.VXU{}}
				r.VXU.Patient.Identifiers = []ingest.Identifier{{Value: fmt.Sprintf("MRN%d", i), Authority: "EHR", Type: "MR"}}
				return r
			}
			s := w.shardOf(rec("A"))
			if again := w.shardOf(rec("B")); again != s {
				t.Fatalf("%d shards: patient %d in shards %d and %d", shards, i, s, again)
			}
			counts[s]++
		}
		for s, c := range counts {
			if c < n/shards*8/10 || c > n/shards*12/10 {
				t.Errorf("%d shards: shard %d has %d of %d patients: %v", shards, s, c, n, counts)
			}
		}
	}
}
