package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vaxgate/vaxgate/report"
)

// Daily rollups (report_days). A message's received_at is the time it arrived, and it is
// archived within seconds: once a day has been over for closedAfter, no message of that day can
// still come, and the day's summaries are final. The first quality report that covers a closed
// day whole stores its tallies in report_days; later reports read that one row instead of the
// day's summaries, and MissingFacts does not look at the day again. A quality report over a past
// month reads about 31 rows.
const closedAfter = time.Hour

const day = 24 * time.Hour

// tallyColumns are the aggregates over the facts of archived messages (factsDays' m) that make
// a report.Tally, in the order of tallyFields. Resent copies count in Resends only.
var tallyColumns = []string{
	"count(*) FILTER (WHERE NOT resend)",
	"count(*) FILTER (WHERE NOT resend AND ack_code = 'AA')",
	"count(*) FILTER (WHERE NOT resend AND ack_code = 'AE')",
	"count(*) FILTER (WHERE NOT resend AND ack_code = 'AR')",
	"count(*) FILTER (WHERE resend)",
	"count(*) FILTER (WHERE NOT resend AND has_errors)",
	"count(*) FILTER (WHERE NOT resend AND has_warnings)",
	"count(*) FILTER (WHERE NOT resend AND NOT readable)",
	"coalesce(sum(administered) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(historical) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(refusals) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(immunity) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(with_lot) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(with_mvx) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(with_funding) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(with_vis) FILTER (WHERE NOT resend), 0)",
	"count(*) FILTER (WHERE NOT resend AND has_race)",
	"count(*) FILTER (WHERE NOT resend AND has_ethnicity)",
	"count(*) FILTER (WHERE NOT resend AND has_address)",
	"coalesce(sum(lag_1) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(lag_7) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(lag_30) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(lag_late) FILTER (WHERE NOT resend), 0)",
	"coalesce(sum(lag_days) FILTER (WHERE NOT resend), 0)",
}

// factsSelect are the columns tallyColumns read.
const factsSelect = `received_at, ack_code, ` + resendSQL + ` AS resend, readable, has_errors, has_warnings, administered,
	historical, refusals, immunity, with_lot, with_mvx, with_funding, with_vis, has_race, has_ethnicity, has_address,
	lag_1, lag_7, lag_30, lag_late, lag_days`

func tallyFields(t *report.Tally) []*int64 {
	return []*int64{&t.Messages, &t.AA, &t.AE, &t.AR, &t.Resends, &t.WithErrors, &t.WithWarnings, &t.Unreadable,
		&t.Administered, &t.Historical, &t.Refusals, &t.Immunity, &t.WithLot, &t.WithMVX, &t.WithFunding, &t.WithVIS,
		&t.Race, &t.Ethnicity, &t.Address, &t.Lag1, &t.Lag7, &t.Lag30, &t.LagLate, &t.LagDays}
}

func addTally(t, x *report.Tally) {
	dst, src := tallyFields(t), tallyFields(x)
	for i := range dst {
		*dst[i] += *src[i]
	}
}

