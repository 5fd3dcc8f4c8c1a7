package store

import (
	"fmt"
	"hash/fnv"
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

// TestResendLockKeyUnchanged: a control ID's advisory lock key is FNV-1a (32 bits) of
// "site|env|control", as engines before this one formatted it, so that two versions writing to
// one database during an upgrade still serialise the same control ID. A record without a site
// or control ID takes none.
func TestResendLockKeyUnchanged(t *testing.T) {
	for _, c := range []struct {
		site    int64
		env     string
		control string
	}{{1, "P", "MSG-1"}, {42, "T", "20261207120000-0001"}, {9_000_000_000, "P", "é|x"}, {7, "P", ""}} {
		rec := &ingest.Record{Sender: &ingest.Sender{SiteID: c.site}, Env: c.env, ControlID: c.control, ResendKey: true}
		h := fnv.New32a()
		fmt.Fprintf(h, "%d|%s|%s", c.site, c.env, c.control)
		got, ok := resendLockKey(rec)
		if want := int32(h.Sum32()); ok != prechecks(rec) || ok && got != want {
			t.Errorf("%+v: key %d (%v), want %d (%v)", c, got, ok, want, prechecks(rec))
		}
	}
}
