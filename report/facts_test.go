package report

import (
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// BenchmarkReadContent is what intake spends on a message's report facts in Go (the store's
// writer reads them as it commits the record): parsing the raw message again into a reused
// Message and extracting its facts, for vxugen's synthetic VXU (about 1 KB).
func BenchmarkReadContent(b *testing.B) {
	gen := vxugen.New(vxugen.Options{Seed: 3, Facility: "X68", ControlIDs: "RC", Now: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)})
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = gen.Next()
	}
	at := time.Date(2025, 3, 16, 0, 0, 0, 0, time.UTC)
	var m hl7.Message
	var c Content
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ReadContent(&m, msgs[i%len(msgs)], at, &c)
		if !c.Readable || c.Facts.Orders == 0 {
			b.Fatalf("content %+v", c)
		}
	}
}

// TestFindingKeys: distinct and sorted, whatever the order given.
func TestFindingKeys(t *testing.T) {
	got := FindingKeys([]string{"W:b", "E:a", "W:b", "I:c", "E:a"})
	if len(got) != 3 || got[0] != "E:a" || got[1] != "I:c" || got[2] != "W:b" {
		t.Errorf("FindingKeys = %q", got)
	}
	if got := FindingKeys(nil); len(got) != 0 {
		t.Errorf("FindingKeys(nil) = %q", got)
	}
}
