package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/admin"
)

// --- invitations of existing users to sites ---

const siteInviteSelect = `
SELECT i.id, i.user_id, u.username, i.site_id, s.code, s.name, i.role, i.designations, i.invited_by, i.status,
       i.created_at, i.expires_at, i.answered_at
FROM site_invitations i JOIN users u ON u.id = i.user_id JOIN sites s ON s.id = i.site_id`

// CreateSiteInvitation stores an invitation, replacing a pending one of the same user to the
// same site.
func (s *AdminStore) CreateSiteInvitation(ctx context.Context, inv *admin.SiteInvitation, invitedBy *int64) error {
	return s.atomic(ctx, func(t *AdminStore) error {
		if _, err := t.q.Exec(ctx, `UPDATE site_invitations SET status = 'replaced', answered_at = $3
			WHERE user_id = $1 AND site_id = $2 AND status = 'pending'`, inv.UserID, inv.SiteID, inv.CreatedAt); err != nil {
			return admErr(err, "replace site invitation")
		}
		err := t.q.QueryRow(ctx, `
			INSERT INTO site_invitations (user_id, site_id, role, designations, invited_by_user_id, invited_by, status, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) RETURNING id`,
			inv.UserID, inv.SiteID, string(inv.Role), designationStrings(inv.Designations), invitedBy, inv.InvitedBy,
			inv.CreatedAt, inv.ExpiresAt).Scan(&inv.ID)
		return admErr(err, "create site invitation")
	}, false)
}

// ListSiteInvitations returns the invitations matching f, newest first.
func (s *AdminStore) ListSiteInvitations(ctx context.Context, f admin.SiteInvitationFilter) ([]admin.SiteInvitation, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.UserID != 0 {
		where = append(where, "i.user_id = "+arg(f.UserID))
	}
	if f.SiteID != 0 {
		where = append(where, "i.site_id = "+arg(f.SiteID))
	}
	if !f.PendingAt.IsZero() {
		where = append(where, "i.status = 'pending' AND i.expires_at > "+arg(f.PendingAt))
	}
	if f.ForUpdateID != 0 {
		where = append(where, "i.id = "+arg(f.ForUpdateID))
	}
	sql := siteInviteSelect
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY i.id DESC LIMIT 1000"
	if f.ForUpdateID != 0 && s.tx != nil {
		sql += " FOR UPDATE OF i"
	}
	rows, err := s.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, admErr(err, "list site invitations")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (admin.SiteInvitation, error) {
		var (
			inv          admin.SiteInvitation
			role, status string
			ds           []string
		)
		err := row.Scan(&inv.ID, &inv.UserID, &inv.Username, &inv.SiteID, &inv.SiteCode, &inv.SiteName, &role, &ds,
			&inv.InvitedBy, &status, &inv.CreatedAt, &inv.ExpiresAt, &inv.AnsweredAt)
		inv.Role, inv.Status = admin.Role(role), admin.SiteInvitationStatus(status)
		inv.Designations = make([]admin.Designation, len(ds))
		for i, d := range ds {
			inv.Designations[i] = admin.Designation(d)
		}
		return inv, err
	})
	if err != nil {
		return nil, admErr(err, "list site invitations")
	}
	if out == nil {
		out = []admin.SiteInvitation{}
	}
	return out, nil
}

// AnswerSiteInvitation records the answer of a pending invitation.
func (s *AdminStore) AnswerSiteInvitation(ctx context.Context, id int64, status admin.SiteInvitationStatus, at time.Time) error {
	return s.exec1(ctx, fmt.Sprintf("site invitation %d", id),
		`UPDATE site_invitations SET status = $2, answered_at = $3 WHERE id = $1 AND status = 'pending'`, id, string(status), at)
}
