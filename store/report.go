package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/report"
)

// ReportStore implements report.Store: the archive as the certification, data-quality and
// reconciliation reports read it, their summaries (report_facts) and readiness sign-offs.
type ReportStore struct{ db *DB }

var _ report.Store = (*ReportStore)(nil)

// NewReportStore returns the reports' store over db.
func NewReportStore(db *DB) *ReportStore { return &ReportStore{db: db} }

// factsChunk is how many archived messages MissingFacts hands over at a time.
const factsChunk = 2000

// ReportSite returns the site with this id (when not 0) or code.
func (s *ReportStore) ReportSite(ctx context.Context, id int64, code string) (*report.Site, error) {
	var site report.Site
	var goLive *time.Time
	err := s.db.Pool.QueryRow(ctx, `
		SELECT id, code, name, status, go_live_date FROM sites
		WHERE CASE WHEN $1::bigint <> 0 THEN id = $1 ELSE code = $2 END`, id, code).
		Scan(&site.ID, &site.Code, &site.Name, &site.Status, &goLive)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, report.ErrSiteNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: report site: %w", err)
	}
	site.GoLive = goLive
	return &site, nil
}

// TestMessages reads the site's test-environment messages, and those rejected before their
// environment was known, in the order received.
func (s *ReportStore) TestMessages(ctx context.Context, siteID int64, fn func(*report.Archived) error) error {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT id, control_id, received_at, ack_code, NOT resend_key AND ack_code <> 'AR', findings, raw
		FROM messages WHERE site_id = $1 AND (env = 'T' OR env IS NULL)
		ORDER BY received_at, id`, siteID)
	if err != nil {
		return fmt.Errorf("store: read test messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		a := &report.Archived{SiteID: siteID, Env: "T"}
		if err := rows.Scan(&a.ID, &a.ControlID, &a.ReceivedAt, &a.ACKCode, &a.Resend, &a.Findings, &a.Raw); err != nil {
			return fmt.Errorf("store: read test message: %w", err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read test messages: %w", err)
	}
	return nil
}

// MissingFacts finds the period's messages without a summary (an index-only anti-join over
// messages_site_received and report_facts' key), then reads them by id in chunks.
func (s *ReportStore) MissingFacts(ctx context.Context, p report.Period, fn func([]*report.Archived) error) error {
	var ids []int64
	rows, err := s.db.Pool.Query(ctx, `
		SELECT m.id FROM messages m
		WHERE m.site_id = $1 AND m.env = $2 AND m.received_at >= $3 AND m.received_at < $4
		  AND NOT EXISTS (SELECT 1 FROM report_facts f WHERE f.message_id = m.id)
		UNION ALL
		SELECT m.id FROM messages m
		WHERE m.site_id = $1 AND m.env IS NULL AND m.received_at >= $3 AND m.received_at < $4
		  AND NOT EXISTS (SELECT 1 FROM report_facts f WHERE f.message_id = m.id)`,
		p.SiteID, p.Env, p.From, p.To)
	if err != nil {
		return fmt.Errorf("store: find messages to summarize: %w", err)
	}
	ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("store: find messages to summarize: %w", err)
	}
	for len(ids) > 0 {
		n := min(len(ids), factsChunk)
		chunk, err := s.archived(ctx, ids[:n])
		if err != nil {
			return err
		}
		ids = ids[n:]
		if err := fn(chunk); err != nil {
			return err
		}
	}
	return nil
}

func (s *ReportStore) archived(ctx context.Context, ids []int64) ([]*report.Archived, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT id, site_id, coalesce(env, ''), control_id, received_at, ack_code, NOT resend_key AND ack_code <> 'AR',
			ARRAY(SELECT DISTINCT (e->>'severity') || ':' || (e->>'rule') FROM jsonb_array_elements(findings) e), raw
		FROM messages WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: read messages to summarize: %w", err)
	}
	defer rows.Close()
	out := make([]*report.Archived, 0, len(ids))
	for rows.Next() {
		a := &report.Archived{}
		var env string
		if err := rows.Scan(&a.ID, &a.SiteID, &env, &a.ControlID, &a.ReceivedAt, &a.ACKCode, &a.Resend, &a.FindingKeys, &a.Raw); err != nil {
			return nil, fmt.Errorf("store: read message to summarize: %w", err)
		}
		a.Env = env
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read messages to summarize: %w", err)
	}
	return out, nil
}

// SaveFacts inserts summaries in one statement (arrays unnested), keeping any already stored.
func (s *ReportStore) SaveFacts(ctx context.Context, rs []report.FactsRow) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	var (
		ids, sites                           = make([]int64, n), make([]int64, n)
		envs, controls, acks, findings       = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		recv                                 = make([]time.Time, n)
		resend, readable, errs, warns        = make([]bool, n), make([]bool, n), make([]bool, n), make([]bool, n)
		race, eth, addr                      = make([]bool, n), make([]bool, n), make([]bool, n)
		adm, hist, ref, imm, lot, mvx, fund  = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		vis, lag1, lag7, lag30, late, lagSum = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	)
	clamp := func(v int) int32 { return int32(min(v, 32767)) }
	for i := range rs {
		r := &rs[i]
		f := &r.Facts
		ids[i], sites[i], envs[i], controls[i], acks[i], recv[i] = r.MessageID, r.SiteID, r.Env, r.ControlID, r.ACKCode, r.ReceivedAt
		findings[i] = pgTextArray(r.Findings)
		resend[i], readable[i], errs[i], warns[i] = r.Resend, r.Readable, r.Errors, r.Warnings
		race[i], eth[i], addr[i] = f.Race, f.Ethnicity, f.Address
		adm[i], hist[i], ref[i], imm[i] = clamp(f.Administered), clamp(f.Historical), clamp(f.Refusals), clamp(f.Immunity)
		lot[i], mvx[i], fund[i], vis[i] = clamp(f.WithLot), clamp(f.WithMVX), clamp(f.WithFunding), clamp(f.WithVIS)
		lag1[i], lag7[i], lag30[i], late[i] = clamp(f.Lag1), clamp(f.Lag7), clamp(f.Lag30), clamp(f.LagLate)
		lagSum[i] = int32(min(f.LagDays, 1<<31-1))
	}
	_, err := s.db.Pool.Exec(ctx, `
		INSERT INTO report_facts (message_id, site_id, env, received_at, control_id, ack_code, resend, readable,
			has_errors, has_warnings, findings, administered, historical, refusals, immunity, with_lot, with_mvx,
			with_funding, with_vis, race, ethnicity, address, lag_1, lag_7, lag_30, lag_late, lag_days)
		SELECT u.id, u.site, u.env, u.recv, u.control, u.ack, u.resend, u.readable, u.errs, u.warns, u.findings::text[],
			u.adm, u.hist, u.ref, u.imm, u.lot, u.mvx, u.fund, u.vis, u.race, u.eth, u.addr, u.lag1, u.lag7, u.lag30, u.late, u.lagsum
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::bool[],
			$8::bool[], $9::bool[], $10::bool[], $11::text[], $12::int[], $13::int[], $14::int[], $15::int[], $16::int[],
			$17::int[], $18::int[], $19::int[], $20::bool[], $21::bool[], $22::bool[], $23::int[], $24::int[], $25::int[],
			$26::int[], $27::int[])
			AS u(id, site, env, recv, control, ack, resend, readable, errs, warns, findings, adm, hist, ref, imm, lot, mvx,
			fund, vis, race, eth, addr, lag1, lag7, lag30, late, lagsum)
		ON CONFLICT (message_id) DO NOTHING`,
		ids, sites, envs, recv, controls, acks, resend, readable, errs, warns, findings, adm, hist, ref, imm, lot, mvx,
		fund, vis, race, eth, addr, lag1, lag7, lag30, late, lagSum)
	if err != nil {
		return fmt.Errorf("store: save report summaries: %w", err)
	}
	return nil
}

// pgTextArray writes a text[] literal (each element quoted), so that an array of arrays can be
// passed as text[] and cast per row.
func pgTextArray(ss []string) string {
	b := make([]byte, 0, 16*len(ss)+2)
	b = append(b, '{')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[j])
		}
		b = append(b, '"')
	}
	return string(append(b, '}'))
}

// periodWhere selects the period's summaries: the environment's, and those of messages rejected
// before their environment was known.
const periodWhere = `site_id = $1 AND env IN ($2, '') AND received_at >= $3 AND received_at < $4`

// QualityTallies adds up the period's summaries by week (two scans of report_facts_site).
func (s *ReportStore) QualityTallies(ctx context.Context, p report.Period) (*report.Tallies, error) {
	t := &report.Tallies{}
	rows, err := s.db.Pool.Query(ctx, `
		SELECT date_trunc('week', received_at AT TIME ZONE 'UTC') AS week,
			count(*) FILTER (WHERE NOT resend),
			count(*) FILTER (WHERE NOT resend AND ack_code = 'AA'),
			count(*) FILTER (WHERE NOT resend AND ack_code = 'AE'),
			count(*) FILTER (WHERE NOT resend AND ack_code = 'AR'),
			count(*) FILTER (WHERE resend),
			count(*) FILTER (WHERE NOT resend AND has_errors),
			count(*) FILTER (WHERE NOT resend AND has_warnings),
			count(*) FILTER (WHERE NOT resend AND NOT readable),
			coalesce(sum(administered) FILTER (WHERE NOT resend), 0),
			coalesce(sum(historical) FILTER (WHERE NOT resend), 0),
			coalesce(sum(refusals) FILTER (WHERE NOT resend), 0),
			coalesce(sum(immunity) FILTER (WHERE NOT resend), 0),
			coalesce(sum(with_lot) FILTER (WHERE NOT resend), 0),
			coalesce(sum(with_mvx) FILTER (WHERE NOT resend), 0),
			coalesce(sum(with_funding) FILTER (WHERE NOT resend), 0),
			coalesce(sum(with_vis) FILTER (WHERE NOT resend), 0),
			count(*) FILTER (WHERE NOT resend AND race),
			count(*) FILTER (WHERE NOT resend AND ethnicity),
			count(*) FILTER (WHERE NOT resend AND address),
			coalesce(sum(lag_1) FILTER (WHERE NOT resend), 0),
			coalesce(sum(lag_7) FILTER (WHERE NOT resend), 0),
			coalesce(sum(lag_30) FILTER (WHERE NOT resend), 0),
			coalesce(sum(lag_late) FILTER (WHERE NOT resend), 0),
			coalesce(sum(lag_days) FILTER (WHERE NOT resend), 0)
		FROM report_facts WHERE `+periodWhere+`
		GROUP BY week ORDER BY week`, p.SiteID, p.Env, p.From, p.To)
	if err != nil {
		return nil, fmt.Errorf("store: quality tallies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w report.WeekTally
		x := &w.Tally
		if err := rows.Scan(&w.Week, &x.Messages, &x.AA, &x.AE, &x.AR, &x.Resends, &x.WithErrors, &x.WithWarnings, &x.Unreadable,
			&x.Administered, &x.Historical, &x.Refusals, &x.Immunity, &x.WithLot, &x.WithMVX, &x.WithFunding, &x.WithVIS,
			&x.Race, &x.Ethnicity, &x.Address, &x.Lag1, &x.Lag7, &x.Lag30, &x.LagLate, &x.LagDays); err != nil {
			return nil, fmt.Errorf("store: quality tallies: %w", err)
		}
		w.Week = time.Date(w.Week.Year(), w.Week.Month(), w.Week.Day(), 0, 0, 0, 0, time.UTC)
		t.Weeks = append(t.Weeks, w)
		addTally(&t.Total, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: quality tallies: %w", err)
	}
	rows, err = s.db.Pool.Query(ctx, `
		SELECT split_part(k, ':', 1), substr(k, position(':' in k) + 1), count(*)
		FROM report_facts f, unnest(f.findings) k
		WHERE `+periodWhere+` AND NOT resend
		GROUP BY k`, p.SiteID, p.Env, p.From, p.To)
	if err != nil {
		return nil, fmt.Errorf("store: rule tallies: %w", err)
	}
	t.Rules, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (report.RuleTally, error) {
		var rt report.RuleTally
		err := r.Scan(&rt.Severity, &rt.Rule, &rt.Messages)
		return rt, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: rule tallies: %w", err)
	}
	return t, nil
}

func addTally(t, x *report.Tally) {
	for _, p := range []struct{ dst, src *int64 }{
		{&t.Messages, &x.Messages}, {&t.AA, &x.AA}, {&t.AE, &x.AE}, {&t.AR, &x.AR}, {&t.Resends, &x.Resends},
		{&t.WithErrors, &x.WithErrors}, {&t.WithWarnings, &x.WithWarnings}, {&t.Unreadable, &x.Unreadable},
		{&t.Administered, &x.Administered}, {&t.Historical, &x.Historical}, {&t.Refusals, &x.Refusals},
		{&t.Immunity, &x.Immunity}, {&t.WithLot, &x.WithLot}, {&t.WithMVX, &x.WithMVX}, {&t.WithFunding, &x.WithFunding},
		{&t.WithVIS, &x.WithVIS}, {&t.Race, &x.Race}, {&t.Ethnicity, &x.Ethnicity}, {&t.Address, &x.Address},
		{&t.Lag1, &x.Lag1}, {&t.Lag7, &x.Lag7}, {&t.Lag30, &x.Lag30}, {&t.LagLate, &x.LagLate}, {&t.LagDays, &x.LagDays},
	} {
		*p.dst += *p.src
	}
}

// ControlIDs groups the period's summaries by control ID.
func (s *ReportStore) ControlIDs(ctx context.Context, p report.Period, fn func(report.ControlIDStatus) error) error {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT control_id, count(*), bool_or(ack_code <> 'AR')
		FROM report_facts WHERE `+periodWhere+`
		GROUP BY control_id`, p.SiteID, p.Env, p.From, p.To)
	if err != nil {
		return fmt.Errorf("store: control IDs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c report.ControlIDStatus
		if err := rows.Scan(&c.ControlID, &c.Messages, &c.Accepted); err != nil {
			return fmt.Errorf("store: control IDs: %w", err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: control IDs: %w", err)
	}
	return nil
}

// SignOffs lists the site's readiness sign-offs, oldest first.
func (s *ReportStore) SignOffs(ctx context.Context, siteID int64) ([]report.SignOff, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT id, site_id, item, signed_by, user_id, signed_at, note, revoked
		FROM certification_signoffs WHERE site_id = $1 ORDER BY signed_at, id`, siteID)
	if err != nil {
		return nil, fmt.Errorf("store: sign-offs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (report.SignOff, error) {
		var so report.SignOff
		err := r.Scan(&so.ID, &so.SiteID, &so.Item, &so.By, &so.UserID, &so.At, &so.Note, &so.Revoked)
		return so, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: sign-offs: %w", err)
	}
	return out, nil
}

// AddSignOff stores a sign-off and its audit entry (the admin store's AppendAudit) in one
// transaction.
func (s *ReportStore) AddSignOff(ctx context.Context, so *report.SignOff, e *admin.AuditEntry) error {
	return pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
			INSERT INTO certification_signoffs (site_id, item, signed_by, user_id, signed_at, note, revoked)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			so.SiteID, so.Item, so.By, so.UserID, so.At, so.Note, so.Revoked).Scan(&so.ID); err != nil {
			return fmt.Errorf("store: add sign-off: %w", err)
		}
		audit := &AdminStore{pool: s.db.Pool, q: tx, tx: tx}
		return audit.AppendAudit(ctx, e)
	})
}
