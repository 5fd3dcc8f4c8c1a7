package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// TestOwnedPayloadNotCopied: an owned payload (Envelope.Owned) is not copied at all: it costs an
// allocation fewer than the same payload copied (TestOwnedPayloadShared shows the record reads
// from it).
func TestOwnedPayloadNotCopied(t *testing.T) {
	if raceSlowdown > 1 {
		t.Skip("allocation counts mean nothing under the race detector (sync.Pool drops what it holds)")
	}
	p, err := NewPipeline(Options{Committer: DryRun{}})
	if err != nil {
		t.Fatal(err)
	}
	raw := vxugen.New(vxugen.Options{Seed: 5, ControlIDs: "OWNED", Facility: "X68", Now: time.Now()}).Next()
	sender := &Sender{SiteCode: "S", Status: SiteProduction, Facilities: []string{"X68"}}
	ctx := context.Background()
	start := func(owned bool) float64 {
		return testing.AllocsPerRun(50, func() {
			p.Start(ctx, Envelope{Transport: TransportMLLP, Sender: sender, Payload: raw, Owned: owned})
		})
	}
	if o, c := start(true), start(false); o > c-1 {
		t.Errorf("an owned payload costs %v allocations, a copied one %v: the copy is still made", o, c)
	}
}
