package mllp

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkRoundTrip measures the transport alone (loopback TCP, a pipeline that answers at
// once): messages per second on one connection, one at a time and pipelined.
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
			b.ResetTimer()
			msgs := func(yield func([]byte) bool) {
				for range b.N {
					if !yield(msg) {
						return
					}
				}
			}
			err = cl.SendPipelined(ctx, msgs, window, func(int, []byte, time.Duration) {})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
