package mllp

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRoundTrip measures the transport alone (loopback TCP, a pipeline that answers at
// once): messages per second on one connection, one at a time and pipelined; cpu-ns/op is the
// process's CPU time per message (client included).
func BenchmarkRoundTrip(b *testing.B) {
	for _, window := range []int{1, 64} {
		b.Run("window="+strconv.Itoa(window), func(b *testing.B) {
			srv := startServer(b, Options{})
			ctx := context.Background()
			cl, err := Dial(ctx, srv.addr, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			msg := vxu("BENCH")
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			var ru0, ru1 syscall.Rusage
			b.ResetTimer()
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			msgs := func(yield func([]byte) bool) {
				for range b.N {
					if !yield(msg) {
						return
					}
				}
			}
			err = cl.SendPipelined(ctx, msgs, window, func(int, []byte, time.Duration) {})
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			if err != nil {
				b.Fatal(err)
			}
			cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
