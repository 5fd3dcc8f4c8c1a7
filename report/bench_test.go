package report_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// benchData is a database holding a month of a busy production site (BUSY) and a certification
// run of a testing site (CERTBUSY).
type benchData struct {
	url      string
	db       *store.DB
	svc      *report.Service
	busy     *report.Site
	cert     *report.Site
	messages int
	month    report.Period
	ids      []string // BUSY's control IDs, as a site's file would list them
	err      error
	opts     report.Options // of the services measure makes
}

// benchMessages is the size of BUSY's month: 1,000,000, or VAXGATE_BENCH_MESSAGES.
func benchMessages() int {
	if v, err := strconv.Atoi(os.Getenv("VAXGATE_BENCH_MESSAGES")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

// benchCertMessages is the size of CERTBUSY's certification run.
const benchCertMessages = 20_000

// setUpBench archives the messages with INSERT … SELECT over generate_series (not through the
// pipeline): realistic VXU (ingest/vxugen, about 1 KB each) spread evenly over March 2025, 88%
// AA, 10% AE with two warnings, 2% AR with an error; then VACUUM ANALYZE, as autovacuum does for
// an insert-only table.
func setUpBench(b *testing.B) *benchData {
	var bench benchData
	{
		bench.err = func() error {
			ctx := context.Background()
			bench.url = storetest.NewURL(b)
			db, err := store.Open(ctx, bench.url)
			if err != nil {
				return err
			}
			b.Cleanup(db.Close)
			bench.db, bench.messages = db, benchMessages()
			var org, busy, cert int64
			if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ('BENCH', 'Bench Health') RETURNING id`).Scan(&org); err != nil {
				return err
			}
			if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, 'BUSY', 'Busy Clinic', 'production') RETURNING id`, org).Scan(&busy); err != nil {
				return err
			}
			if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, 'CERTBUSY', 'Testing Clinic', 'testing') RETURNING id`, org).Scan(&cert); err != nil {
				return err
			}
			if _, err := db.Pool.Exec(ctx, `CREATE TABLE bench_raw (i int PRIMARY KEY, raw bytea NOT NULL)`); err != nil {
				return err
			}
			gen := vxugen.New(vxugen.Options{Seed: 11, Facility: "BUSY01", ControlIDs: "B", Now: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)})
			const templates = 500
			for i := range templates {
				if _, err := db.Pool.Exec(ctx, `INSERT INTO bench_raw VALUES ($1, $2)`, i, gen.Next()); err != nil {
					return err
				}
			}
			start := time.Now()
			insert := func(site int64, env, prefix string, n int) error {
				_, err := db.Pool.Exec(ctx, `
					INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key)
					SELECT $2, $1, 'mllp', $3 || g, '2025-03-01T00:00:00Z'::timestamptz + ((g - 1) * (2678400.0 / $4)) * interval '1 second',
						r.raw, convert_to(repeat('MSH|^~\&|vaxgate|BUSY01|ACK|', 8), 'UTF8'),
						CASE WHEN g % 50 = 0 THEN 'AR' WHEN g % 10 = 0 THEN 'AE' ELSE 'AA' END,
						CASE WHEN g % 50 = 0 THEN '[{"rule":"msh-11-processing-id","code":202,"severity":"E","text":"Processing ID"}]'
						     WHEN g % 10 = 0 THEN '[{"rule":"rxa-15-missing","code":101,"severity":"W","text":"lot"},{"rule":"vis-missing","code":101,"severity":"W","text":"VIS"}]'
						     ELSE '[{"rule":"pd1-12-recorded","code":0,"severity":"I","text":"PD1-12"}]' END::json,
						g % 50 <> 0
					FROM generate_series(1, $4::int) g JOIN bench_raw r ON r.i = g % 500`, site, env, prefix, n)
				return err
			}
			if err := insert(busy, "P", "BUSY-", bench.messages); err != nil {
				return fmt.Errorf("insert BUSY: %w", err)
			}
			if err := insert(cert, "T", "CERT-", benchCertMessages); err != nil {
				return fmt.Errorf("insert CERTBUSY: %w", err)
			}
			if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE messages`); err != nil {
				return err
			}
			b.Logf("archived %d + %d messages in %v", bench.messages, benchCertMessages, time.Since(start).Round(time.Millisecond))
			bench.svc = report.NewService(store.NewReportStore(db), report.Options{})
			if bench.busy, err = bench.svc.Site(ctx, busy, ""); err != nil {
				return err
			}
			if bench.cert, err = bench.svc.Site(ctx, cert, ""); err != nil {
				return err
			}
			from, to, err := report.ParseBounds("2025-03-01", "2025-03-31")
			if err != nil {
				return err
			}
			bench.month = report.Period{SiteID: busy, Env: "P", From: from, To: to}
			// The site's file: every ID but the last 1,000, and 500 it never sent.
			for g := 1; g <= bench.messages-1000; g++ {
				bench.ids = append(bench.ids, "BUSY-"+strconv.Itoa(g))
			}
			for g := range 500 {
				bench.ids = append(bench.ids, "LOST-"+strconv.Itoa(g))
			}
			return nil
		}()
	}
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return &bench
}

