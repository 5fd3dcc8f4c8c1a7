package mllp

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// BenchmarkProcessingMemory measures what a message costs in memory while the pipeline parses,
// decodes and validates it and builds its ACK (everything but the database), as bytes allocated
// per byte of message (alloc-x): the basis of Options.ProcessingFactor. Messages: a realistic
// VXU, one with many vaccinations, and one padded with observations.
//
//	go test -run XXX -bench ProcessingMemory -benchmem ./ingest/mllp/
func BenchmarkProcessingMemory(b *testing.B) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		b.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 1, Facility: "CLINIC-A", ProcessingID: "P", ControlIDs: "COST", Now: time.Now()})
	one := g.Next()
	msh, rest, _ := bytes.Cut(one, []byte("\rPID"))
	rest = append([]byte("\rPID"), rest...)
	pid, orders, _ := bytes.Cut(rest, []byte("\rORC"))
	orders = append([]byte("\rORC"), orders...)
	obx := []byte("OBX|1|CE|64994-7^Vaccine funding program eligibility category^LN|1|V02^VFC eligible - Medicaid/Medicaid Managed Care^HL70064||||||F|||20240102|||VXC40^Eligibility captured at the immunization level^CDCPHINVS\r")
	shapes := []struct {
		name string
		msg  []byte
	}{
		{"realistic", one},
		{"100 vaccinations", bytes.Join([][]byte{msh, pid, bytes.Repeat(orders, 100)}, nil)},
		{"1 MB of OBX", bytes.Join([][]byte{msh, pid, orders, []byte("\r"), bytes.Repeat(obx, (1<<20)/len(obx))}, nil)},
	}
	for _, s := range shapes {
		b.Run(fmt.Sprintf("%s/%dKB", s.name, len(s.msg)>>10), func(b *testing.B) {
			b.ReportAllocs()
			var before, after testingMem
			before.read()
			for b.Loop() {
				rec := p.Evaluate(s.msg)
				if rec == nil || len(rec.ACK) == 0 {
					b.Fatal("no ACK")
				}
			}
			after.read()
			b.ReportMetric(float64(after.alloc-before.alloc)/float64(b.N)/float64(len(s.msg)), "alloc-x")
		})
	}
}

// testingMem is the bytes allocated so far by the process.
type testingMem struct{ alloc uint64 }

func (m *testingMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.alloc = ms.TotalAlloc
}
