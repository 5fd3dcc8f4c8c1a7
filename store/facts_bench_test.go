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

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// BenchmarkArchiveFacts measures what archiving a message and its report facts costs PostgreSQL at
// intake, per archived message, in batches of 100 rows in a transaction each, over a ~1 kB VXU:
//
//   - facts-columns: the facts as columns of the archive row, copied with it (store.ArchiveCopy:
//     the writer's copyMessages, as intake writes a batch of copyMinRows or more);
//   - insert: the same rows inserted as an array of batch_message rows, as intake writes a small
//     batch's (store.ArchiveBatch);
//   - facts-table: the design before migration 014 — the archive row without facts, inserted, then
//     a row in a report_facts table (009's definition, with its primary key and site index)
//     inserted with the statement intake used (oldInsertFacts);
//   - no-facts: the archive rows alone, copied, for reference.
//
// pg-µs/msg is the CPU of the PostgreSQL backend that ran them (from /proc, when the test server
// is a local process).
//
//	go test -run XXX -bench ArchiveFacts -benchtime 200x ./store
func BenchmarkArchiveFacts(b *testing.B) {
	ctx := context.Background()
	db := storetest.New(b)
	var site int64
	if err := db.Pool.QueryRow(ctx, `WITH o AS (INSERT INTO organizations (code, name) VALUES ('AF', 'AF') RETURNING id)
		INSERT INTO sites (organization_id, code, name, status) SELECT id, 'AF', 'AF', 'production' FROM o RETURNING id`).Scan(&site); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, oldFactsTable); err != nil {
		b.Fatal(err)
	}
	raw := vxugen.New(vxugen.Options{Seed: 5, Facility: "AF", ControlIDs: "A", Now: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}).Next()
	var m hl7.Message
	var content report.Content
	report.ReadContent(&m, raw, time.Now(), &content)
	const rows = 100
	var next int64 = 1
	for _, way := range []string{"facts-columns", "insert", "facts-table", "no-facts"} {
		b.Run(way, func(b *testing.B) {
			// Each way from empty tables, so that the order of the ways and runs does not matter.
			if _, err := db.Pool.Exec(ctx, `TRUNCATE messages, bench_report_facts`); err != nil {
				b.Fatal(err)
			}
			conn, err := db.Pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			if err := store.RegisterRowTypes(ctx, conn.Conn()); err != nil {
				b.Fatal(err)
			}
			cpu0, cpuOK := backendCPU(ctx, b, conn)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				c := &content
				if way != "facts-columns" && way != "insert" {
					c = nil
				}
				sql, args := store.ArchiveBatch(next, rows, site, raw, c)
				old := oldFactsArgs(next, rows, site, &content)
				next += rows
				b.StartTimer()
				if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					if way == "facts-columns" || way == "no-facts" {
						return store.ArchiveCopy(ctx, tx, next-rows, rows, site, raw, c)
					}
					if _, err := tx.Exec(ctx, sql, args...); err != nil {
						return err
					}
					if way == "facts-table" {
						_, err := tx.Exec(ctx, oldInsertFacts, old...)
						return err
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if cpu1, ok := backendCPU(ctx, b, conn); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N*rows), "pg-µs/msg")
			}
		})
	}
}

// oldFactsTable is report_facts as migration 009 made it (dropped by 012), for the facts-table
// way of BenchmarkArchiveFacts.
const oldFactsTable = `CREATE TABLE bench_report_facts (
	message_id bigint PRIMARY KEY, site_id bigint NOT NULL, env text NOT NULL, received_at timestamptz NOT NULL,
	control_id text NOT NULL, ack_code text NOT NULL, resend boolean NOT NULL, readable boolean NOT NULL,
	has_errors boolean NOT NULL, has_warnings boolean NOT NULL, findings text[] NOT NULL, administered smallint NOT NULL,
	historical smallint NOT NULL, refusals smallint NOT NULL, immunity smallint NOT NULL, with_lot smallint NOT NULL,
	with_mvx smallint NOT NULL, with_funding smallint NOT NULL, with_vis smallint NOT NULL, race boolean NOT NULL,
	ethnicity boolean NOT NULL, address boolean NOT NULL, lag_1 smallint NOT NULL, lag_7 smallint NOT NULL,
	lag_30 smallint NOT NULL, lag_late smallint NOT NULL, lag_days integer NOT NULL);
	CREATE INDEX bench_report_facts_site ON bench_report_facts (site_id, env, received_at)`

