package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBenchLatencyPercentiles: the percentiles `vaxgate bench` prints from its histogram are
// within 0.5% of the exact ones (the sample of rank floor(p*(n-1)) of the sorted samples, which
// it printed before), the smallest and largest exactly, over known distributions, merged from
// several connections as the run does.
func TestBenchLatencyPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sets := map[string][]time.Duration{
		"constant":  slices.Repeat([]time.Duration{1234567}, 1000),
		"one":       {42 * time.Millisecond},
		"two":       {3 * time.Millisecond, 90 * time.Millisecond},
		"tiny":      {0, 1, 5, 17, 99, 127, 128, 129, 255, 256, 1000},
		"uniform":   nil,
		"lognormal": nil,
		"bimodal":   nil,
		"wide":      nil,
	}
	for range 100000 {
		sets["uniform"] = append(sets["uniform"], time.Duration(r.Int64N(int64(50*time.Millisecond))))
		sets["lognormal"] = append(sets["lognormal"], time.Duration(math.Exp(r.NormFloat64()*1.5+math.Log(2e6))))
		if r.IntN(100) == 0 {
			sets["bimodal"] = append(sets["bimodal"], 2*time.Second+time.Duration(r.Int64N(int64(time.Second))))
		} else {
			sets["bimodal"] = append(sets["bimodal"], 300*time.Microsecond+time.Duration(r.Int64N(int64(200*time.Microsecond))))
		}
		sets["wide"] = append(sets["wide"], time.Duration(math.Exp(r.Float64()*math.Log(1e11))))
	}
	for name, samples := range sets {
		var total latencyHist
		conns := make([]latencyHist, 7)
		for i, s := range samples {
			conns[i%len(conns)].add(s)
		}
		for i := range conns {
			total.merge(&conns[i])
		}
		sorted := slices.Clone(samples)
		slices.Sort(sorted)
		for _, p := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
			exact := sorted[int(p*float64(len(sorted)-1))]
			got := total.percentile(p)
			if p == 0 || p == 1 {
				if got != exact {
					t.Errorf("%s: p%g = %v, want exactly %v", name, 100*p, got, exact)
				}
				continue
			}
			if diff := math.Abs(float64(got - exact)); diff > 0.005*float64(exact) {
				t.Errorf("%s: p%g = %v, exact %v: off by %.2f%%", name, 100*p, got, exact, 100*diff/float64(exact))
			}
		}
	}
	var empty latencyHist
	if empty.percentile(0.5) != 0 {
		t.Error("no sample: percentile not 0")
	}
}

// TestBenchLatencyBuckets: every value falls in a bucket that holds it, no wider than 1/128 of
// its lower bound, and buckets follow one another without gaps.
func TestBenchLatencyBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		v := r.Uint64() >> r.IntN(64)
		i := latencyBucket(v)
		lo, w := latencyBounds(i)
		if v < lo || v-lo >= w {
			t.Fatalf("%d in bucket %d = [%d, %d)", v, i, lo, lo+w)
		}
		if lo >= 128 && w*128 > lo {
			t.Fatalf("bucket %d = [%d, +%d) wider than 1/128", i, lo, w)
		}
	}
	for i := 0; i < 57<<latencySubBits-1; i++ { // up to the bucket of the largest Duration
		lo, w := latencyBounds(i)
		if next, _ := latencyBounds(i + 1); next != lo+w {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", i, lo+w, i+1, next)
		}
	}
}
