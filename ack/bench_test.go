package ack

import (
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// BenchmarkBuild builds the ACK of a typical VXU: an AA without findings, and an AE with three.
func BenchmarkBuild(b *testing.B) {
	m, err := hl7.Parse([]byte(vxu))
	if err != nil {
		b.Fatal(err)
	}
	h := HeaderOf(m)
	bl := newTestBuilder()
	now := fixedNow() // a clock that allocates nothing, as time.Now
	bl.Now = func() time.Time { return now }
	findings := []Finding{
		{Rule: "a", Location: Location{Segment: "PID", Sequence: 1, Field: 7}, Code: CodeDataType, Severity: Warning, App: AppInvalidValue, Text: "The birth date is in the future."},
		{Rule: "b", Location: Location{Segment: "RXA", Sequence: 1, Field: 5, Component: 1}, Code: CodeTableValueNotFound, Severity: Warning, Text: "Unknown vaccine code \"999\"."},
		{Rule: "c", Location: Location{Segment: "OBX", Sequence: 2, Field: 5}, Code: CodeRequiredFieldMissing, Severity: Information, Text: "OBX-5 is empty."},
	}
	b.Run("AA", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bl.Build(h, AA, nil)
		}
	})
	b.Run("AE3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bl.Build(h, AE, findings)
		}
	})
}
