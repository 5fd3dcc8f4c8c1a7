package validate

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
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
	for range 4096 { // mostly distinct patients, as in make bench
		ms = append(ms, mustParse(b, g.Next()))
	}
	validateLoop(b, v, ms)
}

// BenchmarkValidateBenchTraffic validates the traffic exactly as `vaxgate bench` sends it to serve:
// its control IDs carry the run's prefix (see cmd/vaxgate/bench.go), which makes ORC-3 longer
// than Z22 allows, so that every message has a finding (length-exceeded, a warning) to make, as in
// the quick run's profile. ns/op and allocs/op are per message.
func BenchmarkValidateBenchTraffic(b *testing.B) {
	v, g := benchTraffic(b)
	var ms []*hl7.Message
	for range 4096 {
		ms = append(ms, mustParse(b, g.Next()))
	}
	if fs := v.Validate(ms[0], "SITE1"); len(fs) == 0 {
		b.Fatal("the bench's traffic has a finding per message (ORC-3 length): none found")
	}
	validateLoop(b, v, ms)
}

// BenchmarkValidateBenchTrafficCold validates the traffic of BenchmarkValidateBenchTraffic as
// serve does, where the store, the driver and PostgreSQL run on the same cores between two
// messages and evict the caches: an 8 MiB sweep precedes each message, which is parsed afresh
// (warm, as the pipeline's message is). val-ns/op is the time of Validate alone (the monotonic
// clock around it; ns/op includes the sweep). "after-other" validates another message between
// the sweep and the timed one: what the sweep cost then is the validator's own state (its
// code, tables, code sets, remembered values and pooled run), warmed again by any message.
// Measured on the 2-core machine: warm (BenchmarkValidateBenchTraffic) 12.5 µs, cold 19.4-21 µs,
// after-other 13.7-14.9 µs, and warming
// any single table group (Z22 tables, value sets, code tables, clean sets, pooled run) after the
// sweep recovered at most ~1.5 µs: the gap between this benchmark and serve's ~21 µs is the
// validator's footprint in caches that the other work evicts, not locks or extra work.
func BenchmarkValidateBenchTrafficCold(b *testing.B) {
	for _, other := range []bool{false, true} {
		name := "cold"
		if other {
			name = "after-other"
		}
		b.Run(name, func(b *testing.B) {
			v, g := benchTraffic(b)
			raws := make([][]byte, 4096)
			for i := range raws {
				raws[i] = g.Next()
			}
			sweep := make([]byte, 8<<20)
			var m, m2 hl7.Message
			var spent time.Duration
			for i := 0; b.Loop(); i++ {
				for j := 0; j < len(sweep); j += 64 {
					sweep[j]++
				}
				if other {
					if err := m2.Parse(raws[(i+7)%len(raws)]); err != nil {
						b.Fatal(err)
					}
					v.Validate(&m2, "SITE1")
				}
				if err := m.Parse(raws[i%len(raws)]); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				v.Validate(&m, "SITE1")
				spent += time.Since(t0)
			}
			b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "val-ns/op")
		})
	}
}

// TestPlainWord: the eight-byte test of the text pass says "plain" exactly when every byte is
// printable ASCII other than the escape character, and names the first byte that is not.
func TestPlainWord(t *testing.T) {
	ref := func(b []byte, esc byte) bool {
		for _, c := range b {
			if c < 0x20 || c >= 0x7f || c == esc {
				return false
			}
		}
		return true
	}
	check := func(b []byte, esc byte) {
		t.Helper()
		x := binary.LittleEndian.Uint64(b)
		if got, want := plainWord(x, uint64(esc)*swarOnes), ref(b, esc); got != want {
			t.Fatalf("plainWord(%q, esc %q) = %v, want %v", b, esc, got, want)
		}
		// The first byte that is not plain is the one notPlain's lowest bit names.
		if bad := notPlain(x, uint64(esc)*swarOnes); bad != 0 {
			first := 0
			for ref(b[first:first+1], esc) {
				first++
			}
			if got := firstNotPlain(bad); got != first {
				t.Fatalf("firstNotPlain(%q, esc %q) = %d, want %d", b, esc, got, first)
			}
		}
	}
	for _, esc := range []byte{'\\', '#', 0x7e} {
		for pos := range 8 {
			for c := range 256 {
				b := []byte("AzAz09~ ")
				b[pos] = byte(c)
				check(b, esc)
			}
		}
		rng := rand.New(rand.NewPCG(1, uint64(esc)))
		for range 200000 {
			var b [8]byte
			for i := range b {
				// Mostly bytes near the boundaries.
				b[i] = []byte{0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xff, esc, 'a', byte(rng.IntN(256))}[rng.IntN(9)]
			}
			check(b[:], esc)
		}
	}
}

// benchTraffic is a validator with default options and a generator of the traffic `vaxgate bench`
// sends (its control IDs carry a run prefix, see BenchmarkValidateBenchTraffic).
func benchTraffic(b *testing.B) (*Validator, *vxugen.Generator) {
	b.Helper()
	v, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	runID := "B" + strconv.FormatInt(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC).UnixNano(), 36)
	return v, vxugen.New(vxugen.Options{Seed: 5*1000003 + 7, Facility: "X68", ProcessingID: "P", ControlIDs: runID + "-7",
		Patients: 35000, UpdateShare: 0.05, Now: time.Now()})
}

// validateLoop validates ms in turn, a message per iteration, and reports this process's CPU time
// per message (cpu-ns/op): on a shared machine, wall time includes waiting for a core.
func validateLoop(b *testing.B, v *Validator, ms []*hl7.Message) {
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for i := 0; b.Loop(); i++ {
		v.Validate(ms[i%len(ms)], "SITE1")
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}
