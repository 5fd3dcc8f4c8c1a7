package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// BenchmarkFactsWrite compares the two ways a batch of 100 report facts rows can be written, in a
// transaction of its own each: intake's INSERT … SELECT FROM unnest (one statement, queued with the
// batch's other writes), and COPY (what the summaries use, a round trip of its own). pg-µs/row is
// the CPU of the PostgreSQL backend that ran them (from /proc, when the test server is a local
// process), per row.
//
//	go test -run XXX -bench FactsWrite ./store
func BenchmarkFactsWrite(b *testing.B) {
	ctx := context.Background()
	db := storetest.New(b)
	const rows = 100
	var id int64
	batch := func() []report.FactsRow {
		rs := make([]report.FactsRow, rows)
		for i := range rs {
			id++
			rs[i] = report.FactsRow{MessageID: id, SiteID: 1, Env: "P", ReceivedAt: time.Now(), ControlID: "C-" + strconv.FormatInt(id, 10),
				ACKCode: "AA", Readable: true, Findings: []string{"I:pd1-12-recorded"},
				Facts: report.Facts{Administered: 1, WithLot: 1, WithMVX: 1, Race: true, Address: true, Lag1: 1}}
		}
		return rs
	}
	for _, way := range []string{"insert-unnest", "copy"} {
		b.Run(way, func(b *testing.B) {
			conn, err := db.Pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			cpu0, cpuOK := backendCPU(ctx, b, conn)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				rs := batch()
				b.StartTimer()
				if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					if way == "copy" {
						_, err := tx.CopyFrom(ctx, pgx.Identifier{"report_facts"}, store.FactsColumns, pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
							r := &rs[i]
							f := &r.Facts
							return []any{r.MessageID, r.SiteID, r.Env, r.ReceivedAt, r.ControlID, r.ACKCode, r.Resend, r.Readable,
								r.Errors, r.Warnings, r.Findings, int16(f.Administered), int16(f.Historical), int16(f.Refusals),
								int16(f.Immunity), int16(f.WithLot), int16(f.WithMVX), int16(f.WithFunding), int16(f.WithVIS), f.Race,
								f.Ethnicity, f.Address, int16(f.Lag1), int16(f.Lag7), int16(f.Lag30), int16(f.LagLate), int32(f.LagDays)}, nil
						}))
						return err
					}
					_, err := tx.Exec(ctx, store.InsertFactsSQL, store.FactsArgs(rs)...)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if cpu1, ok := backendCPU(ctx, b, conn); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N*rows), "pg-µs/row")
			}
		})
	}
}

// backendCPU is the CPU time the connection's PostgreSQL backend has used, read from /proc.
func backendCPU(ctx context.Context, b *testing.B, conn *pgxpool.Conn) (time.Duration, bool) {
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		b.Fatal(err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, false
	}
	// utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+s) * 10 * time.Millisecond, true
}
