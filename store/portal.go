package store

// Reads for the registry portal (package portal): an invitation looked up without using it, and a
// site's intake statistics (messages per day by environment and ACK code, the most frequent
// findings, the latest messages). None of them returns patient data: control IDs, rule ids,
// codes and counts only.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// IntakeFinding is a validation rule that fired on a site's messages: in how many messages, at
// which severity, with a few control IDs of messages where it fired and one example text.
type IntakeFinding struct {
	Rule       string
	Severity   string
	Count      int      // messages with the finding (a message that had it twice counts once)
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

// siteSince selects cols from the messages of site $1 received since $2, of every environment
// (env is P, T or null), each part read from messages_site_env_received.
func siteSince(cols string) string {
	return `
	SELECT ` + cols + ` FROM messages WHERE site_id = $1 AND env = 'P' AND received_at >= $2
	UNION ALL
	SELECT ` + cols + ` FROM messages WHERE site_id = $1 AND env = 'T' AND received_at >= $2
	UNION ALL
	SELECT ` + cols + ` FROM messages WHERE site_id = $1 AND env IS NULL AND received_at >= $2`
}

// messageKeys is an archive row's finding keys ("severity:rule", distinct): its report facts'
// (finding_keys, written at intake, every finding counted), else, for a row archived before
// intake wrote facts and not summarized since, those of the findings its ACK listed.
const messageKeys = `coalesce(finding_keys, (SELECT coalesce(array_agg(DISTINCT (x->>'severity') || ':' || (x->>'rule')), '{}')
	FROM json_array_elements(findings) x))`

// siteKeysSince are the site's messages since the time (siteSince) with their finding keys.
var siteKeysSince = siteSince(`id, control_id, ` + messageKeys + ` AS keys`)

// intakeExamples is how many control IDs of messages with a finding the intake page shows.
const intakeExamples = 5

// intakeFindings returns the findings most often reported by the site since the given time (at
// most top): each rule and severity with the number of messages that reported it, the control IDs
// of the newest of them and the text of the finding in the newest (when its ACK listed it).
//
// The counts come from the messages' finding keys (report facts written at intake), not from
// their findings' JSON: over a busy site's month of 1,000,000 messages this takes 4.0–5.2 s on the
// 2-core development machine, however rare the rules shown (reading the newest examples of each
// rule with a second scan instead took 2.3 s more per rare rule); taking every listed finding's
// rule, severity and text out of the JSON took 12 s (6.5 when findings were jsonb). Only the newest
// message of each rule shown is read whole, for its text.
func (db *DB) intakeFindings(ctx context.Context, siteID int64, since time.Time, top int) ([]IntakeFinding, error) {
	rows, err := db.Pool.Query(ctx, `
		WITH m AS (`+siteKeysSince+`)
		SELECT k, count(*) AS n, (array_agg(control_id ORDER BY id DESC))[1:$4], max(id)
		FROM m, unnest(m.keys) k
		WHERE k LIKE '_:_%'
		GROUP BY k ORDER BY n DESC, k LIMIT $3`, siteID, since, top, intakeExamples)
	if err != nil {
		return nil, fmt.Errorf("store: intake findings of site %d: %w", siteID, err)
	}
	out := []IntakeFinding{}
	var newest []int64
	for rows.Next() {
		var key string
		var f IntakeFinding
		var id int64
		if err := rows.Scan(&key, &f.Count, &f.ControlIDs, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: intake findings of site %d: %w", siteID, err)
		}
		f.Severity, f.Rule, _ = strings.Cut(key, ":")
		out = append(out, f)
		newest = append(newest, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: intake findings of site %d: %w", siteID, err)
	}
	if len(newest) == 0 {
		return out, nil
	}
	rows, err = db.Pool.Query(ctx, `SELECT id, findings FROM messages WHERE id = ANY($1)`, newest)
	if err != nil {
		return nil, fmt.Errorf("store: intake finding examples of site %d: %w", siteID, err)
	}
	listed := map[int64][]byte{}
	for rows.Next() {
		var id int64
		var fs []byte
		if err := rows.Scan(&id, &fs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: intake finding examples of site %d: %w", siteID, err)
		}
		listed[id] = fs
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: intake finding examples of site %d: %w", siteID, err)
	}
	for i := range out {
		out[i].Example = listedText(listed[newest[i]], out[i].Rule, out[i].Severity)
	}
	return out, nil
}

// listedText is the text of the first finding of the rule and severity among an archive row's
// listed findings (messages.findings); "" when the ACK did not list one (it was counted among
// the more findings) or the JSON cannot be read.
func listedText(listed []byte, rule, severity string) string {
	var fs []struct {
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
		Text     string `json:"text"`
	}
	if json.Unmarshal(listed, &fs) != nil {
		return ""
	}
	for _, f := range fs {
		if f.Rule == rule && f.Severity == severity {
			return f.Text
		}
	}
	return ""
}

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
		WITH m AS (`+siteSince(`env, received_at, ack_code`)+`)
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

	if out.Findings, err = db.intakeFindings(ctx, siteID, since, topFindings); err != nil {
		return nil, err
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
