package validate

import (
	"syscall"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// BenchmarkValidateTraffic validates the traffic of `make bench` (vxugen messages, parsed once
// outside the timing): ns/op and allocs/op are per message.
func BenchmarkValidateTraffic(b *testing.B) {
	v, err := New(Options{}) // the clock of the generated traffic: now
	if err != nil {
		b.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 11, ControlIDs: "CPU", Now: time.Now()})
	var ms []*hl7.Message
	for range 256 {
		ms = append(ms, mustParse(b, g.Next()))
	}
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	defer func() {
		// CPU time per message: on a shared machine, wall time includes waiting for a core.
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}()
	for i := 0; b.Loop(); i++ {
		v.Validate(ms[i%len(ms)], "SITE1")
	}
}
