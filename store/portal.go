package store

// Reads for the registry portal (package portal): an invitation looked up without using it, and a
// site's intake statistics (messages per day by environment and ACK code, the most frequent
// findings, the latest messages). None of them returns patient data: control IDs, rule ids,
// codes and counts only.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/admin"
)

// InviteByToken returns the unused invitation with this token hash that has not expired at time
// at, without using it; an unknown, used or expired one is admin.ErrInviteInvalid.
func (s *AdminStore) InviteByToken(ctx context.Context, tokenHash []byte, at time.Time) (*admin.Invite, error) {
	var inv admin.Invite
	err := s.q.QueryRow(ctx, `
		SELECT id, user_id, coalesce(site_id, 0), created_at, expires_at FROM user_invites
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`, tokenHash, at).
		Scan(&inv.ID, &inv.UserID, &inv.SiteID, &inv.CreatedAt, &inv.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, admin.ErrInviteInvalid
	}
	if err != nil {
		return nil, admErr(err, "read invitation")
	}
	return &inv, nil
}

// IntakeDay is the number of messages a site sent on one day (UTC), in one environment, that got
// one ACK code.
type IntakeDay struct {
	Day   time.Time // midnight UTC
	Env   string    // "P" or "T" ("" when the message could not be placed)
	Code  string    // AA, AE or AR
	Count int
}

// IntakeFinding is a validation rule that fired on a site's messages: how often, at which
// severity, with a few control IDs of messages where it fired and one example text.
type IntakeFinding struct {
	Rule       string
	Severity   string
	Count      int
	ControlIDs []string // up to 5, newest first
	Example    string   // the text of the newest occurrence
}

// IntakeMessage is one received message of a site, without its content.
type IntakeMessage struct {
	ID         int64
	ReceivedAt time.Time
	Env        string
	Transport  string
	ControlID  string
	Facility   string
	Type       string
	Code       string
	Findings   int
}

// siteMessagesSince are the messages of site $1 received since $2, of every environment (env is P,
// T or null), each part read from messages_site_env_received.
const siteMessagesSince = `
	SELECT id, env, control_id, received_at, ack_code, findings FROM messages
	WHERE site_id = $1 AND env = 'P' AND received_at >= $2
	UNION ALL
	SELECT id, env, control_id, received_at, ack_code, findings FROM messages
	WHERE site_id = $1 AND env = 'T' AND received_at >= $2
	UNION ALL
	SELECT id, env, control_id, received_at, ack_code, findings FROM messages
	WHERE site_id = $1 AND env IS NULL AND received_at >= $2`

// SiteIntake is what the portal's intake page shows for one site.
type SiteIntake struct {
	Since    time.Time
	Days     []IntakeDay
	Findings []IntakeFinding
	Latest   []IntakeMessage
}

// SiteIntake reads a site's intake since the given time: the messages per day, environment and
// ACK code; the findings most often reported (at most topFindings rules); the latest messages (at
// most latest).
//
// A site's messages are read by environment — production, test, and those rejected before their
// environment was known — through the index the reports use (messages_site_env_received), so that
// the archive, intake's largest table, keeps one index by site and time, not two.
func (db *DB) SiteIntake(ctx context.Context, siteID int64, since time.Time, topFindings, latest int) (*SiteIntake, error) {
	out := &SiteIntake{Since: since, Days: []IntakeDay{}, Findings: []IntakeFinding{}, Latest: []IntakeMessage{}}
	rows, err := db.Pool.Query(ctx, `
		WITH m AS (`+siteMessagesSince+`)
		SELECT date_trunc('day', received_at AT TIME ZONE 'UTC'), coalesce(env, ''), ack_code, count(*)
		FROM m GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, siteID, since)
	if err != nil {
		return nil, fmt.Errorf("store: intake per day of site %d: %w", siteID, err)
	}
	out.Days, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (IntakeDay, error) {
		var d IntakeDay
		err := r.Scan(&d.Day, &d.Env, &d.Code, &d.Count)
		d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: intake per day of site %d: %w", siteID, err)
	}

	rows, err = db.Pool.Query(ctx, `
		WITH m AS (`+siteMessagesSince+`), f AS (
			SELECT m.id, m.control_id, x->>'rule' AS rule, x->>'severity' AS severity, x->>'text' AS text
			FROM m, json_array_elements(m.findings) x
			WHERE x->>'rule' <> ''
		), ranked AS (
			SELECT rule, severity, count(*) AS n,
			       (array_agg(control_id ORDER BY id DESC))[1:5] AS ids,
			       (array_agg(text ORDER BY id DESC))[1] AS example
			FROM f GROUP BY rule, severity
		)
		SELECT rule, severity, n, ids, coalesce(example, '') FROM ranked
		ORDER BY n DESC, rule LIMIT $3`, siteID, since, topFindings)
	if err != nil {
		return nil, fmt.Errorf("store: intake findings of site %d: %w", siteID, err)
	}
	out.Findings, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (IntakeFinding, error) {
		var f IntakeFinding
		err := r.Scan(&f.Rule, &f.Severity, &f.Count, &f.ControlIDs, &f.Example)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: intake findings of site %d: %w", siteID, err)
	}

	rows, err = db.Pool.Query(ctx, `
		SELECT id, received_at, coalesce(env, ''), transport, control_id, sending_facility, message_type,
		       ack_code, json_array_length(findings)
		FROM (
			(SELECT * FROM messages WHERE site_id = $1 AND env = 'P' ORDER BY received_at DESC, id DESC LIMIT $2)
			UNION ALL
			(SELECT * FROM messages WHERE site_id = $1 AND env = 'T' ORDER BY received_at DESC, id DESC LIMIT $2)
			UNION ALL
			(SELECT * FROM messages WHERE site_id = $1 AND env IS NULL ORDER BY received_at DESC, id DESC LIMIT $2)
		) m ORDER BY received_at DESC, id DESC LIMIT $2`, siteID, latest)
	if err != nil {
		return nil, fmt.Errorf("store: latest messages of site %d: %w", siteID, err)
	}
	out.Latest, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (IntakeMessage, error) {
		var m IntakeMessage
		err := r.Scan(&m.ID, &m.ReceivedAt, &m.Env, &m.Transport, &m.ControlID, &m.Facility, &m.Type, &m.Code, &m.Findings)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: latest messages of site %d: %w", siteID, err)
	}
	return out, nil
}
