package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// How the writer's statements are planned.
//
// Every batch runs the same few statements, prepared once per connection. Planning one costs
// PostgreSQL tens to hundreds of microseconds; planned again for every batch (custom plans), the
// look-ups alone took about a third of PostgreSQL's time per message when batches were small (one
// message in flight per connection). A plan made once and kept (a generic plan) costs nothing per
// batch, but it is only as good as the statistics it was made from: on a fresh database — tables
// never analysed, or analysed while empty — every index looks as cheap as every other, and a
// kept plan may walk a whole index (all patients of an environment) for each key, making every
// batch slower as the registry grows.
//
// So the writer keeps the statistics of the tables it reads by key itself, rather than waiting for
// autovacuum (which may be slow, tuned down or off on a registry's own server): every
// StatsInterval it compares each table's live rows with the rows its statistics were made from and
// ANALYZEs it when it has doubled (from analyzeMinRows on). ANALYZE also makes PostgreSQL drop the
// plans made from the old statistics.
//
// The first statistics cannot wait for the interval. Without any, PostgreSQL prices every
// equality at the same default selectivity, and the archive's two indexes that begin with the
// site and environment look alike to the resend look-up: on a fresh database filling at 6,000
// messages a second it took (site, env, received_at) and read every archived message of the site
// for each key, one batch taking 1.2–1.6 s once the archive held ~12,000 rows, before the first
// check 2 s in. Live-row counts do not help there: backends report them at most once a second. So
// while a table's statistics describe fewer than genericMinRows rows, the writer's own count of
// committed records is a second clock: each time it reaches twice the count at the table's last
// ANALYZE by this writer (earlyAnalyzeMin at first), the table is analysed again, the check woken
// by the batch that got there (countCommitted). A record adds one archive row and at most a few
// rows to the other tables, so the first statistics come with the first batches, when a wrong
// index costs a read of a hundred-odd entries per key; a table that stays small is analysed at
// most once per doubling of the records. While any of those tables has statistics of fewer than
// genericMinRows rows the writer's look-ups are planned for every batch, as before; from then on
// every statement of the writer runs on its kept plan. In both modes whole-table scans and hash
// and merge joins are ruled out for the writer's transactions (writerPlanSettings): it reads and
// writes only by key, a few hundred keys per batch at most, and for that a nested loop over an
// index is the right plan at any table size.

// keyedTables are the tables the writer reads by key.
var keyedTables = []string{"messages", "patients", "registry_patients", "vaccinations"}

// keyColumns are, per keyed table, the columns the writer's look-ups match on: ANALYZE computes
// statistics for them alone (the archive's raw messages, say, would cost it seconds for nothing).
var keyColumns = map[string]string{
	"messages":          "site_id, env, control_id, content_digest, resend_key",
	"patients":          "env, organization_id, id_value, id_authority, id_type, registry_patient_id, birth_date, match_family, match_given",
	"registry_patients": "env, birth_date, family_name",
	"vaccinations":      "env, organization_id, filler_order_id, registry_patient_id, administered_on",
}

const (
	// DefaultStatsInterval is WriterOptions.StatsInterval's default.
	DefaultStatsInterval = 2 * time.Second
	// analyzeMinRows: smaller tables are not analysed by the writer (any plan reads them quickly),
	// unless its own clock says so:
	analyzeMinRows = 500
	// earlyAnalyzeMin: the committed records at which the tables are first analysed by the
	// writer's own clock. In make bench's fresh phase the look-ups before the first statistics
	// read 440 to 80,000 entries of the wrong index in all (ten runs), and up to 134,604 with 500.
	earlyAnalyzeMin = 100
	// genericMinRows: the statistics of every keyed table must describe at least this many rows
	// before the writer keeps its plans.
	genericMinRows = 1000
	// analyzeTarget is the statistics target of the writer's ANALYZE: a sample of 300 × 30 =
	// 9,000 rows, plenty to tell a key from an environment, and a tenth of the default's reading
	// (ANALYZE of the archive, whose rows carry the raw messages, took half a second at 30,000).
	// Autovacuum's own ANALYZE, when it comes, uses the server's target.
	analyzeTarget = "30"
)

const (
	// writerPlanSettings are the plan settings of a writer's transaction (set by its first
	// statement, with its advisory locks: lockLinkKeys), $2 its plan_cache_mode: once the statistics
	// are trustworthy, kept plans (planGeneric); until then the look-ups are planned for the values
	// they are given (planCustom, until writerPlanWrites, after them); index look-ups only either
	// way. set_config(..., true) is SET LOCAL: they end with the transaction, and the connection's
	// other users plan as PostgreSQL's settings say.
	writerPlanSettings = `set_config('plan_cache_mode', $2, true), set_config('enable_seqscan', 'off', true),
		set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`
	planGeneric      = "force_generic_plan"
	planCustom       = "force_custom_plan"
	writerPlanWrites = `SELECT set_config('plan_cache_mode', 'auto', true)`
)