// dayTally is one UTC day's tally and finding counts ("severity:rule").
type dayTally struct {
	day   time.Time
	tally report.Tally
	rules map[string]int64
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// rolledDays returns the period's days that have a rollup, in order.
func (s *ReportStore) rolledDays(ctx context.Context, q querier, p report.Period) ([]time.Time, error) {
	first, end := fullDays(p)
	if !first.Before(end) {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT day FROM report_days WHERE site_id = $1 AND env = $2 AND day >= $3 AND day < $4 ORDER BY day`,
		p.SiteID, p.Env, first, end)
	if err != nil {
		return nil, fmt.Errorf("store: report rollups: %w", err)
	}
	days, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("store: report rollups: %w", err)
	}
	for i := range days {
		days[i] = utcDay(days[i])
	}
	return days, nil
}

// fullDays returns the first UTC day wholly inside the period and the end (exclusive) of the last.
func fullDays(p report.Period) (first, end time.Time) {
	first = utcDay(p.From)
	if first.Before(p.From) {
		first = first.Add(day)
	}
	return first, utcDay(p.To)
}

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// uncovered returns the ranges of [from, to) outside the given days (sorted, each wholly inside).
func uncovered(from, to time.Time, days []time.Time) [][2]time.Time {
	var out [][2]time.Time
	cur := from
	for _, d := range days {
		if d.After(cur) {
			out = append(out, [2]time.Time{cur, d})
		}
		cur = d.Add(day)
	}
	if to.After(cur) {
		out = append(out, [2]time.Time{cur, to})
	}
	return out
}

// QualityTallies adds up the period: rolled-up days from report_days, the other days from
// the facts of the archive rows (one pass for the tallies, one for the findings, by day); closed days read whole
// are rolled up on the way.
func (s *ReportStore) QualityTallies(ctx context.Context, p report.Period) (*report.Tallies, error) {
	var days []dayTally
	err := s.reading(ctx, func(tx pgx.Tx) error {
		var err error
		days, err = s.qualityDays(ctx, tx, p, time.Now().Add(-closedAfter))
		return err
	})
	if err != nil {
		return nil, err
	}
	t := &report.Tallies{}
	rules := map[string]int64{}
	for _, d := range days {
		addTally(&t.Total, &d.tally)
		week := d.day.AddDate(0, 0, -((int(d.day.Weekday()) + 6) % 7)) // Monday
		if n := len(t.Weeks); n == 0 || !t.Weeks[n-1].Week.Equal(week) {
			t.Weeks = append(t.Weeks, report.WeekTally{Week: week})
		}
		addTally(&t.Weeks[len(t.Weeks)-1].Tally, &d.tally)
		for k, n := range d.rules {
			rules[k] += n
		}
	}
	for k, n := range rules {
		sev, rule, _ := strings.Cut(k, ":")
		t.Rules = append(t.Rules, report.RuleTally{Rule: rule, Severity: sev, Messages: n})
	}
	return t, nil
}

// qualityDays returns the period's days in order, rolling up the closed full days it computes.
func (s *ReportStore) qualityDays(ctx context.Context, tx pgx.Tx, p report.Period, closedBefore time.Time) ([]dayTally, error) {
	first, end := fullDays(p)
	byDay := map[time.Time]*dayTally{}
	if first.Before(end) {
		rows, err := tx.Query(ctx, `SELECT day, tally, rules, rule_messages FROM report_days
			WHERE site_id = $1 AND env = $2 AND day >= $3 AND day < $4`, p.SiteID, p.Env, first, end)
		if err != nil {
			return nil, fmt.Errorf("store: read report rollups: %w", err)
		}
		for rows.Next() {
			var (
				d      dayTally
				tally  []int64
				keys   []string
				counts []int64
			)
			if err := rows.Scan(&d.day, &tally, &keys, &counts); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: read report rollups: %w", err)
			}
			f := tallyFields(&d.tally)
			if len(tally) != len(f) || len(keys) != len(counts) {
				rows.Close()
				return nil, fmt.Errorf("store: report rollup of %s has %d counts, want %d", d.day.Format(time.DateOnly), len(tally), len(f))
			}
			for i := range f {
				*f[i] = tally[i]
			}
			d.day = utcDay(d.day)
			d.rules = make(map[string]int64, len(keys))
			for i, k := range keys {
				d.rules[k] = counts[i]
			}
			byDay[d.day] = &d
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: read report rollups: %w", err)
		}
	}
	rolled := make([]time.Time, 0, len(byDay))
	for d := range byDay {
		rolled = append(rolled, d)
	}
	slices.SortFunc(rolled, func(a, b time.Time) int { return a.Compare(b) })
	for _, r := range uncovered(p.From, p.To, rolled) {
		computed, err := factsDays(ctx, tx, p, r[0], r[1])
		if err != nil {
			return nil, err
		}
		for _, d := range computed {
			byDay[d.day] = d
		}
		// Every closed day wholly in the range is rolled up, those without messages too (as
		// zeros), so that no later report or periodic summary looks at it again.
		for d := utcDay(r[0]); d.Before(r[1]); d = d.Add(day) {
			if d.Before(r[0]) || d.Add(day).After(r[1]) || d.Add(day).After(closedBefore) {
				continue
			}
			dt := computed[d]
			if dt == nil {
				dt = &dayTally{day: d, rules: map[string]int64{}}
			}
			if err := saveRollup(ctx, tx, p, dt); err != nil {
				return nil, err
			}
		}
	}
	out := make([]dayTally, 0, len(byDay))
	for _, d := range byDay {
		if d.tally != (report.Tally{}) {
			out = append(out, *d)
		}
	}
	slices.SortFunc(out, func(a, b dayTally) int { return a.day.Compare(b.day) })
	return out, nil
}

// factsDays adds up the facts of the archived messages of [from, to) by UTC day, reading the
// archive rows through messages_site_env_received (periodMessages).
func factsDays(ctx context.Context, tx pgx.Tx, p report.Period, from, to time.Time) (map[time.Time]*dayTally, error) {
	out := map[time.Time]*dayTally{}
	rows, err := tx.Query(ctx, tallyDaysSQL, p.SiteID, p.Env, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: quality tallies: %w", err)
	}
	for rows.Next() {
		d := &dayTally{rules: map[string]int64{}}
		dest := []any{&d.day}
		for _, f := range tallyFields(&d.tally) {
			dest = append(dest, f)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: quality tallies: %w", err)
		}
		d.day = utcDay(d.day)
		out[d.day] = d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: quality tallies: %w", err)
	}
	rows, err = tx.Query(ctx, ruleDaysSQL, p.SiteID, p.Env, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: rule tallies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			d time.Time
			k string
			n int64
		)
		if err := rows.Scan(&d, &k, &n); err != nil {
			return nil, fmt.Errorf("store: rule tallies: %w", err)
		}
		if dt := out[utcDay(d)]; dt != nil {
			dt.rules[k] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: rule tallies: %w", err)
	}
	return out, nil
}

// tallyDaysSQL adds up the facts of a site's period by day; ruleDaysSQL counts its messages
// with each finding key by day.
var (
	tallyDaysSQL = `SELECT (received_at AT TIME ZONE 'UTC')::date AS day, ` + strings.Join(tallyColumns, ", ") + `
		FROM ` + periodMessages(factsSelect, true) + ` GROUP BY day`
	ruleDaysSQL = `SELECT (received_at AT TIME ZONE 'UTC')::date AS day, k, count(*)
		FROM ` + periodMessages("received_at, "+resendSQL+" AS resend, finding_keys", true) + `, unnest(m.finding_keys) k
		WHERE NOT resend
		GROUP BY day, k`
)

// saveRollup stores a closed day's tallies (a concurrent report may have stored them first).
func saveRollup(ctx context.Context, tx pgx.Tx, p report.Period, d *dayTally) error {
	f := tallyFields(&d.tally)
	tally := make([]int64, len(f))
	for i := range f {
		tally[i] = *f[i]
	}
	keys := make([]string, 0, len(d.rules))
	for k := range d.rules {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	counts := make([]int64, len(keys))
	for i, k := range keys {
		counts[i] = d.rules[k]
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO report_days (site_id, env, day, tally, rules, rule_messages) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (site_id, env, day) DO NOTHING`, p.SiteID, p.Env, d.day, tally, keys, counts); err != nil {
		return fmt.Errorf("store: save report rollup: %w", err)
	}
	return nil
}
