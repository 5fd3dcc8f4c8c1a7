package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/report"
)

// ReportStore implements report.Store: the archive as the certification, data-quality and
// reconciliation reports read it, with its report facts (the facts columns of messages,
// migration 014; facts.go), and readiness sign-offs.
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

// MissingFacts finds the period's messages without facts. Days rolled up in report_days are
// complete (see report_days.go). For the others, it reads the partial index
// messages_without_facts (migration 014), which holds only the archive rows of known sites that
// have no facts: intake writes facts with every such row, so the index is empty but for messages
// archived before, and a report pays for a look-up, not for a pass over the period.
func (s *ReportStore) MissingFacts(ctx context.Context, p report.Period) ([]int64, error) {
	rolled, err := s.rolledDays(ctx, s.db.Pool, p)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, r := range uncovered(p.From, p.To, rolled) {
		rows, err := s.db.Pool.Query(ctx, missingFactsSQL, p.SiteID, p.Env, r[0], r[1])
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

// missingFactsSQL lists the messages of a site's period without facts (messages_without_facts).
const missingFactsSQL = `
	SELECT id FROM messages
	WHERE site_id = $1 AND env = $2 AND received_at >= $3 AND received_at < $4
	  AND readable IS NULL AND site_id IS NOT NULL
	UNION ALL
	SELECT id FROM messages
	WHERE site_id = $1 AND env IS NULL AND received_at >= $3 AND received_at < $4
	  AND readable IS NULL AND site_id IS NOT NULL`

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

// StoredFacts reads the facts of the given messages, in no particular order (those without
// facts are left out).
func (s *ReportStore) StoredFacts(ctx context.Context, ids []int64) ([]report.FactsRow, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT id, site_id, coalesce(env, ''), received_at, control_id, ack_code, `+resendSQL+`, readable,
			has_errors, has_warnings, finding_keys, administered, historical, refusals, immunity, with_lot, with_mvx,
			with_funding, with_vis, has_race, has_ethnicity, has_address, lag_1, lag_7, lag_30, lag_late, lag_days
		FROM messages WHERE id = ANY($1) AND readable IS NOT NULL`, ids)
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

// resendSQL is a facts row's resend flag over messages' columns (archivedResend): the archived
// copy of a resend, answered with the original's ACK.
const resendSQL = `(NOT resend_key AND ack_code <> 'AR')`

// updateFactsSQL sets the facts columns of archived messages that have none, from an array of
// batch_facts (updateFactsArgs).
const updateFactsSQL = `UPDATE messages m SET readable = u.readable, has_errors = u.errs, has_warnings = u.warns,
		finding_keys = u.keys, administered = u.adm, historical = u.hist, refusals = u.ref, immunity = u.imm,
		with_lot = u.lot, with_mvx = u.mvx, with_funding = u.fund, with_vis = u.vis, has_race = u.race,
		has_ethnicity = u.eth, has_address = u.addr, lag_1 = u.lag1, lag_7 = u.lag7, lag_30 = u.lag30,
		lag_late = u.late, lag_days = u.lag_days
	FROM unnest($1::batch_facts[]) AS u
	WHERE m.id = u.id AND m.readable IS NULL`

// SaveFacts sets the facts columns of the summarized messages, in one statement. A message that
// has facts already keeps them: a concurrent report summarizing the same message first makes
// this UPDATE wait for its row lock, then see the facts. The rows are locked in the order of
// their ids, as a concurrent SaveFacts of the same messages locks them; should the plans of the
// two differ and deadlock, the statement rolled back is run again (it changes only what is
// still NULL).
func (s *ReportStore) SaveFacts(ctx context.Context, rs []report.FactsRow) error {
	if len(rs) == 0 {
		return nil
	}
	c, err := s.db.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: save report summaries: %w", err)
	}
	defer c.Release()
	if err := registerRowTypes(ctx, c.Conn()); err != nil {
		return err
	}
	args := updateFactsArgs(rs)
	for range saveFactsAttempts {
		if _, err = c.Exec(ctx, updateFactsSQL, args...); err == nil {
			return nil
		}
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || (pg.Code != "40P01" && pg.Code != "40001") {
			break
		}
	}
	return fmt.Errorf("store: save report summaries: %w", err)
}

// updateFactsArgs are updateFactsSQL's arguments for rs, in the order of their message ids.
func updateFactsArgs(rs []report.FactsRow) []any {
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(rs[a].MessageID, rs[b].MessageID) })
	var a rowArray
	for _, i := range order {
		a.begin(1 + len(factsColumnTypes))
		a.int8(rs[i].MessageID)
		addFacts(&a, &rs[i])
		a.end()
	}
	return []any{&a}
}

// saveFactsAttempts bounds SaveFacts' runs of a statement that met a deadlock.
const saveFactsAttempts = 3

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

// periodMessages is the period's archive rows of the environment's messages and of those
// rejected before their environment was known, each read through messages_site_env_received
// (site_id, env, received_at, id), as the relation m with the given columns; withFacts keeps
// those with facts (every one, once the period is summarized: report.Service.Summarize). A
// UNION ALL of two index conditions rather than "env = $2 OR env IS NULL", which the index
// could only serve as two bitmap scans.
func periodMessages(cols string, withFacts bool) string {
	where := `received_at >= $3 AND received_at < $4`
	if withFacts {
		where += ` AND readable IS NOT NULL`
	}
	return `(SELECT ` + cols + ` FROM messages WHERE site_id = $1 AND env = $2 AND ` + where + `
		UNION ALL
		SELECT ` + cols + ` FROM messages WHERE site_id = $1 AND env IS NULL AND ` + where + `) m`
}

// controlIDsSQL groups a site's period by control ID; controlIDCountsSQL counts them.
var (
	controlIDsSQL = `SELECT control_id, count(*), bool_or(ack_code <> 'AR')
		FROM ` + periodMessages("control_id, ack_code", false) + `
		GROUP BY control_id`
	controlIDCountsSQL = `SELECT count(*), count(*) FILTER (WHERE accepted) FROM (
			SELECT bool_or(ack_code <> 'AR') AS accepted FROM ` + periodMessages("control_id, ack_code", false) + `
			GROUP BY control_id) ids`
)

// ControlIDs groups the period's archived messages by control ID: archive columns, no facts
// needed.
func (s *ReportStore) ControlIDs(ctx context.Context, p report.Period, fn func(report.ControlIDStatus) error) error {
	return s.reading(ctx, func(tx pgx.Tx) error {
		return controlIDs(ctx, tx, p, fn)
	})
}

func controlIDs(ctx context.Context, q pgx.Tx, p report.Period, fn func(report.ControlIDStatus) error) error {
	rows, err := q.Query(ctx, controlIDsSQL, p.SiteID, p.Env, p.From, p.To)
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
		return tx.QueryRow(ctx, controlIDCountsSQL, p.SiteID, p.Env, p.From, p.To).Scan(&received, &accepted)
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
