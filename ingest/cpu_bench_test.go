package ingest_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// benchTraffic is the traffic of `make bench`: vxugen messages from one production site.
func benchTraffic(b *testing.B, n int) [][]byte {
	b.Helper()
	g := vxugen.New(vxugen.Options{Seed: 11, ControlIDs: "CPU", Now: time.Now()})
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = g.Next()
	}
	return msgs
}

// processCPU is the CPU time the process has used (user and system, every thread: GC included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp starts counting the process's CPU time; the function it returns reports it per
// operation as cpu-ns/op. On a machine shared with other work, wall time per operation includes
// the time spent waiting for a core; CPU time does not.
func cpuPerOp(b *testing.B) func() {
	b.Helper()
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

var benchSender = &ingest.Sender{CredentialID: 1, SiteID: 1, SiteCode: "BENCH", Status: ingest.SiteProduction, Facilities: []string{"X68"}}

// BenchmarkPipelineSubmit is vaxgate's own work per message outside the store: Submit (parse,
// header checks, validation, decoding, sharing rules, ACK, the answer's code) over the bench
// traffic, with a committer that answers at once with the record's own ACK. ns/op and allocs/op
// are per message.
func BenchmarkPipelineSubmit(b *testing.B) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		b.Fatal(err)
	}
	msgs := benchTraffic(b, 4096) // mostly distinct patients, as in make bench
	ctx := context.Background()
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for i := 0; b.Loop(); i++ {
		a, err := p.Submit(ctx, ingest.Envelope{Transport: ingest.TransportMLLP, Sender: benchSender, Payload: msgs[i%len(msgs)]})
		if err != nil || len(a) == 0 {
			b.Fatalf("submit: %v", err)
		}
	}
}

// BenchmarkDecode decodes the bench traffic (parsed once, outside the timing) into VXUs, with
// the validator's vaccine resolver as the pipeline does.
func BenchmarkDecode(b *testing.B) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var ms []*hl7.Message
	for _, raw := range benchTraffic(b, 256) {
		m, err := hl7.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, m)
	}
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for i := 0; b.Loop(); i++ {
		ingest.DecodeWith(ms[i%len(ms)], v)
	}
}

// BenchmarkContentDigest is the resend digest of the bench traffic.
func BenchmarkContentDigest(b *testing.B) {
	var ms []*hl7.Message
	for _, raw := range benchTraffic(b, 256) {
		m, err := hl7.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, m)
	}
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for i := 0; b.Loop(); i++ {
		ingest.ContentDigest(ms[i%len(ms)])
	}
}

// BenchmarkPipelineOwn is Submit without a validator: only this package's own work per message
// (parse, header checks, decoding, the ACK, the answer's metrics), the part issue #19 budgets as
// "ingest" and "hl7" apart from validation.
func BenchmarkPipelineOwn(b *testing.B) {
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}})
	if err != nil {
		b.Fatal(err)
	}
	msgs := benchTraffic(b, 4096)
	ctx := context.Background()
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for i := 0; b.Loop(); i++ {
		a, err := p.Submit(ctx, ingest.Envelope{Transport: ingest.TransportMLLP, Sender: benchSender, Payload: msgs[i%len(msgs)]})
		if err != nil || len(a) == 0 {
			b.Fatalf("submit: %v", err)
		}
	}
}
