package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/report"
)

// ReportStore implements report.Store: the archive as the certification, data-quality and
// reconciliation reports read it, their summaries (report_facts) and readiness sign-offs.
type ReportStore struct{ db *DB }

var _ report.Store = (*ReportStore)(nil)

// NewReportStore returns the reports' store over db.
func NewReportStore(db *DB) *ReportStore { return &ReportStore{db: db} }

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

// ReportSites lists every site.
func (s *ReportStore) ReportSites(ctx context.Context) ([]report.Site, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT id, code, name, status, go_live_date FROM sites ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: report sites: %w", err)
	}
	sites, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (report.Site, error) {
		var site report.Site
		err := r.Scan(&site.ID, &site.Code, &site.Name, &site.Status, &site.GoLive)
		return site, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: report sites: %w", err)
	}
	return sites, nil
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

// MissingFacts finds the period's messages without a summary. Days rolled up in report_days are
// complete (see report_days.go). For the others, it first compares, day by day,
// how many messages and how many summaries the period has (two index-only scans, of
// messages_site_env_received and report_facts_site), and looks for the missing ones (an anti-join
// on report_facts' key) only in the days that differ: once a period is summarized, a report
// pays for two counts, and a live site's new messages are found in the last day alone.
func (s *ReportStore) MissingFacts(ctx context.Context, p report.Period) ([]int64, error) {
	rolled, err := s.rolledDays(ctx, s.db.Pool, p)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, r := range uncovered(p.From, p.To, rolled) {
		q := p
		q.From, q.To = r[0], r[1]
		more, err := s.missingFactsIn(ctx, q)
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	return ids, nil
}

// missingFactsIn is MissingFacts for a period without rolled-up days.
func (s *ReportStore) missingFactsIn(ctx context.Context, p report.Period) ([]int64, error) {
	rows, err := s.db.Pool.Query(ctx, `
		WITH m AS (
			SELECT extract(epoch FROM received_at)::bigint / 86400 AS day FROM messages
			WHERE site_id = $1 AND env = $2 AND received_at >= $3 AND received_at < $4
			UNION ALL
			SELECT extract(epoch FROM received_at)::bigint / 86400 FROM messages
			WHERE site_id = $1 AND env IS NULL AND received_at >= $3 AND received_at < $4
		), md AS (SELECT day, count(*) AS n FROM m GROUP BY day),
		fd AS (
			SELECT extract(epoch FROM received_at)::bigint / 86400 AS day, count(*) AS n FROM report_facts
			WHERE `+periodWhere+` GROUP BY 1
		)
		SELECT md.day FROM md LEFT JOIN fd USING (day) WHERE md.n <> coalesce(fd.n, 0) ORDER BY md.day`,
		p.SiteID, p.Env, p.From, p.To)
	if err != nil {
		return nil, fmt.Errorf("store: count summaries: %w", err)
	}
	days, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("store: count summaries: %w", err)
	}
	var ids []int64
	for i := 0; i < len(days); {
		// Consecutive days are one range.
		j := i + 1
		for j < len(days) && days[j] == days[j-1]+1 {
			j++
		}
		from := maxTime(p.From, time.Unix(days[i]*86400, 0))
		to := minTime(p.To, time.Unix((days[j-1]+1)*86400, 0))
		i = j
		rows, err := s.db.Pool.Query(ctx, `
			SELECT m.id FROM messages m
			WHERE m.site_id = $1 AND m.env = $2 AND m.received_at >= $3 AND m.received_at < $4
			  AND NOT EXISTS (SELECT 1 FROM report_facts f WHERE f.message_id = m.id)
			UNION ALL
			SELECT m.id FROM messages m
			WHERE m.site_id = $1 AND m.env IS NULL AND m.received_at >= $3 AND m.received_at < $4
			  AND NOT EXISTS (SELECT 1 FROM report_facts f WHERE f.message_id = m.id)`,
			p.SiteID, p.Env, from, to)
		if err != nil {
			return nil, fmt.Errorf("store: find messages to summarize: %w", err)
		}
		more, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("store: find messages to summarize: %w", err)
		}
		ids = append(ids, more...)
	}
	return ids, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ArchivedForFacts reads archived messages by id, with the finding keys of all their findings
