package validate

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// TestFieldAccessorsReadWhatHL7Reads: the field index and the accessors of fields.go return, for
// every field, repetition, component and subcomponent, the bytes hl7's accessors return, on
// generated, fixture and mutated messages (other delimiters included).
func TestFieldAccessorsReadWhatHL7Reads(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gen := vxugen.New(vxugen.Options{Seed: 7, Now: goldenNow})
	msgs := [][]byte{readFixture(t, "base.hl7"), readFixture(t, "delimiters.hl7"), []byte("MSH|^~\\&\rPID\rPID|\rZZZ|a~b^c&d~|~^&|||\r")}
	for range 300 {
		m := gen.Next()
		msgs = append(msgs, m, mutate(rng, m), mutate(rng, mutate(rng, m)))
	}
	v := testValidator(t)
	for _, data := range msgs {
		m, err := hl7.Parse(data)
		if err != nil {
			continue
		}
		r := &run{}
		r.reset(v, m, v.sev)
		r.structure()
		for i := range m.NumSegments() {
			s := m.Segment(i)
			for n := 0; n <= int(r.segs[i].nf)+2; n++ {
				f := s.Field(n)
				if got := r.fld(i, n); !bytes.Equal(got, f.Raw()) {
					t.Fatalf("%s field %d: %q, hl7 %q", s.Name(), n, got, f.Raw())
				}
				if r.segs[i].header && n <= 2 {
					continue // literal: never split
				}
				if got := r.rep1(i, n); !bytes.Equal(got, f.Rep(1).Raw()) {
					t.Fatalf("%s-%d rep 1: %q, hl7 %q", s.Name(), n, got, f.Rep(1).Raw())
				}
				for c := 1; c <= 4; c++ {
					if got := r.fcomp(i, n, c); !bytes.Equal(got, f.Component(c).Raw()) {
						t.Fatalf("%s-%d.%d: %q, hl7 %q", s.Name(), n, c, got, f.Component(c).Raw())
					}
					// fcomp's one pass is the two steps it stands for, nil (no such piece) included.
					if got, want := r.fcomp(i, n, c), r.comp(r.rep1(i, n), c); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
						t.Fatalf("%s-%d.%d: fcomp %q (nil %v), comp of rep1 %q (nil %v)", s.Name(), n, c, got, got == nil, want, want == nil)
					}
				}
				rest := r.fld(i, n)
				for k := 1; rest != nil; k++ {
					var rep []byte
					rep, rest = cut(rest, r.d.Repetition)
					hr := f.Rep(k)
					var cs [7][]byte
					r.comps(rep, cs[:])
					for c := 1; c <= 7; c++ {
						hc := hr.Component(c)
						if got := r.comp(rep, c); !bytes.Equal(got, hc.Raw()) || !bytes.Equal(cs[c-1], hc.Raw()) {
							t.Fatalf("%s-%d rep %d comp %d: %q / %q, hl7 %q", s.Name(), n, k, c, got, cs[c-1], hc.Raw())
						}
						for sc := 1; sc <= 3; sc++ {
							if got := r.sub(r.comp(rep, c), sc); !bytes.Equal(got, hc.Sub(sc).Raw()) {
								t.Fatalf("%s-%d rep %d comp %d sub %d: %q, hl7 %q", s.Name(), n, k, c, sc, got, hc.Sub(sc).Raw())
							}
						}
					}
				}
			}
		}
	}
}

// TestValidateTrafficAllocatesNothing: once the validator has seen some traffic, validating a
// message without findings allocates nothing (the package's promise; a look-up that made its key
// a string would allocate for every field).
func TestValidateTrafficAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops items at random: allocations are not counted")
	}
	v, err := New(Options{Now: func() time.Time { return goldenNow }})
	if err != nil {
		t.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 11, Now: goldenNow})
	var ms []*hl7.Message
	for range 300 {
		m := mustParse(t, g.Next())
		if fs := v.Validate(m, "SITE1"); len(fs) > 0 {
			continue // findings are allocated: not this test's case
		}
		ms = append(ms, m)
	}
	if len(ms) < 100 {
		t.Fatalf("only %d of 300 generated messages have no findings", len(ms))
	}
	for range 3 { // publish what the first pass remembered
		for _, m := range ms {
			v.Validate(m, "SITE1")
		}
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		v.Validate(ms[i%len(ms)], "SITE1")
		i++
	}); n != 0 {
		t.Fatalf("%v allocations per message", n)
	}
}

// TestLocTextTable: the texts made once for the common locations are the texts locText makes.
func TestLocTextTable(t *testing.T) {
	for _, seg := range []string{"MSH", "PID", "PD1", "NK1", "ORC", "RXA", "RXR", "OBX", "ZXY", ""} {
		for f := 0; f <= 40; f++ {
			for comp := 0; comp <= 25; comp++ {
				for _, l := range []ack.Location{
					{Segment: seg, Field: f, Component: comp},
					{Segment: seg, Field: f, Component: comp, Rep: 1, Sequence: 1},
					{Segment: seg, Field: f, Component: comp, Rep: 2},
					{Segment: seg, Field: f, Component: comp, Sequence: 3, Sub: 1},
				} {
					if got, want := locText(l), buildLocText(l); got != want {
						t.Fatalf("locText(%+v) = %q, want %q", l, got, want)
					}
				}
			}
		}
	}
}

// TestConcurrentRemembering: goroutines validating varied traffic at once with one validator, its
// remembered values published while others read them, get the findings a validator of their own
// gets (go test -race checks the copy-on-write sets).
func TestConcurrentRemembering(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	gen := vxugen.New(vxugen.Options{Seed: 23, Now: goldenNow, Historical: 0.3, UpdateShare: 0.2})
	var msgs [][]byte
	for range 400 {
		m := gen.Next()
		msgs = append(msgs, m)
		if rng.IntN(2) == 0 {
			msgs = append(msgs, mutate(rng, m))
		}
	}
	ref := testValidator(t)
	want := make([][]ack.Finding, len(msgs))
	for i, m := range msgs {
		if pm, err := hl7.Parse(m); err == nil {
			want[i] = ref.Validate(pm, "SITE1")
		}
	}
	shared := testValidator(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range len(msgs) {
				i := (k*7 + g*101) % len(msgs)
				pm, err := hl7.Parse(msgs[i])
				if err != nil {
					continue
				}
				if got := shared.Validate(pm, "SITE1"); !reflect.DeepEqual(got, want[i]) {
					t.Errorf("message %d: got %v, want %v", i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}