// oldInsertFacts is the statement intake inserted report_facts rows with before 012.
const oldInsertFacts = `INSERT INTO bench_report_facts (message_id, site_id, env, received_at, control_id, ack_code,
		resend, readable, has_errors, has_warnings, findings, administered, historical, refusals, immunity, with_lot,
		with_mvx, with_funding, with_vis, race, ethnicity, address, lag_1, lag_7, lag_30, lag_late, lag_days)
	SELECT u.id, u.site, u.env, u.recv, u.control, u.ack, u.resend, u.readable, u.errs, u.warns, u.findings::text[],
		u.adm, u.hist, u.ref, u.imm, u.lot, u.mvx, u.fund, u.vis, u.race, u.eth, u.addr, u.lag1, u.lag7, u.lag30, u.late,
		u.lagsum
	FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::bool[],
		$8::bool[], $9::bool[], $10::bool[], $11::text[], $12::int[], $13::int[], $14::int[], $15::int[], $16::int[],
		$17::int[], $18::int[], $19::int[], $20::bool[], $21::bool[], $22::bool[], $23::int[], $24::int[], $25::int[],
		$26::int[], $27::int[])
		AS u(id, site, env, recv, control, ack, resend, readable, errs, warns, findings, adm, hist, ref, imm, lot, mvx,
		fund, vis, race, eth, addr, lag1, lag7, lag30, late, lagsum)`

// oldFactsArgs are oldInsertFacts' arguments for the archive rows first..first+n-1 of site, each
// with the facts of c.
func oldFactsArgs(first int64, n int, site int64, c *report.Content) []any {
	ids, sites, recv := make([]int64, n), make([]int64, n), make([]time.Time, n)
	envs, controls, acks, keys := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	var bools [7][]bool
	var ints [13][]int32
	for i := range bools {
		bools[i] = make([]bool, n)
	}
	for i := range ints {
		ints[i] = make([]int32, n)
	}
	f := &c.Facts
	now := time.Now()
	for i := range n {
		ids[i], sites[i], recv[i], envs[i], acks[i] = first+int64(i), site, now, "P", "AA"
		controls[i], keys[i] = "C-"+strconv.FormatInt(first+int64(i), 10), `{"I:pd1-12-recorded"}`
		for k, v := range []bool{false, c.Readable, false, false, f.Race, f.Ethnicity, f.Address} {
			bools[k][i] = v
		}
		for k, v := range []int{f.Administered, f.Historical, f.Refusals, f.Immunity, f.WithLot, f.WithMVX, f.WithFunding,
			f.WithVIS, f.Lag1, f.Lag7, f.Lag30, f.LagLate, f.LagDays} {
			ints[k][i] = int32(v)
		}
	}
	return []any{ids, sites, envs, recv, controls, acks, bools[0], bools[1], bools[2], bools[3], keys, ints[0], ints[1],
		ints[2], ints[3], ints[4], ints[5], ints[6], ints[7], bools[4], bools[5], bools[6], ints[8], ints[9], ints[10],
		ints[11], ints[12]}
}

// backendCPU is the CPU time the connection's PostgreSQL backend has used, read from /proc.
func backendCPU(ctx context.Context, b *testing.B, conn *pgxpool.Conn) (time.Duration, bool) {
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		b.Fatal(err)
	}
	return procCPU(pid)
}

// procCPU is the CPU time (user and system) process pid has used, read from /proc.
func procCPU(pid int) (time.Duration, bool) {
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

// databaseCPU is the CPU time used so far by each PostgreSQL backend connected to db's database,
// by process id (none when /proc cannot be read: a server on another machine).
func databaseCPU(ctx context.Context, b *testing.B, db *store.DB) map[int]time.Duration {
	var pids []int32
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity
		WHERE datname = current_database()`).Scan(&pids); err != nil {
		b.Fatal(err)
	}
	cpu := map[int]time.Duration{}
	for _, pid := range pids {
		if c, ok := procCPU(int(pid)); ok {
			cpu[int(pid)] = c
		}
	}
	return cpu
}

// databaseCPUSince is the CPU time db's backends used since before (databaseCPU): a backend
// started since counts from zero.
func databaseCPUSince(ctx context.Context, b *testing.B, db *store.DB, before map[int]time.Duration) (time.Duration, bool) {
	now := databaseCPU(ctx, b, db)
	var d time.Duration
	for pid, c := range now {
		d += c - before[pid]
	}
	return d, len(now) > 0
}
