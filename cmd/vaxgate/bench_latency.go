package main

import (
	"math/bits"
	"time"
)

// latencyHist holds ACK latencies in log-linear buckets, so that a run of any length keeps a few
// kilobytes per connection instead of every sample, and nothing is sorted: below 128 ns a bucket
// per nanosecond; above, each power of two is split into 128 buckets, so a bucket is at most
// 1/128 of its lower bound wide. A percentile is read as the middle of its bucket (clamped to
// the smallest and largest sample, which are kept exactly): within 0.4% of the exact value.
type latencyHist struct {
	counts   []uint64
	n        uint64
	min, max time.Duration
}

const latencySubBits = 7 // 128 buckets per power of two

// latencyBucket is the bucket of v (nanoseconds, v >= 0).
func latencyBucket(v uint64) int {
	if v < 1<<latencySubBits {
		return int(v)
	}
	e := bits.Len64(v) - latencySubBits - 1 // v>>e is in [128, 256)
	return (e+1)<<latencySubBits + int(v>>e) - 1<<latencySubBits
}

// latencyBounds are the smallest value of bucket i and its width.
func latencyBounds(i int) (lo, width uint64) {
	if i < 1<<latencySubBits {
		return uint64(i), 1
	}
	e := i>>latencySubBits - 1
	m := uint64(i&(1<<latencySubBits-1)) + 1<<latencySubBits
	return m << e, 1 << e
}

func (h *latencyHist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := latencyBucket(uint64(d))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts)+64)...)
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
}

func (h *latencyHist) merge(o *latencyHist) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
}

// percentile is the sample of rank floor(p*(n-1)) in increasing order (p in [0, 1]), as read
// from a sorted copy of the samples, within the bucket error; 0 with no sample.
func (h *latencyHist) percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(p * float64(h.n-1))
	if rank == 0 {
		return h.min
	}
	if rank >= h.n-1 {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			lo, w := latencyBounds(i)
			v := time.Duration(lo + w/2)
			if w == 1 {
				v = time.Duration(lo)
			}
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