// (those the ACK listed, and the others when there were more: archivedFindings) and their raw
// bytes, as intake had them (see facts.go).
func (s *ReportStore) ArchivedForFacts(ctx context.Context, ids []int64) ([]*report.Archived, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT id, site_id, coalesce(env, ''), control_id, received_at, ack_code, resend_key, findings, more_findings, raw
		FROM messages WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: read messages to summarize: %w", err)
	}
	defer rows.Close()
	out := make([]*report.Archived, 0, len(ids))
	var (
		listed, more []byte
		resendKey    bool
	)
	for rows.Next() {
		a := &report.Archived{}
		if err := rows.Scan(&a.ID, &a.SiteID, &a.Env, &a.ControlID, &a.ReceivedAt, &a.ACKCode, &resendKey, &listed, &more, &a.Raw); err != nil {
			return nil, fmt.Errorf("store: read message to summarize: %w", err)
		}
		a.Resend = archivedResend(resendKey, a.ACKCode)
		if a.FindingKeys, err = archivedFindingKeys(listed, more); err != nil {
			return nil, fmt.Errorf("store: findings of message %d: %w", a.ID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read messages to summarize: %w", err)
	}
	return out, nil
}

// StoredFacts reads the facts rows of the given messages, in no particular order (those without
// one are left out).
func (s *ReportStore) StoredFacts(ctx context.Context, ids []int64) ([]report.FactsRow, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+strings.Join(factsColumns, ", ")+` FROM report_facts WHERE message_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: read report facts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (report.FactsRow, error) {
		var (
			r                                                           report.FactsRow
			adm, hist, ref, imm, lot, mvx, fund, vis, l1, l7, l30, late int16
			lagDays                                                     int32
		)
		f := &r.Facts
		err := row.Scan(&r.MessageID, &r.SiteID, &r.Env, &r.ReceivedAt, &r.ControlID, &r.ACKCode, &r.Resend, &r.Readable,
			&r.Errors, &r.Warnings, &r.Findings, &adm, &hist, &ref, &imm, &lot, &mvx, &fund, &vis, &f.Race, &f.Ethnicity,
			&f.Address, &l1, &l7, &l30, &late, &lagDays)
		f.Administered, f.Historical, f.Refusals, f.Immunity = int(adm), int(hist), int(ref), int(imm)
		f.WithLot, f.WithMVX, f.WithFunding, f.WithVIS = int(lot), int(mvx), int(fund), int(vis)
		f.Lag1, f.Lag7, f.Lag30, f.LagLate, f.LagDays = int(l1), int(l7), int(l30), int(late), int(lagDays)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read report facts: %w", err)
	}
	return out, nil
}

// factsColumns are report_facts' columns in the order SaveFacts writes them.
var factsColumns = []string{"message_id", "site_id", "env", "received_at", "control_id", "ack_code", "resend", "readable",
	"has_errors", "has_warnings", "findings", "administered", "historical", "refusals", "immunity", "with_lot", "with_mvx",
	"with_funding", "with_vis", "race", "ethnicity", "address", "lag_1", "lag_7", "lag_30", "lag_late", "lag_days"}

// SaveFacts stores summaries with COPY. A summary already stored (a concurrent report summarized
// the same message) makes COPY fail as a whole; the chunk is then inserted again keeping the
// ones already there.
func (s *ReportStore) SaveFacts(ctx context.Context, rs []report.FactsRow) error {
	if len(rs) == 0 {
		return nil
	}
	clamp := func(v int) int16 { return int16(min(v, 32767)) }
	_, err := s.db.Pool.CopyFrom(ctx, pgx.Identifier{"report_facts"}, factsColumns, pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
		r := &rs[i]
		f := &r.Facts
		return []any{r.MessageID, r.SiteID, r.Env, r.ReceivedAt, r.ControlID, r.ACKCode, r.Resend, r.Readable,
			r.Errors, r.Warnings, r.Findings, clamp(f.Administered), clamp(f.Historical), clamp(f.Refusals), clamp(f.Immunity),
			clamp(f.WithLot), clamp(f.WithMVX), clamp(f.WithFunding), clamp(f.WithVIS), f.Race, f.Ethnicity, f.Address,
			clamp(f.Lag1), clamp(f.Lag7), clamp(f.Lag30), clamp(f.LagLate), int32(min(f.LagDays, 1<<31-1))}, nil
	}))
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		return s.insertFacts(ctx, rs)
	}
	if err != nil {
		return fmt.Errorf("store: save report summaries: %w", err)
	}
	return nil
}

// insertFacts inserts summaries in one statement (arrays unnested), keeping any already stored.
func (s *ReportStore) insertFacts(ctx context.Context, rs []report.FactsRow) error {
	if _, err := s.db.Pool.Exec(ctx, insertFactsSQL+` ON CONFLICT (message_id) DO NOTHING`, factsArgs(rs)...); err != nil {
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

// reportWorkMem is the work_mem of the reports' aggregations: grouping a million control IDs in
// memory instead of spilling to disk.
const reportWorkMem = "256MB"

// reading runs fn in a transaction with the reports' work_mem.
func (s *ReportStore) reading(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '"+reportWorkMem+"'"); err != nil {
			return fmt.Errorf("store: report work_mem: %w", err)
		}
		return fn(tx)
	})
}

// periodWhere selects the period's summaries: the environment's, and those of messages rejected
// before their environment was known.
const periodWhere = `site_id = $1 AND env IN ($2, '') AND received_at >= $3 AND received_at < $4`

// ControlIDs groups the period's summaries by control ID.
func (s *ReportStore) ControlIDs(ctx context.Context, p report.Period, fn func(report.ControlIDStatus) error) error {
	return s.reading(ctx, func(tx pgx.Tx) error {
		return controlIDs(ctx, tx, p, fn)
	})
}

func controlIDs(ctx context.Context, q pgx.Tx, p report.Period, fn func(report.ControlIDStatus) error) error {
	rows, err := q.Query(ctx, `
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

// ControlIDCounts counts the period's distinct control IDs, and those with an accepted message,
// without sending them.
func (s *ReportStore) ControlIDCounts(ctx context.Context, p report.Period) (received, accepted int64, err error) {
	err = s.reading(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT count(*), count(*) FILTER (WHERE accepted) FROM (
				SELECT bool_or(ack_code <> 'AR') AS accepted FROM report_facts WHERE `+periodWhere+`
				GROUP BY control_id) ids`, p.SiteID, p.Env, p.From, p.To).Scan(&received, &accepted)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: count control IDs: %w", err)
	}
	return received, accepted, nil
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