// tableStats is what PostgreSQL knows of a keyed table: the rows its statistics were made from
// (reltuples, -1 when never analysed) and the rows it counts live now.
type tableStats struct {
	name     string
	analysed float64
	live     int64
	// columns: PostgreSQL holds statistics of the table's columns (pg_stats). A table restored by
	// pg_restore, or carried to a new major version by pg_upgrade, has its rows counted (reltuples,
	// which CREATE INDEX sets) and no column statistics: to the planner every index looks alike
	// again, as on a fresh database, while the row counts say nothing is stale.
	columns bool
}

// readTableStats reads the keyed tables' statistics.
func readTableStats(ctx context.Context, q querier) ([]tableStats, error) {
	rows, err := q.Query(ctx, `SELECT c.relname::text, c.reltuples::float8, COALESCE(s.n_live_tup, 0),
			EXISTS (SELECT 1 FROM pg_stats p WHERE p.schemaname = n.nspname AND p.tablename = c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
		WHERE c.oid = ANY($1::regclass[]) ORDER BY 1`, keyedTables)
	if err != nil {
		return nil, fmt.Errorf("store: read table statistics: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tableStats, error) {
		var t tableStats
		err := r.Scan(&t.name, &t.analysed, &t.live, &t.columns)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read table statistics: %w", err)
	}
	return out, nil
}

// stale: the table is big enough for a plan to matter and has grown to twice the rows its
// statistics describe (or has never been analysed), or holds no statistics of its columns.
func (t tableStats) stale() bool {
	if !t.columns && max(float64(t.live), t.analysed) >= analyzeMinRows {
		return true
	}
	return t.live >= analyzeMinRows && float64(t.live) >= 2*max(t.analysed, 0)
}

// countCommitted advances the statistics' own clock by n committed records and wakes
// keepStatistics when a table is due for its early ANALYZE.
func (w *Writer) countCommitted(n int) {
	if w.committed.Add(int64(n)) >= w.statsDue.Load() {
		select {
		case w.statsWake <- struct{}{}:
		default: // a check is already due
		}
	}
}

// keepStatistics runs checkStatistics every StatsInterval, and when countCommitted wakes it,
// until the writer is closed.
func (w *Writer) keepStatistics() {
	defer w.wg.Done()
	t := time.NewTicker(w.o.StatsInterval)
	defer t.Stop()
	base, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-w.stop: // Close does not wait for an ANALYZE to finish
			stop()
		case <-base.Done():
		}
	}()
	for {
		ctx, cancel := context.WithTimeout(base, time.Minute)
		if err := w.checkStatistics(ctx); err != nil && base.Err() == nil && !w.down.Load() {
			w.log.Warn("store: keeping the writer's table statistics", zap.Error(err))
		}
		cancel()
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.statsWake:
		}
	}
}

// earlyAnalyzeAt is the count of committed records at which a table whose statistics describe
// fewer than genericMinRows rows is analysed again: twice the count at its last ANALYZE by this
// writer, and earlyAnalyzeMin at first.
func (w *Writer) earlyAnalyzeAt(table string) int64 {
	return max(earlyAnalyzeMin, 2*w.analysedAt[table])
}

// checkStatistics analyses the keyed tables whose statistics are stale and decides whether the
// writer keeps its plans.
func (w *Writer) checkStatistics(ctx context.Context) error {
	// A check that fails leaves the early clock off: the next one is the ticker's.
	w.statsDue.Store(math.MaxInt64)
	stats, err := readTableStats(ctx, w.db.Pool)
	if err != nil {
		return err
	}
	generic := len(stats) == len(keyedTables)
	committed := w.committed.Load()
	due := int64(math.MaxInt64)
	for _, t := range stats {
		fresh := t.analysed < genericMinRows
		if t.stale() || fresh && committed >= w.earlyAnalyzeAt(t.name) {
			err := pgx.BeginFunc(ctx, w.db.Pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SET LOCAL default_statistics_target = "+analyzeTarget); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "ANALYZE "+pgx.Identifier{t.name}.Sanitize()+" ("+keyColumns[t.name]+")")
				return err
			})
			if err != nil {
				// Not the owner (a registry's own grants), say: the look-ups stay planned per batch.
				w.generic.Store(false)
				w.plansKept.Set(0)
				return fmt.Errorf("store: analyze %s: %w", t.name, err)
			}
			w.analyses.Inc()
			w.analysedAt[t.name] = committed
			t.analysed = max(t.analysed, float64(t.live))
			t.columns = true
		}
		if fresh {
			// Its next check reads what this ANALYZE found; until then the clock runs.
			due = min(due, w.earlyAnalyzeAt(t.name))
		}
		if t.analysed < genericMinRows || !t.columns {
			generic = false
		}
	}
	w.statsDue.Store(due)
	w.generic.Store(generic)
	if generic {
		w.plansKept.Set(1)
	} else {
		w.plansKept.Set(0)
	}
	return nil
}