// BenchmarkReports1M measures the reports over a month of a busy site (1,000,000 messages):
//
//	go test -run XXX -bench Reports1M -benchtime 1x ./report
//
// summarize is what the first report over the month does when serve's periodic summaries are
// off (every message parsed once, its facts columns set); quality-first is the first quality
// report (adding up the messages' facts and rolling the closed days up into report_days), quality
// every later one; reconcile reads the month's archive rows every time. Besides the time, each reports the CPU it cost in
// this process and in PostgreSQL (its backends' time, read from /proc when the test server is a
// local process): on a shared machine, the time depends on the load, the CPU much less.
func BenchmarkReports1M(b *testing.B) {
	d := setUpBench(b)
	ctx := context.Background()
	b.Run("summarize", func(b *testing.B) {
		d.measure(b, func(b *testing.B, svc *report.Service) {
			b.StopTimer()
			storetest.ClearFacts(b, d.db, 0)
			if _, err := d.db.Pool.Exec(ctx, `VACUUM ANALYZE messages`); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			n, err := svc.Summarize(ctx, d.month)
			if err != nil {
				b.Fatal(err)
			}
			if n != int64(d.messages) {
				b.Fatalf("summarized %d of %d", n, d.messages)
			}
		})
		b.ReportMetric(float64(b.N*d.messages)/b.Elapsed().Seconds(), "msg/s")
		if _, err := d.db.Pool.Exec(ctx, `VACUUM ANALYZE messages`); err != nil {
			b.Fatal(err)
		}
	})
	quality := func(b *testing.B, svc *report.Service) {
		q, err := svc.Quality(ctx, d.busy, d.month)
		if err != nil {
			b.Fatal(err)
		}
		if q.Volume.Messages != int64(d.messages) || q.Summarized != 0 {
			b.Fatalf("quality over %d messages (%d summarized now)", q.Volume.Messages, q.Summarized)
		}
	}
	b.Run("quality-first", func(b *testing.B) {
		d.measure(b, func(b *testing.B, svc *report.Service) {
			b.StopTimer()
			if _, err := d.db.Pool.Exec(ctx, `TRUNCATE report_days`); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			quality(b, svc)
		})
	})
	b.Run("quality", func(b *testing.B) {
		d.measure(b, func(b *testing.B, svc *report.Service) {
			q, err := svc.Quality(ctx, d.busy, d.month)
			if err != nil {
				b.Fatal(err)
			}
			if q.Volume.Messages != int64(d.messages) || q.Summarized != 0 {
				b.Fatalf("quality over %d messages (%d summarized now)", q.Volume.Messages, q.Summarized)
			}
		})
	})
	b.Run("reconcile-file", func(b *testing.B) {
		d.measure(b, func(b *testing.B, svc *report.Service) {
			claim, err := report.ClaimOf(d.ids)
			if err != nil {
				b.Fatal(err)
			}
			r, err := svc.Reconcile(ctx, d.busy, d.month, claim)
			if err != nil {
				b.Fatal(err)
			}
			if r.Missing != 500 || r.Unexpected != 1000 {
				b.Fatalf("missing %d unexpected %d", r.Missing, r.Unexpected)
			}
		})
	})
	b.Run("reconcile-count", func(b *testing.B) {
		d.measure(b, func(b *testing.B, svc *report.Service) {
			r, err := svc.Reconcile(ctx, d.busy, d.month, &report.Claim{Count: int64(d.messages)})
			if err != nil {
				b.Fatal(err)
			}
			if r.Received != int64(d.messages) {
				b.Fatalf("received %d", r.Received)
			}
		})
	})
	// serve's periodic summaries (lookback 48 hours) at noon on the month's last day, every message
	// summarized and the days before rolled up: open-day is what every run cost before intake wrote
	// the facts (comparing the open day's counts of messages and of facts), and still what the
	// first run after serve starts costs; caught-up what the later runs cost now.
	b.Run("summaries", func(b *testing.B) {
		noon := time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC)
		d.opts = report.Options{Now: func() time.Time { return noon }}
		defer func() { d.opts = report.Options{} }()
		if _, err := d.db.Pool.Exec(ctx, `DELETE FROM report_days WHERE day >= '2025-03-31'`); err != nil {
			b.Fatal(err)
		}
		// The first run after serve starts: the other site's test messages of the lookback.
		if _, err := report.NewService(store.NewReportStore(d.db), d.opts).SummarizeRecent(ctx, 48*time.Hour); err != nil {
			b.Fatal(err)
		}
		for _, run := range []struct {
			name string
			op   func(*report.Service) (int64, error)
		}{
			{"open-day", func(svc *report.Service) (int64, error) { return svc.SummarizeRecent(ctx, 48*time.Hour) }},
			{"caught-up", func(svc *report.Service) (int64, error) { return svc.SummarizeClosed(ctx, 48*time.Hour) }},
		} {
			b.Run(run.name, func(b *testing.B) {
				d.measure(b, func(b *testing.B, svc *report.Service) {
					if n, err := run.op(svc); err != nil || n != 0 {
						b.Fatalf("summarized %d (%v) with nothing missing", n, err)
					}
				})
			})
		}
	})
	b.Run("certification-20k", func(b *testing.B) {
		d.measure(b, func(b *testing.B, svc *report.Service) {
			c, err := svc.Certification(ctx, d.cert)
			if err != nil {
				b.Fatal(err)
			}
			if c.Messages != benchCertMessages {
				b.Fatalf("certification read %d messages", c.Messages)
			}
		})
	})
}

// benchApp names the benchmark's own connections, to wait for their backends to end.
const benchApp = "vaxgate-report-bench"

// measure runs op b.N times on a service with a pool of its own, closed at the end so that its
// backends' CPU time is added to the postmaster's children's, and reports the CPU per op.
func (d *benchData) measure(b *testing.B, op func(*testing.B, *report.Service)) {
	ctx := context.Background()
	b.StopTimer()
	sdb, err := store.Open(ctx, d.url, store.WithApplicationName(benchApp))
	if err != nil {
		b.Fatal(err)
	}
	svc := report.NewService(store.NewReportStore(sdb), d.opts)
	pg0, pgOK := postmasterChildrenCPU(ctx, d.db)
	go0 := processCPU()
	b.StartTimer()
	for range b.N {
		op(b, svc)
	}
	b.StopTimer()
	goCPU := processCPU() - go0
	sdb.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var n int
		if err := d.db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, benchApp).Scan(&n); err != nil || n == 0 {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // the postmaster reaps its ended children
	b.ReportMetric(goCPU.Seconds()/float64(b.N), "go-cpu-s/op")
	if pg1, ok := postmasterChildrenCPU(ctx, d.db); ok && pgOK {
		b.ReportMetric((pg1-pg0).Seconds()/float64(b.N), "pg-cpu-s/op")
	}
	b.StartTimer()
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postmasterChildrenCPU is the CPU time of the test server's ended backends (its postmaster's
// children), read from /proc; ok is false when the server is not a local process this test can
// read.
func postmasterChildrenCPU(ctx context.Context, db *store.DB) (time.Duration, bool) {
	var dir string
	if err := db.Pool.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		return 0, false
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	pid, _, _ := strings.Cut(string(pidFile), "\n")
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command (which is in parentheses): state is field 3; cutime and cstime
	// are fields 16 and 17, in clock ticks (100 per second on Linux).
	_, rest, ok := strings.Cut(string(stat), ") ")
	if !ok {
		return 0, false
	}
	f := strings.Fields(rest)
	if len(f) < 15 {
		return 0, false
	}
	cu, err1 := strconv.ParseInt(f[13], 10, 64)
	cs, err2 := strconv.ParseInt(f[14], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(cu+cs) * 10 * time.Millisecond, true
}

// BenchmarkArchiveIndexCost measures what the reports' index on messages
// (messages_site_env_received) costs intake: PostgreSQL's CPU per archived message, inserting the
// same 200,000 rows with and without it.
//
//	go test -run XXX -bench ArchiveIndexCost -benchtime 1x ./report
func BenchmarkArchiveIndexCost(b *testing.B) {
	ctx := context.Background()
	url := storetest.NewURL(b)
	db, err := store.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var site int64
	if err := db.Pool.QueryRow(ctx, `WITH o AS (INSERT INTO organizations (code, name) VALUES ('IDX', 'Idx') RETURNING id)
		INSERT INTO sites (organization_id, code, name, status) SELECT id, 'IDX', 'Idx', 'production' FROM o RETURNING id`).Scan(&site); err != nil {
		b.Fatal(err)
	}
	raw := vxugen.New(vxugen.Options{Seed: 3, Facility: "IDX", ControlIDs: "I", Now: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}).Next()
	const rows = 200_000
	d := &benchData{url: url, db: db}
	for _, withIndex := range []bool{true, false} {
		name := "with-index"
		if !withIndex {
			name = "without-index"
		}
		b.Run(name, func(b *testing.B) {
			b.StopTimer()
			if !withIndex {
				if _, err := db.Pool.Exec(ctx, `DROP INDEX IF EXISTS messages_site_env_received`); err != nil {
					b.Fatal(err)
				}
			}
			d.measure(b, func(b *testing.B, _ *report.Service) {
				b.StopTimer()
				if _, err := db.Pool.Exec(ctx, `TRUNCATE messages CASCADE`); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				// As the writer does: batches of 256 rows in one statement each, so that the
				// index maintenance is measured, not one huge statement's.
				sdb, err := store.Open(ctx, url, store.WithApplicationName(benchApp))
				if err != nil {
					b.Fatal(err)
				}
				defer sdb.Close()
				for start := 0; start < rows; start += 256 {
					if _, err := sdb.Pool.Exec(ctx, `
						INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key)
						SELECT 'P', $1, 'mllp', 'I-' || g, now(), $2, 'ack'::bytea, 'AA', '[]', true
						FROM generate_series($3::int, $3::int + 255) g`, site, raw, start); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
